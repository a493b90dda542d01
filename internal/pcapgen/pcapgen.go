// Package pcapgen builds synthetic packets and captures for natcheck's
// tests, benchmarks and fuzzers, and for the scenario captures of natcheck
// gen: Ethernet frames carrying IPv4 and TCP, UDP or ICMP with valid
// checksums, serialized by gopacket, and pcap files of them.
package pcapgen

import (
	"fmt"
	"io"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/natcheck/natcheck/reference"
)

// Frame serializes p into buf as an Ethernet frame carrying IPv4 and p's
// TCP (with p.Flags), UDP or ICMP echo header (a request, or a reply
// when p is inbound; the inside port is its identifier), then payload, with valid
// lengths and checksums; a fragment has More Fragments set. The result
// aliases buf.
func Frame(buf gopacket.SerializeBuffer, p reference.Packet, payload []byte) ([]byte, error) {
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocol(p.Tuple.Proto),
		SrcIP: p.Tuple.Src.Addr().AsSlice(), DstIP: p.Tuple.Dst.Addr().AsSlice()}
	if p.Fragment {
		ip.Flags = layers.IPv4MoreFragments
	}
	var l4 gopacket.SerializableLayer
	switch p.Tuple.Proto {
	case reference.TCP:
		t := &layers.TCP{SrcPort: layers.TCPPort(p.Tuple.Src.Port()), DstPort: layers.TCPPort(p.Tuple.Dst.Port()), Seq: 1, Window: 65535,
			FIN: p.Flags.Has(reference.FIN), SYN: p.Flags.Has(reference.SYN), RST: p.Flags.Has(reference.RST),
			PSH: p.Flags.Has(reference.PSH), ACK: p.Flags.Has(reference.ACK)}
		if err := t.SetNetworkLayerForChecksum(ip); err != nil {
			return nil, err
		}
		l4 = t
	case reference.UDP:
		u := &layers.UDP{SrcPort: layers.UDPPort(p.Tuple.Src.Port()), DstPort: layers.UDPPort(p.Tuple.Dst.Port())}
		if err := u.SetNetworkLayerForChecksum(ip); err != nil {
			return nil, err
		}
		l4 = u
	default:
		// An echo request carries the pinging side's source port as its
		// identifier; an inbound packet is the echo reply, to that port.
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: p.Tuple.Src.Port()}
		if p.Dir == reference.Inbound {
			icmp.TypeCode, icmp.Id = layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0), p.Tuple.Dst.Port()
		}
		l4 = icmp
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, l4, gopacket.Payload(payload)); err != nil {
		return nil, fmt.Errorf("pcapgen: %v: %w", p.Tuple, err)
	}
	return buf.Bytes(), nil
}

// WritePCAP writes packets, at their times, as a nanosecond pcap file of
// Ethernet frames, each with payload.
func WritePCAP(w io.Writer, packets []reference.Packet, payload []byte) error {
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return fmt.Errorf("pcapgen: %w", err)
	}
	buf := gopacket.NewSerializeBuffer()
	for i, p := range packets {
		data, err := Frame(buf, p, payload)
		if err != nil {
			return fmt.Errorf("pcapgen: packet %d: %w", i+1, err)
		}
		ci := gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(data), Length: len(data)}
		if err := pw.WritePacket(ci, data); err != nil {
			return fmt.Errorf("pcapgen: packet %d: %w", i+1, err)
		}
	}
	return nil
}
