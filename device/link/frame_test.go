package link

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/natcheck/natcheck/reference"
)

// TestAppendFrameChecksums decodes built frames with gopacket, an
// independent parser, and verifies every field and checksum it recomputes.
func TestAppendFrameChecksums(t *testing.T) {
	src, dst := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	tuple := func(p reference.Proto) reference.Tuple {
		return reference.Tuple{Proto: p, Src: netip.MustParseAddrPort("10.0.0.1:1000"), Dst: netip.MustParseAddrPort("198.51.100.1:443")}
	}
	for _, s := range []Segment{
		{Tuple: tuple(reference.TCP), Flags: reference.SYN, Seq: 12345, ID: 7},
		{Tuple: tuple(reference.TCP), Flags: reference.ACK | reference.PSH, Seq: 1, Ack: 99, Payload: []byte("hello")},
		{Tuple: reference.Tuple{Proto: reference.UDP, Src: netip.MustParseAddrPort("10.0.0.1:40001"), Dst: netip.MustParseAddrPort("198.51.100.1:40000")}, Payload: []byte("odd")},
		{Tuple: reference.Tuple{Proto: reference.ICMP, Src: netip.MustParseAddrPort("10.0.0.1:77"), Dst: netip.MustParseAddrPort("198.51.100.1:0")}, ICMPType: 8, Seq: 3},
	} {
		frame := AppendFrame(nil, src, dst, s)
		pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil {
			t.Fatalf("AppendFrame(%v): gopacket: %v", s.Tuple, el.Error())
		}
		ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		got := ip.Checksum
		ip.Checksum = 0
		buf := gopacket.NewSerializeBuffer()
		if err := ip.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
			t.Fatal(err)
		}
		if want := (&layers.IPv4{}); want.DecodeFromBytes(buf.Bytes(), gopacket.NilDecodeFeedback) == nil && want.Checksum != got {
			t.Errorf("AppendFrame(%v): IP checksum %#x, want %#x", s.Tuple, got, want.Checksum)
		}
		switch s.Tuple.Proto {
		case reference.TCP:
			tcp := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if tcp.Seq != s.Seq || tcp.Ack != s.Ack || tcp.SYN != s.Flags.Has(reference.SYN) || tcp.PSH != s.Flags.Has(reference.PSH) {
				t.Errorf("AppendFrame(%v): TCP %+v", s.Tuple, tcp)
			}
			checkL4(t, ip, tcp, tcp.Checksum, func(c *layers.TCP) { c.Checksum = 0 })
		case reference.UDP:
			udp := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
			checkL4(t, ip, udp, udp.Checksum, func(c *layers.UDP) { c.Checksum = 0 })
		case reference.ICMP:
			ic := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			if ic.Id != 77 || ic.TypeCode.Type() != 8 {
				t.Errorf("AppendFrame(icmp): %+v", ic)
			}
		}
	}
}

func checkL4[T interface {
	gopacket.SerializableLayer
	SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
}](t *testing.T, ip *layers.IPv4, l T, got uint16, clear func(T)) {
	t.Helper()
	clear(l)
	if err := l.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	payload := gopacket.Payload(ip.Payload[8:])
	if _, ok := any(l).(*layers.TCP); ok {
		payload = gopacket.Payload(ip.Payload[20:])
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, l, payload); err != nil {
		t.Fatal(err)
	}
	d := buf.Bytes()
	var want uint16
	if _, ok := any(l).(*layers.TCP); ok {
		want = uint16(d[16])<<8 | uint16(d[17])
	} else {
		want = uint16(d[6])<<8 | uint16(d[7])
	}
	if got != want {
		t.Errorf("transport checksum %#x, want %#x", got, want)
	}
}

// TestAppendFrameICMPError decodes a built ICMP error with gopacket: type
// and code as asked, a valid ICMP checksum, and a quote that is the
// quoted packet's IPv4 header (valid checksum) and its first 8 transport
// bytes, naming the quoted tuple.
func TestAppendFrameICMPError(t *testing.T) {
	for _, q := range []reference.Tuple{
		{Proto: reference.UDP, Src: netip.MustParseAddrPort("203.0.113.1:1024"), Dst: netip.MustParseAddrPort("198.51.100.1:53")},
		{Proto: reference.TCP, Src: netip.MustParseAddrPort("203.0.113.1:2047"), Dst: netip.MustParseAddrPort("198.51.100.2:443")},
	} {
		s := Segment{Tuple: reference.Tuple{Proto: reference.ICMP, Src: netip.MustParseAddrPort("192.0.2.254:0"), Dst: netip.AddrPortFrom(q.Src.Addr(), 0)},
			ICMPType: 3, ICMPCode: 3, Quote: &q, ID: 9}
		frame := AppendFrame(nil, net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}, s)
		pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		ic, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if !ok {
			t.Fatalf("quote %v: no ICMPv4 layer: %v", q, pkt)
		}
		if ic.TypeCode != layers.CreateICMPv4TypeCode(3, 3) {
			t.Errorf("quote %v: type/code %v, want 3/3", q, ic.TypeCode)
		}
		got := ic.Checksum
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, &layers.ICMPv4{TypeCode: ic.TypeCode, Id: ic.Id, Seq: ic.Seq}, gopacket.Payload(ic.Payload)); err != nil {
			t.Fatal(err)
		}
		if want := (&layers.ICMPv4{}); want.DecodeFromBytes(buf.Bytes(), gopacket.NilDecodeFeedback) != nil || want.Checksum != got {
			t.Errorf("quote %v: ICMP checksum %#x, want %#x", q, got, want.Checksum)
		}
		if len(ic.Payload) != 28 {
			t.Fatalf("quote %v: %d bytes quoted, want 28 (IPv4 header and 8 bytes)", q, len(ic.Payload))
		}
		var inner layers.IPv4
		if err := inner.DecodeFromBytes(ic.Payload, gopacket.NilDecodeFeedback); err != nil {
			t.Fatalf("quote %v: %v", q, err)
		}
		sum := 0
		for i := 0; i < 20; i += 2 {
			sum += int(ic.Payload[i])<<8 | int(ic.Payload[i+1])
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		ports := inner.Payload[:4]
		gotQ := reference.Tuple{Proto: reference.Proto(inner.Protocol),
			Src: netip.AddrPortFrom(netip.AddrFrom4([4]byte(inner.SrcIP.To4())), uint16(ports[0])<<8|uint16(ports[1])),
			Dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte(inner.DstIP.To4())), uint16(ports[2])<<8|uint16(ports[3]))}
		if gotQ != q || sum != 0xffff {
			t.Errorf("quoted %v (header sum %#x), want %v with a valid header checksum", gotQ, sum, q)
		}
	}
}
