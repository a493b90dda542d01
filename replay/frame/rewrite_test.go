package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/reference"
)

// refSum is the slow reference: the one's complement sum of the bytes as
// 16-bit big-endian words, each buffer padded to an even length, computed
// in 64 bits and folded once at the end, independently of the code under
// test.
func refSum(bufs ...[]byte) uint64 {
	var s uint64
	for _, b := range bufs {
		for i := 0; i < len(b); i += 2 {
			w := uint64(b[i]) << 8
			if i+1 < len(b) {
				w |= uint64(b[i+1])
			}
			s += w
		}
	}
	return s
}

func refFold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// pseudoHeader is the TCP/UDP pseudo-header of the IPv4 packet ip, with the
// transport length the IPv4 header gives.
func pseudoHeader(ip []byte) []byte {
	ihl := int(ip[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	b := append([]byte(nil), ip[12:20]...)
	b = append(b, 0, ip[9])
	return binary.BigEndian.AppendUint16(b, uint16(total-ihl))
}

// residuals returns the folded sums, checksum included, of the IPv4 header
// and of the transport segment with its pseudo-header (over the captured
// bytes only). A correct checksum folds to 0xffff; rewriting must leave
// every residual as it was, modulo 0xffff.
func residuals(data []byte, f *Frame) (ip, transport uint16) {
	ihl := int(data[f.L3]&0xf) * 4
	ip = refFold(refSum(data[f.L3 : f.L3+ihl]))
	if f.HasPorts() {
		transport = refFold(refSum(pseudoHeader(data[f.L3:]), data[f.L4:f.End]))
	}
	return ip % 0xffff, transport % 0xffff
}

// equalUpToZero reports whether a and b are equal but for checksum fields
// that hold 0x0000 in one and 0xffff in the other: the two zeros of one's
// complement, which RFC 1624's equation 3 does not preserve (it never
// produces 0xffff).
func equalUpToZero(t testing.TB, a, b []byte, f *Frame) bool {
	t.Helper()
	if bytes.Equal(a, b) {
		return true
	}
	if len(a) != len(b) {
		return false
	}
	a, b = bytes.Clone(a), bytes.Clone(b)
	// The IPv4 header checksum, and the TCP or ICMP echo checksum: an
	// incremental update (RFC 1624) may turn one's complement +0 (0xffff)
	// into -0 (0x0000) or back, which verify alike.
	for _, off := range []int{f.L3 + 10, f.L4 + 16, f.L4 + 2} {
		if off == f.L4+16 && (f.Proto != reference.TCP || !f.Transport) {
			continue
		}
		if off == f.L4+2 && !f.IsEcho() {
			continue
		}
		x, y := binary.BigEndian.Uint16(a[off:]), binary.BigEndian.Uint16(b[off:])
		if x%0xffff == 0 && y%0xffff == 0 {
			binary.BigEndian.PutUint16(a[off:], 0)
			binary.BigEndian.PutUint16(b[off:], 0)
		}
	}
	return bytes.Equal(a, b)
}

// TestRewriteCaptures rewrites the source and then the destination of every
// IPv4 frame of every real capture, and checks the result by full
// recomputation: the IPv4 header checksum and the TCP/UDP checksum fold to
// what they folded to as captured (0xffff when they were right), only the
// address, port and checksum bytes changed, and rewriting back restores the
// captured bytes.
func TestRewriteCaptures(t *testing.T) {
	newSrc := netip.MustParseAddr("203.0.113.77")
	newDst := netip.MustParseAddr("198.51.100.200")
	for _, name := range allCaptures(t) {
		t.Run(name, func(t *testing.T) {
			var f Frame
			var rewritten, badBefore, udpNone, cut int
			for _, r := range readCapture(t, name) {
				if err := Decode(r.lt, r.data, &f); err != nil || f.Network != IPv4 {
					continue
				}
				orig := bytes.Clone(r.data)
				ipRes, tRes := residuals(r.data, &f)
				if f.HasPorts() && tRes != 0 && !f.Truncated && !f.Fragment {
					badBefore++ // offloaded on the sending host, or an edited trace
				}
				if f.Proto == reference.UDP && f.HasPorts() && binary.BigEndian.Uint16(r.data[f.L4+6:]) == 0 {
					udpNone++
				}
				if f.Truncated {
					cut++
				}
				back := [2]netip.AddrPort{netip.AddrPortFrom(f.Src, f.SrcPort), netip.AddrPortFrom(f.Dst, f.DstPort)}
				var sp, dp uint16
				switch {
				case f.HasPorts():
					sp, dp = 61000, 8443
				case f.IsEcho() && f.ICMPType == 8:
					sp = 61000 // a request's identifier is its source's port
				case f.IsEcho():
					dp = 8443 // a reply's, its destination's
				}
				data := r.data
				if err := RewriteSource(data, &f, netip.AddrPortFrom(newSrc, sp)); err != nil {
					t.Fatalf("packet %d: %v", r.num, err)
				}
				if err := RewriteDest(data, &f, netip.AddrPortFrom(newDst, dp)); err != nil {
					t.Fatalf("packet %d: %v", r.num, err)
				}
				rewritten++
				if gi, gt := residuals(data, &f); gi != ipRes || gt != tRes {
					t.Fatalf("packet %d: residuals %#x %#x after rewrite, %#x %#x before", r.num, gi, gt, ipRes, tRes)
				}
				if f.Proto == reference.UDP && f.HasPorts() {
					was, is := binary.BigEndian.Uint16(orig[f.L4+6:]), binary.BigEndian.Uint16(data[f.L4+6:])
					if (was == 0) != (is == 0) {
						t.Fatalf("packet %d: UDP checksum %#x became %#x", r.num, was, is)
					}
				}
				// Only addresses, ports and checksums changed.
				changed := map[int]bool{f.L3 + 10: true, f.L3 + 11: true}
				for i := range 8 {
					changed[f.L3+12+i] = true
				}
				if f.HasPorts() {
					c := 16
					if f.Proto == reference.UDP {
						c = 6
					}
					for _, i := range []int{0, 1, 2, 3, c, c + 1} {
						changed[f.L4+i] = true
					}
				}
				if f.IsEcho() {
					for _, i := range []int{2, 3, 4, 5} { // checksum, identifier
						changed[f.L4+i] = true
					}
				}
				for i := range data {
					if data[i] != orig[i] && !changed[i] {
						t.Fatalf("packet %d: byte %d changed", r.num, i)
					}
				}
				var g Frame
				if err := Decode(r.lt, data, &g); err != nil {
					t.Fatalf("packet %d: decode after rewrite: %v", r.num, err)
				}
				if g.Src != newSrc || g.Dst != newDst || g.SrcPort != sp || g.DstPort != dp || g != f {
					t.Fatalf("packet %d: decoded %v after rewrite; the rewritten Frame says %v", r.num, g.Tuple(), f.Tuple())
				}
				if err := RewriteSource(data, &f, back[0]); err != nil {
					t.Fatal(err)
				}
				if err := RewriteDest(data, &f, back[1]); err != nil {
					t.Fatal(err)
				}
				if !equalUpToZero(t, data, orig, &f) {
					t.Fatalf("packet %d: round trip changed the bytes:\n got %x\nwant %x", r.num, data, orig)
				}
			}
			t.Logf("%d IPv4 frames rewritten; %d whole unfragmented ones with a transport checksum wrong as captured, %d UDP without checksum, %d cut by the snap length",
				rewritten, badBefore, udpNone, cut)
		})
	}
}

func TestRewrite(t *testing.T) {
	newAP := netip.MustParseAddrPort("203.0.113.5:1024")
	tcp := join(ether(0x0800), ipv4Packet(6, "10.0.0.1", "192.0.2.9", tcpSegment(40000, 443, 0x02, 5)))
	udp := join(ether(0x0800), ipv4Packet(17, "10.0.0.1", "192.0.2.9", udpDatagram(5353, 53, 12)))
	udpNone := bytes.Clone(udp)
	binary.BigEndian.PutUint16(udpNone[14+20+6:], 0)
	echo := join(ether(0x0800), ipv4Header(1, "10.0.0.1", "192.0.2.9", 8, nil, 0), []byte{8, 0, 0xf7, 0xfd, 0, 1, 0, 1})
	reply := join(ether(0x0800), ipv4Header(1, "192.0.2.9", "10.0.0.1", 8, nil, 0), []byte{0, 0, 0xff, 0xfd, 0, 1, 0, 1})
	icmp := join(ether(0x0800), ipv4Header(1, "10.0.0.1", "192.0.2.9", 8, nil, 0), []byte{3, 3, 0xfc, 0xfc, 0, 0, 0, 0})
	later := join(ether(0x0800), ipv4Header(17, "10.0.0.1", "192.0.2.9", 16, nil, 185), make([]byte, 16))
	ipv6 := join(ether(0x86dd), append([]byte{0x60}, make([]byte, 39)...))
	tests := []struct {
		name    string
		data    []byte
		dest    bool
		ap      netip.AddrPort
		wantErr error
	}{
		{"tcp source", tcp, false, newAP, nil},
		{"tcp destination", tcp, true, newAP, nil},
		{"udp source", udp, false, newAP, nil},
		{"udp destination", udp, true, newAP, nil},
		{"udp without checksum", udpNone, false, newAP, nil},
		{"icmp address only", icmp, false, netip.AddrPortFrom(newAP.Addr(), 0), nil},
		{"icmp with a port", icmp, false, newAP, ErrNoPorts},
		{"icmp echo request identifier", echo, false, newAP, nil},
		{"icmp echo reply identifier", reply, true, newAP, nil},
		{"later fragment address only", later, true, netip.AddrPortFrom(newAP.Addr(), 0), nil},
		{"later fragment with a port", later, true, newAP, ErrNoPorts},
		{"ipv6 frame", ipv6, false, newAP, ErrNotIPv4},
		{"ipv6 address", tcp, false, netip.MustParseAddrPort("[2001:db8::1]:80"), ErrNotIPv4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := bytes.Clone(tt.data)
			var f Frame
			if err := Decode(layers.LinkTypeEthernet, data, &f); err != nil {
				t.Fatal(err)
			}
			rw := RewriteSource
			if tt.dest {
				rw = RewriteDest
			}
			err := rw(data, &f, tt.ap)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				if !bytes.Equal(data, tt.data) {
					t.Errorf("a failed rewrite changed the frame")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var g Frame
			if err := Decode(layers.LinkTypeEthernet, data, &g); err != nil {
				t.Fatal(err)
			}
			got := netip.AddrPortFrom(g.Src, g.SrcPort)
			if tt.dest {
				got = netip.AddrPortFrom(g.Dst, g.DstPort)
			}
			if got != tt.ap {
				t.Errorf("rewritten to %v, want %v", got, tt.ap)
			}
			if ip, tr := residuals(data, &g); ip != 0 {
				t.Errorf("IPv4 checksum wrong after rewrite")
			} else if g.HasPorts() && tr != 0 && binary.BigEndian.Uint16(data[g.L4+6:]) != 0 {
				t.Errorf("transport checksum wrong after rewrite")
			}
			if g.Proto == reference.ICMP && !g.IsEcho() && !bytes.Equal(data[g.L4:], tt.data[g.L4:]) {
				t.Errorf("ICMP bytes changed: its checksum has no pseudo-header")
			}
			if g.IsEcho() {
				if s := refFold(refSum(data[g.L4:g.End])); s != 0xffff {
					t.Errorf("ICMP echo checksum folds to %#x after the identifier rewrite, want 0xffff", s)
				}
				if !bytes.Equal(data[g.L4+6:], tt.data[g.L4+6:]) || data[g.L4] != tt.data[g.L4] {
					t.Errorf("ICMP echo bytes other than the identifier and checksum changed")
				}
			}
			if tt.name == "udp without checksum" && binary.BigEndian.Uint16(data[g.L4+6:]) != 0 {
				t.Errorf("UDP checksum 0 became %#x, want 0 (none)", binary.BigEndian.Uint16(data[g.L4+6:]))
			}
		})
	}
}

// A UDP checksum that comes out as 0 is sent as 0xffff (RFC 768).
func TestRewriteUDPZero(t *testing.T) {
	orig := join(ether(0x0800), ipv4Packet(17, "10.0.0.1", "192.0.2.9", udpDatagram(5353, 53, 12)))
	addr := netip.MustParseAddr("203.0.113.5")
	var f Frame
	for port := range 65536 {
		data := bytes.Clone(orig)
		if err := Decode(layers.LinkTypeEthernet, data, &f); err != nil {
			t.Fatal(err)
		}
		if err := RewriteSource(data, &f, netip.AddrPortFrom(addr, uint16(port))); err != nil {
			t.Fatal(err)
		}
		if c := binary.BigEndian.Uint16(data[f.L4+6:]); c == 0xffff {
			if _, tr := residuals(data, &f); tr != 0 {
				t.Fatalf("port %d: checksum 0xffff does not verify", port)
			}
			return
		} else if c == 0 {
			t.Fatalf("port %d: computed UDP checksum written as 0", port)
		}
	}
	t.Fatal("no port gives a zero UDP checksum")
}

func TestRewriteAllocs(t *testing.T) {
	data := join(ether(0x0800), ipv4Packet(6, "10.0.0.1", "192.0.2.9", tcpSegment(40000, 443, 0x10, 100)))
	var f Frame
	if err := Decode(layers.LinkTypeEthernet, data, &f); err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParseAddrPort("203.0.113.5:1024"), netip.MustParseAddrPort("10.0.0.1:40000")
	if n := testing.AllocsPerRun(1000, func() {
		_ = RewriteSource(data, &f, a)
		_ = RewriteSource(data, &f, b)
	}); n != 0 {
		t.Errorf("RewriteSource: %v allocations, want 0", n)
	}
}

func BenchmarkRewrite(b *testing.B) {
	data := join(ether(0x0800), ipv4Packet(6, "10.0.0.1", "192.0.2.9", tcpSegment(40000, 443, 0x10, 1400)))
	var f Frame
	if err := Decode(layers.LinkTypeEthernet, data, &f); err != nil {
		b.Fatal(err)
	}
	aps := [2]netip.AddrPort{netip.MustParseAddrPort("203.0.113.5:1024"), netip.MustParseAddrPort("10.0.0.1:40000")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := RewriteSource(data, &f, aps[i&1]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func TestAppendRST(t *testing.T) {
	tu := reference.Tuple{Proto: reference.TCP, Src: netip.MustParseAddrPort("203.0.113.5:1024"), Dst: netip.MustParseAddrPort("10.0.0.1:40000")}
	prefix := []byte{0xaa, 0xbb}
	tests := []struct {
		name      string
		ack       bool
		wantFlags reference.TCPFlags
		wantAck   uint32
	}{
		{"rst", false, reference.RST, 0},
		{"rst ack", true, reference.RST | reference.ACK, 777},
	}
	for _, tt := range tests {
		b, err := AppendRST(bytes.Clone(prefix), tu, 12345, tt.ack, 777)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != len(prefix)+RSTLen || !bytes.Equal(b[:2], prefix) {
			t.Fatalf("%s: %d bytes, want the prefix and %d", tt.name, len(b), RSTLen)
		}
		p := b[2:]
		var f Frame
		if err := Decode(layers.LinkTypeRaw, p, &f); err != nil {
			t.Fatal(err)
		}
		if f.Tuple() != tu || f.Flags != tt.wantFlags || f.Seq != 12345 || f.Ack != tt.wantAck || f.Truncated || f.PayloadLen != 0 {
			t.Errorf("%s: decoded %v %v seq %d ack %d, want %v %v seq 12345 ack %d", tt.name, f.Tuple(), f.Flags, f.Seq, f.Ack, tu, tt.wantFlags, tt.wantAck)
		}
		if ip, tr := residuals(p, &f); ip != 0 || tr != 0 {
			t.Errorf("%s: checksums do not verify", tt.name)
		}
	}
	if _, err := AppendRST(nil, reference.Tuple{Proto: reference.UDP, Src: tu.Src, Dst: tu.Dst}, 0, false, 0); err == nil {
		t.Error("AppendRST for a UDP tuple succeeded")
	}
}

func TestAppendReset(t *testing.T) {
	tests := []struct {
		name      string
		flags     byte
		payload   int
		want      bool
		wantFlags reference.TCPFlags
		wantSeq   uint32
		wantAck   uint32
	}{
		{"syn", 0x02, 0, true, reference.RST | reference.ACK, 0, 1001},
		{"ack with data", 0x18, 100, true, reference.RST, 2000, 0},
		{"fin without ack", 0x01, 10, true, reference.RST | reference.ACK, 0, 1011},
		{"rst is not answered", 0x04, 0, false, 0, 0, 0},
	}
	for _, tt := range tests {
		data := ipv4Packet(6, "10.0.0.1", "192.0.2.9", tcpSegment(40000, 443, tt.flags, tt.payload))
		var f Frame
		if err := Decode(layers.LinkTypeRaw, data, &f); err != nil {
			t.Fatal(err)
		}
		b, err := AppendReset(nil, &f)
		if err != nil {
			t.Fatal(err)
		}
		if !tt.want {
			if len(b) != 0 {
				t.Errorf("%s: answered with %d bytes, want nothing", tt.name, len(b))
			}
			continue
		}
		var g Frame
		if err := Decode(layers.LinkTypeRaw, b, &g); err != nil {
			t.Fatal(err)
		}
		if g.Tuple() != f.Tuple().Reverse() || g.Flags != tt.wantFlags || g.Seq != tt.wantSeq || g.Ack != tt.wantAck {
			t.Errorf("%s: %v %v seq %d ack %d, want %v %v seq %d ack %d", tt.name, g.Tuple(), g.Flags, g.Seq, g.Ack,
				f.Tuple().Reverse(), tt.wantFlags, tt.wantSeq, tt.wantAck)
		}
	}
}
