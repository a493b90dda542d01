package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
)

// capturesDir holds the real captures; its README.md says where each came
// from and what it exercises.
const capturesDir = "../../captures/public"

// record is a copied capture record.
type record struct {
	num  int
	lt   layers.LinkType
	data []byte
	wire int
}

// readCapture returns the records of a real capture, stopping quietly at a
// read error (the cut joincap file).
func readCapture(t testing.TB, name string) []record {
	t.Helper()
	r, err := capture.Open(filepath.Join(capturesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var recs []record
	for {
		rec, err := r.Next()
		if err != nil {
			if err != io.EOF && name != "joincap__unexpected_eof_on_second_packet.pcap" {
				t.Fatalf("%s: %v", name, err)
			}
			return recs
		}
		recs = append(recs, record{rec.Number, rec.LinkType, bytes.Clone(rec.Data), rec.Length})
	}
}

func allCaptures(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(capturesDir, "*.pcap*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no captures in %s: %v", capturesDir, err)
	}
	for i, p := range paths {
		paths[i] = filepath.Base(p)
	}
	return paths
}

// Packet builders for synthetic frames.

func ipv4Header(proto byte, src, dst string, payload int, opts []byte, frag uint16) []byte {
	ihl := 20 + len(opts)
	h := make([]byte, 20, ihl)
	h[0] = 0x40 | byte(ihl/4)
	binary.BigEndian.PutUint16(h[2:], uint16(ihl+payload))
	binary.BigEndian.PutUint16(h[4:], 0x1234)
	binary.BigEndian.PutUint16(h[6:], frag)
	h[8], h[9] = 64, proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	h = append(h, opts...)
	binary.BigEndian.PutUint16(h[10:], ^refFold(refSum(h)))
	return h
}

func tcpSegment(sport, dport uint16, flags byte, payload int) []byte {
	b := make([]byte, 20+payload)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], 1000)
	binary.BigEndian.PutUint32(b[8:], 2000)
	b[12], b[13] = 5<<4, flags
	for i := 20; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

func udpDatagram(sport, dport uint16, payload int) []byte {
	b := make([]byte, 8+payload)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+payload))
	for i := 8; i < len(b); i++ {
		b[i] = byte(i * 7)
	}
	return b
}

// ipv4Packet builds an IPv4 packet around a transport segment, with a
// valid transport checksum for TCP and UDP.
func ipv4Packet(proto byte, src, dst string, seg []byte) []byte {
	ip := ipv4Header(proto, src, dst, len(seg), nil, 0)
	p := append(ip, seg...)
	setTransportChecksum(p, 0, proto)
	return p
}

func setTransportChecksum(p []byte, l3 int, proto byte) {
	ihl := int(p[l3]&0xf) * 4
	seg := p[l3+ihl:]
	off := map[byte]int{6: 16, 17: 6}[proto]
	if off == 0 {
		return
	}
	binary.BigEndian.PutUint16(seg[off:], 0)
	c := ^refFold(refSum(pseudoHeader(p[l3:]), seg))
	if proto == 17 && c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(seg[off:], c)
}

func ether(et uint16, tags ...uint16) []byte {
	b := make([]byte, 12, 64)
	for i := 0; i+1 < len(tags); i += 2 {
		b = binary.BigEndian.AppendUint16(b, tags[i])   // TPID
		b = binary.BigEndian.AppendUint16(b, tags[i+1]) // TCI
	}
	return binary.BigEndian.AppendUint16(b, et)
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestDecode(t *testing.T) {
	tcp := ipv4Packet(6, "10.0.0.1", "192.0.2.9", tcpSegment(40000, 443, 0x02, 0))
	udp := ipv4Packet(17, "10.0.0.1", "192.0.2.9", udpDatagram(5353, 53, 12))
	icmp := join(ipv4Header(1, "10.0.0.1", "192.0.2.9", 8, nil, 0), []byte{8, 0, 0, 0, 0, 1, 0, 1})
	withOpts := join(ipv4Header(17, "10.0.0.1", "224.0.0.1", 8, []byte{0x94, 4, 0, 0}, 0), udpDatagram(1, 2, 0))
	firstFrag := join(ipv4Header(17, "10.0.0.1", "192.0.2.9", 16, nil, 0x2000), udpDatagram(53, 999, 8))
	laterFrag := join(ipv4Header(17, "10.0.0.1", "192.0.2.9", 16, nil, 185), make([]byte, 16))
	tinyFrag := join(ipv4Header(6, "10.0.0.1", "192.0.2.9", 8, nil, 0x2000), make([]byte, 8))
	ipv6 := append([]byte{0x60}, make([]byte, 39)...)
	tso := bytes.Clone(tcp)
	binary.BigEndian.PutUint16(tso[2:], 0)
	le := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	be := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	sll := func(pktType, proto uint16) []byte {
		b := binary.BigEndian.AppendUint16(nil, pktType)
		b = append(b, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0)
		return binary.BigEndian.AppendUint16(b, proto)
	}
	sll2 := func(proto uint16, pktType byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, proto)
		b = append(b, 0, 0, 0, 0, 0, 2, 0, 1, pktType, 6, 1, 2, 3, 4, 5, 6, 0, 0)
		return b
	}
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("192.0.2.9")

	tests := []struct {
		name    string
		lt      layers.LinkType
		data    []byte
		wantErr error
		check   func(f *Frame) bool
	}{
		{"ethernet tcp syn", layers.LinkTypeEthernet, join(ether(0x0800), tcp), nil, func(f *Frame) bool {
			return f.Network == IPv4 && f.L3 == 14 && f.L4 == 34 && f.Src == src && f.Dst == dst &&
				f.Proto == reference.TCP && f.SrcPort == 40000 && f.DstPort == 443 && f.Flags == reference.SYN &&
				f.Seq == 1000 && f.Ack == 2000 && f.TTL == 64 && f.ID == 0x1234 && !f.Fragment && !f.Truncated && f.End == len(tcp)+14
		}},
		{"ethernet padding", layers.LinkTypeEthernet, join(ether(0x0800), udp, make([]byte, 6)), nil, func(f *Frame) bool {
			return f.End == 14+len(udp) && !f.Truncated && f.PayloadLen == 12
		}},
		{"udp", layers.LinkTypeEthernet, join(ether(0x0800), udp), nil, func(f *Frame) bool {
			return f.Proto == reference.UDP && f.SrcPort == 5353 && f.DstPort == 53 && f.Transport
		}},
		{"icmp echo", layers.LinkTypeEthernet, join(ether(0x0800), icmp), nil, func(f *Frame) bool {
			return f.Proto == reference.ICMP && f.ICMPType == 8 && f.ICMPCode == 0 && f.Transport && !f.HasPorts()
		}},
		{"802.1Q", layers.LinkTypeEthernet, join(ether(0x0800, 0x8100, 42), tcp), nil, func(f *Frame) bool {
			return f.NumVLANs == 1 && f.VLANs[0] == 42 && f.L3 == 18 && f.SrcPort == 40000
		}},
		{"QinQ 88a8", layers.LinkTypeEthernet, join(ether(0x0800, 0x88a8, 0x2000|10, 0x8100, 20), tcp), nil, func(f *Frame) bool {
			return f.NumVLANs == 2 && f.VLANs[0] == 10 && f.VLANs[1] == 20 && f.L3 == 22 && f.SrcPort == 40000
		}},
		{"QinQ 9100", layers.LinkTypeEthernet, join(ether(0x0800, 0x9100, 7, 0x8100, 8), tcp), nil, func(f *Frame) bool {
			return f.NumVLANs == 2 && f.VLANs[0] == 7 && f.VLANs[1] == 8
		}},
		{"five vlan tags", layers.LinkTypeEthernet, join(ether(0x0800, 0x8100, 1, 0x8100, 2, 0x8100, 3, 0x8100, 4, 0x8100, 5), tcp), ErrBadHeader, nil},
		{"vlan cut", layers.LinkTypeEthernet, ether(0x8100)[:14], ErrShort, nil},
		{"arp", layers.LinkTypeEthernet, join(ether(0x0806), make([]byte, 28)), nil, func(f *Frame) bool {
			return f.Network == NonIP && f.EtherType == 0x0806 && f.L3 == 14
		}},
		{"ipv6 over ethernet", layers.LinkTypeEthernet, join(ether(0x86dd), ipv6), nil, func(f *Frame) bool { return f.Network == IPv6 && f.L3 == 14 }},
		{"ethernet cut", layers.LinkTypeEthernet, make([]byte, 13), ErrShort, nil},
		{"ipv4 options", layers.LinkTypeEthernet, join(ether(0x0800), withOpts), nil, func(f *Frame) bool {
			return f.L4 == 14+24 && f.Proto == reference.UDP && f.SrcPort == 1 && f.DstPort == 2
		}},
		{"first fragment", layers.LinkTypeEthernet, join(ether(0x0800), firstFrag), nil, func(f *Frame) bool {
			return f.Fragment && f.FragOffset == 0 && f.Transport && f.SrcPort == 53 && f.DstPort == 999
		}},
		{"later fragment", layers.LinkTypeEthernet, join(ether(0x0800), laterFrag), nil, func(f *Frame) bool {
			return f.Fragment && f.FragOffset == 1480 && !f.Transport && f.SrcPort == 0 && f.L4 == 0
		}},
		{"tiny first fragment", layers.LinkTypeEthernet, join(ether(0x0800), tinyFrag), nil, func(f *Frame) bool {
			return f.Fragment && !f.Transport
		}},
		{"segmentation offload", layers.LinkTypeEthernet, join(ether(0x0800), tso), nil, func(f *Frame) bool {
			return f.TotalLen == len(tso) && f.SrcPort == 40000
		}},
		{"snaplen cut after headers", layers.LinkTypeEthernet, join(ether(0x0800), udp)[:14+28+4], nil, func(f *Frame) bool {
			return f.Truncated && f.Transport && f.DstPort == 53 && f.End == 14+28+4 && f.PayloadLen == 12
		}},
		{"cut in ipv4 header", layers.LinkTypeEthernet, join(ether(0x0800), tcp)[:14+12], ErrShort, nil},
		{"cut in ipv4 options", layers.LinkTypeEthernet, join(ether(0x0800), withOpts)[:14+22], ErrShort, nil},
		{"cut in tcp header", layers.LinkTypeEthernet, join(ether(0x0800), tcp)[:14+20+12], ErrShort, nil},
		{"cut in udp header", layers.LinkTypeEthernet, join(ether(0x0800), udp)[:14+20+6], ErrShort, nil},
		{"ihl 4", layers.LinkTypeEthernet, func() []byte { b := join(ether(0x0800), tcp); b[14] = 0x44; return b }(), ErrBadHeader, nil},
		{"version 5 under 0800", layers.LinkTypeEthernet, func() []byte { b := join(ether(0x0800), tcp); b[14] = 0x55; return b }(), ErrBadHeader, nil},
		{"total length under ihl", layers.LinkTypeEthernet, func() []byte { b := join(ether(0x0800), tcp); b[17] = 10; return b }(), ErrBadHeader, nil},
		{"tcp data offset 4", layers.LinkTypeEthernet, func() []byte { b := join(ether(0x0800), tcp); b[46] = 0x40; return b }(), ErrBadHeader, nil},
		{"tcp longer than packet", layers.LinkTypeEthernet, func() []byte { b := join(ether(0x0800), tcp); b[17] = 30; return b }(), ErrBadHeader, nil},
		{"gre", layers.LinkTypeEthernet, join(ether(0x0800), ipv4Header(47, "10.0.0.1", "10.0.0.2", 4, nil, 0), make([]byte, 4)), nil, func(f *Frame) bool {
			return f.Proto == 47 && !f.Transport && f.Network == IPv4
		}},
		{"sll outgoing", layers.LinkTypeLinuxSLL, join(sll(4, 0x0800), tcp), nil, func(f *Frame) bool {
			return f.PacketType == 4 && f.L3 == 16 && f.SrcPort == 40000
		}},
		{"sll arp", layers.LinkTypeLinuxSLL, join(sll(0, 0x0806), make([]byte, 28)), nil, func(f *Frame) bool { return f.Network == NonIP }},
		{"sll cut", layers.LinkTypeLinuxSLL, sll(0, 0x0800)[:15], ErrShort, nil},
		{"sll2 incoming", layers.LinkTypeLinuxSLL2, join(sll2(0x0800, 0), tcp), nil, func(f *Frame) bool {
			return f.PacketType == 0 && f.L3 == 20 && f.DstPort == 443
		}},
		{"sll2 cut", layers.LinkTypeLinuxSLL2, sll2(0x0800, 0)[:19], ErrShort, nil},
		{"null AF_INET little-endian", layers.LinkTypeNull, join(le(2), tcp), nil, func(f *Frame) bool { return f.Family == 2 && f.L3 == 4 && f.SrcPort == 40000 }},
		{"null AF_INET big-endian host", layers.LinkTypeNull, join(be(2), tcp), nil, func(f *Frame) bool { return f.Family == 2 && f.Network == IPv4 }},
		{"null AF_INET6 macOS", layers.LinkTypeNull, join(le(30), ipv6), nil, func(f *Frame) bool { return f.Network == IPv6 }},
		{"null AF_INET6 FreeBSD", layers.LinkTypeNull, join(le(28), ipv6), nil, func(f *Frame) bool { return f.Network == IPv6 }},
		{"null AF_INET6 NetBSD", layers.LinkTypeNull, join(le(24), ipv6), nil, func(f *Frame) bool { return f.Network == IPv6 }},
		{"null AF_LINK", layers.LinkTypeNull, join(le(18), ipv6), nil, func(f *Frame) bool { return f.Network == NonIP && f.Family == 18 }},
		{"null cut", layers.LinkTypeNull, []byte{2, 0, 0}, ErrShort, nil},
		{"loop AF_INET", layers.LinkTypeLoop, join(be(2), tcp), nil, func(f *Frame) bool { return f.Network == IPv4 && f.SrcPort == 40000 }},
		{"loop little-endian is not AF_INET", layers.LinkTypeLoop, join(le(2), tcp), nil, func(f *Frame) bool { return f.Network == NonIP }},
		{"raw 101 ipv4", layers.LinkTypeRaw, tcp, nil, func(f *Frame) bool { return f.L3 == 0 && f.L4 == 20 && f.SrcPort == 40000 }},
		{"raw 101 ipv6", layers.LinkTypeRaw, ipv6, nil, func(f *Frame) bool { return f.Network == IPv6 }},
		{"DLT_RAW 12", 12, tcp, nil, func(f *Frame) bool { return f.Network == IPv4 && f.DstPort == 443 }},
		{"DLT_RAW 14", 14, ipv6, nil, func(f *Frame) bool { return f.Network == IPv6 }},
		{"LINKTYPE_IPV4 228", layers.LinkTypeIPv4, tcp, nil, func(f *Frame) bool { return f.Network == IPv4 }},
		{"raw version 5", layers.LinkTypeRaw, append([]byte{0x50}, tcp[1:]...), ErrBadHeader, nil},
		{"raw empty", layers.LinkTypeRaw, nil, ErrShort, nil},
		{"802.11", layers.LinkTypeIEEE802_11, tcp, ErrLinkType, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Frame
			err := Decode(tt.lt, tt.data, &f)
			if tt.wantErr != nil {
				var de *Error
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &de) {
					t.Fatalf("Decode() error = %v, want a *frame.Error wrapping %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode() error = %v", err)
			}
			if !tt.check(&f) {
				t.Errorf("Decode() = %+v", f)
			}
			checkOffsets(t, &f, tt.data)
		})
	}
}

// checkOffsets checks that a decoded frame's offsets lie inside the data.
func checkOffsets(t testing.TB, f *Frame, data []byte) {
	t.Helper()
	if f.L3 < 0 || f.L3 > len(data) || f.L4 < 0 || f.L4 > len(data) || f.End < 0 || f.End > len(data) ||
		(f.Transport && (f.L4 <= f.L3 || f.L4 >= f.End)) || (f.Network == IPv4 && f.L3+20 > len(data)) {
		t.Fatalf("offsets L3 %d L4 %d End %d outside %d bytes (transport %v)", f.L3, f.L4, f.End, len(data), f.Transport)
	}
}

func TestPacket(t *testing.T) {
	p := join(ether(0x0800), ipv4Packet(6, "10.1.2.3", "198.51.100.7", tcpSegment(5000, 80, 0x12, 0)))
	var f Frame
	if err := Decode(layers.LinkTypeEthernet, p, &f); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	got := f.Packet(ts, reference.Inbound)
	want := reference.Packet{
		Time: ts, Dir: reference.Inbound,
		Tuple: reference.Tuple{Proto: reference.TCP, Src: netip.MustParseAddrPort("10.1.2.3:5000"), Dst: netip.MustParseAddrPort("198.51.100.7:80")},
		Flags: reference.SYN | reference.ACK,
	}
	if got != want {
		t.Errorf("Packet() = %+v, want %+v", got, want)
	}
	// The flag byte maps bit for bit.
	for bit := range 8 {
		p[14+20+13] = 1 << bit
		if err := Decode(layers.LinkTypeEthernet, p, &f); err != nil {
			t.Fatal(err)
		}
		if want := []reference.TCPFlags{reference.FIN, reference.SYN, reference.RST, reference.PSH, reference.ACK, reference.URG, reference.ECE, reference.CWR}[bit]; f.Flags != want {
			t.Errorf("flag byte %#x: Flags = %v, want %v", 1<<bit, f.Flags, want)
		}
	}
	// UDP carries no flags into the packet, a fragment says so.
	u := join(ether(0x0800), ipv4Header(17, "10.1.2.3", "198.51.100.7", 16, nil, 0x2000), udpDatagram(1, 2, 8))
	if err := Decode(layers.LinkTypeEthernet, u, &f); err != nil {
		t.Fatal(err)
	}
	if got := f.Packet(ts, reference.Outbound); !got.Fragment || got.Flags != 0 || got.Tuple.Proto != reference.UDP {
		t.Errorf("Packet() of a UDP first fragment = %+v", got)
	}
}

func TestDecodeAllocs(t *testing.T) {
	recs := readCapture(t, "ndpi__anyconnect-vpn.pcap")
	var f Frame
	i := 0
	if a := testing.AllocsPerRun(1000, func() {
		r := recs[i%len(recs)]
		i++
		if err := Decode(r.lt, r.data, &f); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Decode: %v allocations per frame, want 0", a)
	}
}

// TestKnownLinkTypes checks that capture.KnownLinkType and Decode agree on
// the link types this project decodes.
func TestKnownLinkTypes(t *testing.T) {
	var f Frame
	for lt := range layers.LinkType(400) {
		err := Decode(lt, nil, &f)
		decodes := !errors.Is(err, ErrLinkType)
		if decodes != capture.KnownLinkType(lt) {
			t.Errorf("link type %d: Decode knows it %v, capture.KnownLinkType %v", lt, decodes, capture.KnownLinkType(lt))
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	recs := readCapture(b, "ndpi__anyconnect-vpn.pcap")
	var f Frame
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := &recs[i]
		if i++; i == len(recs) {
			i = 0
		}
		if err := Decode(r.lt, r.data, &f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkDecodeGopacket decodes the same frames with gopacket's zero-copy
// DecodingLayerParser, for comparison with the hand-written decoder.
func BenchmarkDecodeGopacket(b *testing.B) {
	recs := readCapture(b, "ndpi__anyconnect-vpn.pcap")
	var (
		eth  layers.Ethernet
		ip4  layers.IPv4
		ip6  layers.IPv6
		tcp  layers.TCP
		udp  layers.UDP
		icmp layers.ICMPv4
		pl   gopacket.Payload
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &tcp, &udp, &icmp, &pl)
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 8)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := &recs[i]
		if i++; i == len(recs) {
			i = 0
		}
		_ = parser.DecodeLayers(r.data, &decoded)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// FuzzDecode decodes arbitrary bytes as every link type: an error or a
// frame whose offsets lie inside the data, never a panic; a decoded IPv4
// TCP or UDP frame survives a rewrite round trip.
func FuzzDecode(f *testing.F) {
	// Seeds: the first frames of each real capture, with their link type.
	for _, name := range allCaptures(f) {
		recs := readCapture(f, name)
		for _, r := range recs[:min(3, len(recs))] {
			f.Add(uint16(r.lt), r.data)
		}
	}
	f.Add(uint16(layers.LinkTypeEthernet), join(ether(0x0800, 0x88a8, 10, 0x8100, 20), ipv4Packet(17, "10.0.0.1", "10.0.0.2", udpDatagram(1, 2, 3))))
	f.Fuzz(func(t *testing.T, lt uint16, data []byte) {
		for _, l := range []layers.LinkType{layers.LinkType(lt), layers.LinkTypeEthernet, layers.LinkTypeRaw, layers.LinkTypeNull,
			layers.LinkTypeLoop, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2} {
			var fr Frame
			if err := Decode(l, data, &fr); err != nil {
				var de *Error
				if !errors.As(err, &de) {
					t.Fatalf("Decode error %v is not a *frame.Error", err)
				}
				continue
			}
			checkOffsets(t, &fr, data)
			if fr.Network != IPv4 {
				continue
			}
			orig := bytes.Clone(data)
			src := netip.AddrPortFrom(netip.MustParseAddr("203.0.113.5"), 0)
			if fr.HasPorts() {
				src = netip.AddrPortFrom(src.Addr(), 61000)
			}
			back := netip.AddrPortFrom(fr.Src, fr.SrcPort)
			buf := bytes.Clone(data)
			if err := RewriteSource(buf, &fr, src); err != nil {
				t.Fatalf("RewriteSource: %v", err)
			}
			if err := RewriteSource(buf, &fr, back); err != nil {
				t.Fatalf("RewriteSource back: %v", err)
			}
			if !equalUpToZero(t, buf, orig, &fr) {
				t.Fatalf("round trip changed the frame:\n got %x\nwant %x", buf, orig)
			}
		}
	})
}
