package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/reference"
)

// buildIPv4 builds an IPv4 packet from src to dst carrying payload, its
// header checksum computed with the test's own refSum.
func buildIPv4(src, dst netip.Addr, proto reference.Proto, payload []byte, total int) []byte {
	b := []byte{0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, byte(proto), 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	s, d := src.As4(), dst.As4()
	b = append(append(b, s[:]...), d[:]...)
	binary.BigEndian.PutUint16(b[10:], ^refFold(refSum(b)))
	return append(b, payload...)
}

// transport builds a TCP, UDP or ICMP echo request segment from src to dst
// with a valid checksum (UDP's 0 when noSum).
func transport(proto reference.Proto, src, dst netip.AddrPort, noSum bool) []byte {
	data := []byte("quoted payload")
	var b []byte
	csum := 0
	switch proto {
	case reference.TCP:
		b = binary.BigEndian.AppendUint16(nil, src.Port())
		b = binary.BigEndian.AppendUint16(b, dst.Port())
		b = append(b, 0, 0, 0, 1, 0, 0, 0, 0, 5<<4, byte(reference.SYN), 0xff, 0xff, 0, 0, 0, 0)
		csum = 16
	case reference.UDP:
		b = binary.BigEndian.AppendUint16(nil, src.Port())
		b = binary.BigEndian.AppendUint16(b, dst.Port())
		b = binary.BigEndian.AppendUint16(b, uint16(8+len(data)))
		b = append(b, 0, 0)
		csum = 6
	case reference.ICMP:
		b = []byte{icmpEchoRequest, 0, 0, 0}
		b = binary.BigEndian.AppendUint16(b, src.Port())
		b = append(b, 0, 7)
		csum = 2
	}
	b = append(b, data...)
	if noSum {
		return b
	}
	var sum uint64
	if proto == reference.ICMP {
		sum = refSum(b)
	} else {
		ph := buildIPv4(src.Addr(), dst.Addr(), proto, nil, 20+len(b))
		sum = refSum(pseudoHeader(ph), b)
	}
	binary.BigEndian.PutUint16(b[csum:], ^refFold(sum))
	return b
}

// icmpErrorFrame is a raw IPv4 frame: an ICMP error of type typ from
// outerSrc to outerDst quoting the packet q (the first quoteLen bytes of
// its transport header and payload, all of it when 0).
func icmpErrorFrame(typ byte, outerSrc, outerDst netip.Addr, q reference.Tuple, quoteLen int, noSum bool) []byte {
	seg := transport(q.Proto, q.Src, q.Dst, noSum)
	inner := buildIPv4(q.Src.Addr(), q.Dst.Addr(), q.Proto, seg, 20+len(seg))
	if quoteLen > 0 {
		inner = inner[:20+quoteLen]
	}
	icmp := append([]byte{typ, 3, 0, 0, 0, 0, 0, 0}, inner...)
	binary.BigEndian.PutUint16(icmp[2:], ^refFold(refSum(icmp)))
	return buildIPv4(outerSrc, outerDst, reference.ICMP, icmp, 20+len(icmp))
}

// TestQuotedRewrite: an ICMP error about a flow, decoded, then rewritten as
// a NAT sends it inside (outer destination and quoted source to the inside
// endpoint) or outside (outer source and quoted destination to the SNAT
// endpoint), equals the frame built from scratch with those endpoints,
// every checksum included: the quoted IPv4 header's, the quoted UDP or
// TCP one when quoted, a quoted echo's, and the ICMP one.
func TestQuotedRewrite(t *testing.T) {
	router := netip.MustParseAddr("192.0.2.254")
	snat := netip.MustParseAddrPort("203.0.113.1:1030")
	inside := netip.MustParseAddrPort("10.0.0.1:5000")
	remote := netip.MustParseAddrPort("198.51.100.1:53")
	for _, tc := range []struct {
		name     string
		typ      byte
		proto    reference.Proto
		quoteLen int
		noSum    bool
	}{
		{"udp unreachable", icmpUnreachable, reference.UDP, 0, false},
		{"udp without checksum", icmpUnreachable, reference.UDP, 0, true},
		{"udp time exceeded, 8 bytes quoted", icmpTimeExceeded, reference.UDP, 8, false},
		{"tcp, 8 bytes quoted", icmpTimeExceeded, reference.TCP, 8, false},
		{"tcp, whole segment quoted", icmpUnreachable, reference.TCP, 0, false},
		{"icmp echo", icmpTimeExceeded, reference.ICMP, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rem := remote
			if tc.proto == reference.ICMP {
				rem = netip.AddrPortFrom(remote.Addr(), 0)
			}
			sent := reference.Tuple{Proto: tc.proto, Src: snat, Dst: rem}
			data := icmpErrorFrame(tc.typ, router, snat.Addr(), sent, tc.quoteLen, tc.noSum)
			var f Frame
			if err := Decode(layers.LinkTypeRaw, data, &f); err != nil {
				t.Fatal(err)
			}
			p := f.Packet(time.Unix(0, 0), reference.Inbound)
			if p.Embedded == nil || *p.Embedded != sent || p.ICMPOther {
				t.Fatalf("Packet() quotes %v (ICMPOther %v), want %v", p.Embedded, p.ICMPOther, sent)
			}
			// Inbound: to the inside endpoint.
			if err := RewriteDest(data, &f, netip.AddrPortFrom(inside.Addr(), 0)); err != nil {
				t.Fatal(err)
			}
			if err := RewriteQuotedSource(data, &f, inside); err != nil {
				t.Fatal(err)
			}
			in := reference.Tuple{Proto: tc.proto, Src: inside, Dst: rem}
			if want := icmpErrorFrame(tc.typ, router, inside.Addr(), in, tc.quoteLen, tc.noSum); !bytes.Equal(data, want) {
				t.Errorf("inbound rewrite:\n got %x\nwant %x", data, want)
			}
			// Outbound, the error the inside endpoint sends about a packet
			// it received (remote → inside): from the SNAT endpoint.
			recv := reference.Tuple{Proto: tc.proto, Src: rem, Dst: inside}
			if tc.proto == reference.ICMP {
				return // an echo request is quoted by the pinging side's errors only
			}
			data = icmpErrorFrame(tc.typ, inside.Addr(), router, recv, tc.quoteLen, tc.noSum)
			if err := Decode(layers.LinkTypeRaw, data, &f); err != nil {
				t.Fatal(err)
			}
			if err := RewriteSource(data, &f, netip.AddrPortFrom(snat.Addr(), 0)); err != nil {
				t.Fatal(err)
			}
			if err := RewriteQuotedDest(data, &f, snat); err != nil {
				t.Fatal(err)
			}
			out := reference.Tuple{Proto: tc.proto, Src: rem, Dst: snat}
			if want := icmpErrorFrame(tc.typ, snat.Addr(), router, out, tc.quoteLen, tc.noSum); !bytes.Equal(data, want) {
				t.Errorf("outbound rewrite:\n got %x\nwant %x", data, want)
			}
		})
	}
}

// TestQuotedNotRead: errors whose quote cannot be used are no decode
// error; they are other ICMP, which the rewrite of a quote refuses.
func TestQuotedNotRead(t *testing.T) {
	router, snat := netip.MustParseAddr("192.0.2.254"), netip.MustParseAddrPort("203.0.113.1:1030")
	q := reference.Tuple{Proto: reference.UDP, Src: snat, Dst: netip.MustParseAddrPort("198.51.100.1:53")}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"quote of 7 transport bytes", icmpErrorFrame(icmpUnreachable, router, snat.Addr(), q, 7, false)},
		{"redirect", icmpErrorFrame(5, router, snat.Addr(), q, 0, false)},
		{"captured up to the quoted header", icmpErrorFrame(icmpUnreachable, router, snat.Addr(), q, 0, false)[:20+8+20+4]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f Frame
			if err := Decode(layers.LinkTypeRaw, tc.data, &f); err != nil {
				t.Fatal(err)
			}
			p := f.Packet(time.Unix(0, 0), reference.Inbound)
			if f.Quoted || p.Embedded != nil || !p.ICMPOther {
				t.Errorf("Quoted %v, Embedded %v, ICMPOther %v; want an unread quote", f.Quoted, p.Embedded, p.ICMPOther)
			}
			if err := RewriteQuotedSource(tc.data, &f, snat); !errors.Is(err, ErrNoPorts) {
				t.Errorf("RewriteQuotedSource = %v, want ErrNoPorts", err)
			}
		})
	}
}
