package frame

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/reference"
)

type counts struct {
	ipv4, ipv6, nonIP      int
	tcp, udp, icmp, other  int
	frag, trunc, opts      int
	syn, rst, vlan1, vlan2 int
	errs                   int
}

func countFrames(t *testing.T, name string) counts {
	t.Helper()
	var c counts
	var f Frame
	for _, r := range readCapture(t, name) {
		if err := Decode(r.lt, r.data, &f); err != nil {
			t.Errorf("%s packet %d: %v", name, r.num, err)
			c.errs++
			continue
		}
		checkOffsets(t, &f, r.data)
		switch f.Network {
		case IPv6:
			c.ipv6++
			continue
		case NonIP:
			c.nonIP++
			continue
		}
		c.ipv4++
		switch f.Proto {
		case reference.TCP:
			c.tcp++
			if f.Flags&(reference.SYN|reference.ACK) == reference.SYN {
				c.syn++
			}
			if f.Flags.Has(reference.RST) {
				c.rst++
			}
		case reference.UDP:
			c.udp++
		case reference.ICMP:
			c.icmp++
		default:
			c.other++
		}
		if f.Fragment {
			c.frag++
		}
		if f.Truncated {
			c.trunc++
		}
		if r.data[f.L3]&0x0f > 5 {
			c.opts++
		}
		switch f.NumVLANs {
		case 1:
			c.vlan1++
		case 2:
			c.vlan2++
		}
	}
	return c
}

// TestCaptureCounts decodes every frame of every real capture. The expected
// counts come from tshark 4.0.17 (frame.protocols for the network layer,
// the first ip.proto, ip.flags.mf/ip.frag_offset, tcp.flags, vlan.id;
// `capinfos` for the cut records), and agree with the captures' README.
func TestCaptureCounts(t *testing.T) {
	tests := []struct {
		file string
		want counts
	}{
		{"ndpi__anyconnect-vpn.pcap", counts{ipv4: 558, ipv6: 27, nonIP: 4, tcp: 422, udp: 126, icmp: 2, other: 8, opts: 8, syn: 12, rst: 2}},
		{"pcapplusplus__many_interfaces-1.pcapng", counts{ipv4: 64, tcp: 32, udp: 32, syn: 2}},
		{"ndpi__quic_interop_V.pcapng", counts{ipv4: 160, ipv6: 86, udp: 139, icmp: 21}},
		{"chrissanders__icmp_traceroute.pcapng", counts{ipv4: 54, icmp: 54}},
		{"chrissanders__ip_frag_source.pcapng", counts{ipv4: 6, icmp: 6, frag: 6}},
		{"ndpi__dns_fragmented.pcap", counts{ipv4: 22, ipv6: 44, tcp: 10, udp: 12, frag: 8, syn: 1}},
		{"pcapplusplus__sll-any-device.pcap", counts{ipv4: 510, ipv6: 1, nonIP: 7, tcp: 483, udp: 27, syn: 1}},
		{"zeek__openjdk-zeek.org-sll2.pcap", counts{ipv4: 6, tcp: 6, syn: 1}},
		{"suricata__tcp-empty-sack-rawip.pcap", counts{ipv4: 42, tcp: 42, syn: 1, rst: 1}},
		{"zeek__redis-attr-null-loopback.pcap", counts{ipv4: 24, ipv6: 4, tcp: 24, syn: 2}},
		{"tcpdump__pptp-bigendian.pcap", counts{ipv4: 23, tcp: 22, other: 1, syn: 1}},
		{"pcapplusplus__nanosecs_big_endian.pcap", counts{ipv4: 10, tcp: 10, syn: 1}},
		{"zeek__get-to-ssh-server-nsec.pcap", counts{ipv4: 9, tcp: 9, syn: 1, rst: 2}},
		{"zeek__vlan-collisions-qinq.pcap", counts{ipv4: 42, tcp: 42, syn: 3, vlan1: 14, vlan2: 14}},
		{"zeek__communityid-tcp-snaplen96.pcap", counts{ipv4: 12, tcp: 12, syn: 1, trunc: 3}},
		{"joincap__unexpected_eof_on_second_packet.pcap", counts{ipv6: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := countFrames(t, tt.file)
			if got != tt.want {
				t.Errorf("counts = %+v\nwant     %+v", got, tt.want)
			}
		})
	}
}

// TestCapturePackets checks single packets of the real captures, one or more
// per link type. Expected values are tshark's (ip.src, tcp.srcport, ...,
// tcp.flags, vlan.id, sll.pkttype, null.family, ip.frag_offset), except the
// ports of the first fragment in dns_fragmented, which tshark shows on the
// reassembled last fragment (frame 3).
func TestCapturePackets(t *testing.T) {
	tuple := func(proto reference.Proto, src, dst string) reference.Tuple {
		return reference.Tuple{Proto: proto, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst)}
	}
	tests := []struct {
		file  string
		num   int
		check func(f *Frame) error
	}{
		{"ndpi__anyconnect-vpn.pcap", 379, wantTCP(tuple(reference.TCP, "10.0.0.227:56886", "17.57.144.116:5223"), reference.RST)},
		{"ndpi__anyconnect-vpn.pcap", 8, func(f *Frame) error { // IGMP with Router Alert: IHL 6
			if f.Proto != 2 || f.Transport || f.Src != netip.MustParseAddr("10.0.0.1") || f.Dst != netip.MustParseAddr("224.0.0.1") || f.L3 != 14 {
				return fmt.Errorf("want IGMP 10.0.0.1 -> 224.0.0.1")
			}
			return nil
		}},
		{"ndpi__anyconnect-vpn.pcap", 95, func(f *Frame) error { // port unreachable quoting UDP
			if f.Proto != reference.ICMP || f.ICMPType != 3 || f.ICMPCode != 3 || f.Tuple() != tuple(reference.ICMP, "10.0.0.227:0", "75.75.76.76:0") {
				return fmt.Errorf("want ICMP 3/3 10.0.0.227 -> 75.75.76.76")
			}
			return nil
		}},
		{"zeek__vlan-collisions-qinq.pcap", 1, wantVLANs(nil, tuple(reference.TCP, "141.142.228.5:59856", "192.150.187.43:80"), reference.SYN)},
		{"zeek__vlan-collisions-qinq.pcap", 2, wantVLANs([]uint16{42}, tuple(reference.TCP, "141.142.228.5:59856", "192.150.187.43:80"), reference.SYN)},
		{"zeek__vlan-collisions-qinq.pcap", 6, wantVLANs([]uint16{10, 20}, tuple(reference.TCP, "141.142.228.5:59856", "192.150.187.43:80"), reference.SYN)},
		{"zeek__vlan-collisions-qinq.pcap", 3, wantVLANs(nil, tuple(reference.TCP, "192.150.187.43:80", "141.142.228.5:59856"), reference.SYN|reference.ACK)},
		{"zeek__communityid-tcp-snaplen96.pcap", 4, wantCut(548, tuple(reference.TCP, "128.232.110.120:34855", "66.35.250.204:80"), reference.PSH|reference.ACK)},
		{"zeek__communityid-tcp-snaplen96.pcap", 6, wantCut(1500, tuple(reference.TCP, "66.35.250.204:80", "128.232.110.120:34855"), reference.ACK)},
		{"zeek__communityid-tcp-snaplen96.pcap", 8, wantCut(335, tuple(reference.TCP, "66.35.250.204:80", "128.232.110.120:34855"), reference.PSH|reference.ACK)},
		{"chrissanders__ip_frag_source.pcapng", 1, wantFrag(0x7474, 0, true, true)},
		{"chrissanders__ip_frag_source.pcapng", 2, wantFrag(0x7474, 1480, true, false)},
		{"chrissanders__ip_frag_source.pcapng", 3, wantFrag(0x7474, 2960, false, false)},
		{"chrissanders__ip_frag_source.pcapng", 6, wantFrag(0x07f8, 2960, false, false)},
		{"ndpi__dns_fragmented.pcap", 2, func(f *Frame) error {
			if err := wantFrag(f.ID, 0, true, true)(f); err != nil {
				return err
			}
			if want := tuple(reference.UDP, "193.24.227.238:53", "172.217.40.76:56680"); f.Tuple() != want {
				return fmt.Errorf("tuple %v, want %v", f.Tuple(), want)
			}
			return nil
		}},
		{"ndpi__dns_fragmented.pcap", 3, wantFrag(0, 1480, false, false)},
		{"zeek__openjdk-zeek.org-sll2.pcap", 1, wantSLL(4, tuple(reference.TCP, "192.168.64.6:55058", "192.0.78.150:443"), reference.SYN)},
		{"zeek__openjdk-zeek.org-sll2.pcap", 6, wantSLL(0, tuple(reference.TCP, "192.0.78.150:443", "192.168.64.6:55058"), reference.PSH|reference.ACK)},
		{"pcapplusplus__sll-any-device.pcap", 1, func(f *Frame) error {
			if f.LinkType != layers.LinkTypeLinuxSLL || f.L3 != 16 {
				return fmt.Errorf("want SLL with the network header at 16")
			}
			return nil
		}},
		{"zeek__redis-attr-null-loopback.pcap", 1, func(f *Frame) error {
			if f.Family != 30 || f.Network != IPv6 {
				return fmt.Errorf("want AF_INET6 30, IPv6")
			}
			return nil
		}},
		{"zeek__redis-attr-null-loopback.pcap", 3, wantTCP(tuple(reference.TCP, "127.0.0.1:62283", "127.0.0.1:6379"), reference.SYN)},
		{"suricata__tcp-empty-sack-rawip.pcap", 42, func(f *Frame) error {
			if err := wantTCP(tuple(reference.TCP, "192.168.0.54:49506", "17.173.66.179:443"), reference.RST)(f); err != nil {
				return err
			}
			if f.Seq != 3742380973 || f.L3 != 0 {
				return fmt.Errorf("seq %d L3 %d, want 3742380973 at 0", f.Seq, f.L3)
			}
			return nil
		}},
		{"ndpi__quic_interop_V.pcapng", 2, wantTCP(tuple(reference.UDP, "192.168.1.128:37643", "71.202.41.169:443"), 0)},
		{"pcapplusplus__many_interfaces-1.pcapng", 3, func(f *Frame) error { // lo0, NULL
			if f.LinkType != layers.LinkTypeNull || f.Family != 2 {
				return fmt.Errorf("want NULL AF_INET")
			}
			return wantTCP(tuple(reference.UDP, "192.168.1.139:17500", "255.255.255.255:17500"), 0)(f)
		}},
		{"tcpdump__pptp-bigendian.pcap", 1, wantTCP(tuple(reference.TCP, "10.1.1.11:3025", "10.1.1.10:1723"), reference.SYN)},
	}
	frames := map[string][]record{}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s#%d", tt.file, tt.num), func(t *testing.T) {
			recs, ok := frames[tt.file]
			if !ok {
				recs = readCapture(t, tt.file)
				frames[tt.file] = recs
			}
			r := recs[tt.num-1]
			var f Frame
			if err := Decode(r.lt, r.data, &f); err != nil {
				t.Fatal(err)
			}
			if err := tt.check(&f); err != nil {
				t.Errorf("packet %d: %v; decoded %+v", tt.num, err, f)
			}
		})
	}
}

func wantTCP(tu reference.Tuple, flags reference.TCPFlags) func(*Frame) error {
	return func(f *Frame) error {
		if f.Network != IPv4 || f.Tuple() != tu || f.Flags != flags || !f.Transport || f.Fragment {
			return fmt.Errorf("tuple %v flags %v, want %v %v", f.Tuple(), f.Flags, tu, flags)
		}
		return nil
	}
}

func wantVLANs(vlans []uint16, tu reference.Tuple, flags reference.TCPFlags) func(*Frame) error {
	return func(f *Frame) error {
		if f.NumVLANs != len(vlans) || fmt.Sprint(f.VLANs[:f.NumVLANs]) != fmt.Sprint(vlans) {
			return fmt.Errorf("vlans %v, want %v", f.VLANs[:f.NumVLANs], vlans)
		}
		return wantTCP(tu, flags)(f)
	}
}

func wantCut(ipLen int, tu reference.Tuple, flags reference.TCPFlags) func(*Frame) error {
	return func(f *Frame) error {
		if !f.Truncated || f.TotalLen != ipLen || f.End != 96 {
			return fmt.Errorf("truncated %v total %d end %d, want cut at 96 of %d", f.Truncated, f.TotalLen, f.End, ipLen)
		}
		return wantTCP(tu, flags)(f)
	}
}

func wantFrag(id uint16, off int, mf, transport bool) func(*Frame) error {
	return func(f *Frame) error {
		if !f.Fragment || f.MoreFragments != mf || f.FragOffset != off || f.Transport != transport || (id != 0 && f.ID != id) {
			return fmt.Errorf("fragment %v mf %v offset %d transport %v id %#x, want mf %v offset %d transport %v id %#x",
				f.Fragment, f.MoreFragments, f.FragOffset, f.Transport, f.ID, mf, off, transport, id)
		}
		if !f.Packet(time.Time{}, reference.Outbound).Fragment {
			return fmt.Errorf("Packet().Fragment is false")
		}
		return nil
	}
}

func wantSLL(pktType uint8, tu reference.Tuple, flags reference.TCPFlags) func(*Frame) error {
	return func(f *Frame) error {
		if f.PacketType != pktType || f.L3 != 20 {
			return fmt.Errorf("packet type %d L3 %d, want %d 20", f.PacketType, f.L3, pktType)
		}
		return wantTCP(tu, flags)(f)
	}
}

// TestDecodeAgreesWithGopacket decodes every frame of every real capture
// with gopacket as well, and compares what both found.
func TestDecodeAgreesWithGopacket(t *testing.T) {
	for _, name := range allCaptures(t) {
		t.Run(name, func(t *testing.T) {
			var f Frame
			for _, r := range readCapture(t, name) {
				if err := Decode(r.lt, r.data, &f); err != nil {
					t.Fatalf("packet %d: %v", r.num, err)
				}
				p := gopacket.NewPacket(r.data, r.lt, gopacket.DecodeOptions{NoCopy: true})
				if err := agree(&f, p); err != nil {
					t.Errorf("packet %d: %v", r.num, err)
				}
			}
		})
	}
}

func agree(f *Frame, p gopacket.Packet) error {
	var vlans []uint16
	for _, l := range p.Layers() {
		if d, ok := l.(*layers.Dot1Q); ok {
			vlans = append(vlans, d.VLANIdentifier)
		}
	}
	if fmt.Sprint(vlans) != fmt.Sprint(f.VLANs[:f.NumVLANs]) && !(len(vlans) == 0 && f.NumVLANs == 0) {
		return fmt.Errorf("vlans %v, gopacket %v", f.VLANs[:f.NumVLANs], vlans)
	}
	net := NonIP
	if nl := p.NetworkLayer(); nl != nil {
		switch nl.LayerType() {
		case layers.LayerTypeIPv4:
			net = IPv4
		case layers.LayerTypeIPv6:
			net = IPv6
		}
	}
	if f.Network != net {
		return fmt.Errorf("network %v, gopacket %v", f.Network, net)
	}
	if net != IPv4 {
		return nil
	}
	ip := p.NetworkLayer().(*layers.IPv4)
	frag := ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0
	if f.Src.String() != ip.SrcIP.String() || f.Dst.String() != ip.DstIP.String() || f.Proto != reference.Proto(ip.Protocol) ||
		f.TTL != ip.TTL || f.ID != ip.Id || f.Fragment != frag || f.FragOffset != int(ip.FragOffset)*8 ||
		f.L4-f.L3 != int(ip.IHL)*4 && f.Transport {
		return fmt.Errorf("ipv4 %v %v %v ttl %d id %d frag %v/%d, gopacket %v %v %v ttl %d id %d frag %v/%d",
			f.Src, f.Dst, f.Proto, f.TTL, f.ID, f.Fragment, f.FragOffset, ip.SrcIP, ip.DstIP, ip.Protocol, ip.TTL, ip.Id, frag, ip.FragOffset)
	}
	if ip.FragOffset != 0 {
		if f.Transport {
			return fmt.Errorf("transport decoded in a non-first fragment")
		}
		return nil
	}
	// gopacket leaves every fragment undecoded; decode the transport
	// header of a first fragment from its payload.
	tl := p.TransportLayer()
	var icmp *layers.ICMPv4
	if l, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
		icmp = l
	}
	if frag {
		switch f.Proto {
		case reference.UDP:
			u := &layers.UDP{}
			if err := u.DecodeFromBytes(ip.Payload, gopacket.NilDecodeFeedback); err == nil {
				tl = u
			}
		case reference.ICMP:
			i := &layers.ICMPv4{}
			if err := i.DecodeFromBytes(ip.Payload, gopacket.NilDecodeFeedback); err == nil {
				icmp = i
			}
		}
	}
	switch l := tl.(type) {
	case *layers.TCP:
		var flags reference.TCPFlags
		for i, b := range []bool{l.FIN, l.SYN, l.RST, l.PSH, l.ACK, l.URG, l.ECE, l.CWR} {
			if b {
				flags |= 1 << i
			}
		}
		if !f.Transport || f.SrcPort != uint16(l.SrcPort) || f.DstPort != uint16(l.DstPort) || f.Flags != flags || f.Seq != l.Seq || f.Ack != l.Ack {
			return fmt.Errorf("tcp %d>%d %v seq %d ack %d, gopacket %d>%d %v seq %d ack %d",
				f.SrcPort, f.DstPort, f.Flags, f.Seq, f.Ack, l.SrcPort, l.DstPort, flags, l.Seq, l.Ack)
		}
	case *layers.UDP:
		if !f.Transport || f.SrcPort != uint16(l.SrcPort) || f.DstPort != uint16(l.DstPort) {
			return fmt.Errorf("udp %d>%d, gopacket %d>%d", f.SrcPort, f.DstPort, l.SrcPort, l.DstPort)
		}
	default:
		if icmp != nil {
			if !f.Transport || f.ICMPType != icmp.TypeCode.Type() || f.ICMPCode != icmp.TypeCode.Code() {
				return fmt.Errorf("icmp %d/%d, gopacket %d/%d", f.ICMPType, f.ICMPCode, icmp.TypeCode.Type(), icmp.TypeCode.Code())
			}
		} else if f.Transport {
			return fmt.Errorf("transport %v decoded, gopacket found none", f.Proto)
		}
	}
	return nil
}
