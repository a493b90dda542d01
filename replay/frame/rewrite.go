package frame

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/natcheck/natcheck/reference"
)

// RewriteSource sets the source address of the IPv4 frame f, decoded from
// data, to src's address, and its TCP or UDP source port to src's port,
// in place. It changes only those bytes and the checksums, which it
// updates incrementally (RFC 1624, HC' = ~(~HC + ~m + m')): the IPv4 header
// checksum, and the TCP or UDP checksum, whose pseudo-header holds the
// addresses. A checksum that was wrong as captured (offloaded on the
// sending host) stays wrong by the same amount; a UDP checksum of 0 (none)
// stays 0. This works on a frame cut by the snap length too, as the
// checksum is never recomputed from the payload. f is updated to match.
//
// An ICMP echo's identifier stands for its port (the one of the side that
// pings; see Frame.ICMPType): it is rewritten with the ICMP checksum. A
// frame without ports (other ICMP, a non-first fragment, another protocol)
// takes only an address: src's port must be 0. RewriteSource does not
// allocate unless it returns an error.
func RewriteSource(data []byte, f *Frame, src netip.AddrPort) error {
	if err := rewrite(data, f, src, 12, 0); err != nil {
		return fmt.Errorf("rewrite source to %v: %w", src, err)
	}
	f.Src, f.SrcPort = src.Addr(), src.Port()
	return nil
}

// RewriteDest is RewriteSource for the destination address and port.
func RewriteDest(data []byte, f *Frame, dst netip.AddrPort) error {
	if err := rewrite(data, f, dst, 16, 2); err != nil {
		return fmt.Errorf("rewrite destination to %v: %w", dst, err)
	}
	f.Dst, f.DstPort = dst.Addr(), dst.Port()
	return nil
}

// rewrite writes ap at the address offset addrOff of the IPv4 header and
// the port offset portOff of the transport header.
func rewrite(data []byte, f *Frame, ap netip.AddrPort, addrOff, portOff int) error {
	if f.Network != IPv4 || !ap.Addr().Is4() {
		return ErrNotIPv4
	}
	ports := f.HasPorts()
	// An echo's identifier is the port of the pinging side: the source
	// of a request, the destination of a reply.
	echo := f.IsEcho() && (f.ICMPType == icmpEchoRequest) == (addrOff == 12)
	if !ports && !echo && ap.Port() != 0 {
		return fmt.Errorf("%w: %s frame, port %d", ErrNoPorts, f.Proto, ap.Port())
	}
	need := 0 // transport bytes the rewrite touches
	if ports || echo {
		need = 8 // UDP ports and checksum, ICMP checksum and identifier
		if f.Proto == reference.TCP {
			need = 18 // TCP ports to checksum
		}
	}
	if f.L3+20 > len(data) || f.L4+need > len(data) {
		return fmt.Errorf("%w: frame of %d bytes does not match its decoded headers", ErrShort, len(data))
	}
	ip := data[f.L3:]
	addr := ip[addrOff : addrOff+4]
	a4 := ap.Addr().As4()
	oldHi, oldLo := binary.BigEndian.Uint16(addr), binary.BigEndian.Uint16(addr[2:])
	newHi, newLo := binary.BigEndian.Uint16(a4[:]), binary.BigEndian.Uint16(a4[2:])

	// IPv4 header checksum: the address only.
	hc := binary.BigEndian.Uint16(ip[10:])
	binary.BigEndian.PutUint16(ip[10:], update(hc, oldHi, newHi, oldLo, newLo, 0, 0))
	copy(addr, a4[:])
	if echo {
		// The ICMP checksum covers the identifier, not the addresses.
		t := data[f.L4:]
		old := binary.BigEndian.Uint16(t[4:])
		binary.BigEndian.PutUint16(t[4:], ap.Port())
		binary.BigEndian.PutUint16(t[2:], update(binary.BigEndian.Uint16(t[2:]), old, ap.Port(), 0, 0, 0, 0))
		return nil
	}
	if !ports {
		return nil
	}

	// TCP or UDP checksum: the address (pseudo-header) and the port.
	t := data[f.L4:]
	port := t[portOff:]
	oldPort := binary.BigEndian.Uint16(port)
	binary.BigEndian.PutUint16(port, ap.Port())
	csumOff := 16
	if f.Proto == reference.UDP {
		csumOff = 6
	}
	c := binary.BigEndian.Uint16(t[csumOff:])
	if f.Proto == reference.UDP && c == 0 {
		return nil // no checksum (RFC 768)
	}
	c = update(c, oldHi, newHi, oldLo, newLo, oldPort, ap.Port())
	if f.Proto == reference.UDP && c == 0 {
		c = 0xffff // a computed 0 is sent as all ones (RFC 768)
	}
	binary.BigEndian.PutUint16(t[csumOff:], c)
	return nil
}

// RewriteQuotedSource sets the source address and port of the packet that
// the ICMP error f quotes (Frame.Quoted) to src, in place: what a NAT does
// to an error about a flow besides its outer header (R6, L10). It updates
// incrementally the quoted IPv4 header checksum, the quoted UDP checksum
// (when not 0) or TCP checksum (when captured: an error need quote only 8
// bytes of TCP), a quoted echo's checksum for its identifier, and the ICMP
// checksum for every word it changed. f is updated to match. It does not
// allocate unless it returns an error.
func RewriteQuotedSource(data []byte, f *Frame, src netip.AddrPort) error {
	if err := rewriteQuoted(data, f, src, 12, 0); err != nil {
		return fmt.Errorf("rewrite quoted source to %v: %w", src, err)
	}
	f.QuotedSrc = src
	return nil
}

// RewriteQuotedDest is RewriteQuotedSource for the quoted destination.
func RewriteQuotedDest(data []byte, f *Frame, dst netip.AddrPort) error {
	if err := rewriteQuoted(data, f, dst, 16, 2); err != nil {
		return fmt.Errorf("rewrite quoted destination to %v: %w", dst, err)
	}
	f.QuotedDst = dst
	return nil
}

// rewriteQuoted writes ap at the address offset addrOff of the quoted IPv4
// header and the port offset portOff of the quoted transport header.
func rewriteQuoted(data []byte, f *Frame, ap netip.AddrPort, addrOff, portOff int) error {
	if !f.Quoted {
		return fmt.Errorf("%w: not an icmp error with a quoted packet", ErrNoPorts)
	}
	if !ap.Addr().Is4() {
		return ErrNotIPv4
	}
	if f.QuotedL4+8 > len(data) || f.L4+4 > len(data) {
		return fmt.Errorf("%w: frame of %d bytes does not match its decoded headers", ErrShort, len(data))
	}
	// A quoted echo's identifier is the port of the pinging side, as in
	// an echo itself.
	q, t := data[f.QuotedL3:], data[f.QuotedL4:]
	echoSide := -1
	if f.QuotedProto == reference.ICMP {
		if (t[0] == icmpEchoRequest) == (addrOff == 12) {
			echoSide = 4
		} else if ap.Port() != 0 {
			return fmt.Errorf("%w: quoted echo, port %d on the side without an identifier", ErrNoPorts, ap.Port())
		}
	}
	icmp := f.L4 + 2 // the outer ICMP checksum, over every word below
	word := func(off int, v uint16) (old uint16) {
		old = binary.BigEndian.Uint16(data[off:])
		binary.BigEndian.PutUint16(data[off:], v)
		binary.BigEndian.PutUint16(data[icmp:], update(binary.BigEndian.Uint16(data[icmp:]), old, v, 0, 0, 0, 0))
		return old
	}
	a4 := ap.Addr().As4()
	newHi, newLo := binary.BigEndian.Uint16(a4[:]), binary.BigEndian.Uint16(a4[2:])
	base := f.QuotedL3 + addrOff
	oldHi, oldLo := word(base, newHi), word(base+2, newLo)
	word(f.QuotedL3+10, update(binary.BigEndian.Uint16(q[10:]), oldHi, newHi, oldLo, newLo, 0, 0))
	switch f.QuotedProto {
	case reference.TCP, reference.UDP:
		oldPort := word(f.QuotedL4+portOff, ap.Port())
		csum := f.QuotedL4 + 16
		if f.QuotedProto == reference.UDP {
			csum = f.QuotedL4 + 6
		}
		if csum+2 > f.End || csum+2 > len(data) {
			return nil // not quoted: TCP's checksum lies past the 8 bytes an error must carry
		}
		c := binary.BigEndian.Uint16(data[csum:])
		if f.QuotedProto == reference.UDP && c == 0 {
			return nil // no checksum (RFC 768)
		}
		c = update(c, oldHi, newHi, oldLo, newLo, oldPort, ap.Port())
		if f.QuotedProto == reference.UDP && c == 0 {
			c = 0xffff
		}
		word(csum, c)
	case reference.ICMP:
		if echoSide >= 0 {
			old := word(f.QuotedL4+echoSide, ap.Port())
			word(f.QuotedL4+2, update(binary.BigEndian.Uint16(t[2:]), old, ap.Port(), 0, 0, 0, 0))
		}
	}
	return nil
}

// update applies RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), for up to three
// 16-bit words m changed to m'. Passing 0, 0 for a word changes nothing.
func update(hc, m1, n1, m2, n2, m3, n3 uint16) uint16 {
	s := uint32(^hc) + uint32(^m1) + uint32(n1) + uint32(^m2) + uint32(n2) + uint32(^m3) + uint32(n3)
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return ^uint16(s)
}

// sum adds b to the one's complement sum s as 16-bit big-endian words, an
// odd last byte padded with zero.
func sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// RSTLen is the length of the packet AppendRST builds: an IPv4 header and a
// TCP header, both without options.
const RSTLen = 40

// AppendRST appends to b an IPv4 packet (no link header: for a LINKTYPE_RAW
// interface) carrying a TCP RST from t.Src to t.Dst with sequence number
// seq. When ack is true the segment also carries ACK with acknowledgment
// number ackNum. Both checksums are valid. t must be a TCP tuple of IPv4
// addresses.
func AppendRST(b []byte, t reference.Tuple, seq uint32, ack bool, ackNum uint32) ([]byte, error) {
	if t.Proto != reference.TCP || !t.Src.Addr().Is4() || !t.Dst.Addr().Is4() {
		return b, fmt.Errorf("build rst for %v: need a tcp tuple of ipv4 addresses", t)
	}
	flags := reference.RST
	if !ack {
		ackNum = 0
	} else {
		flags |= reference.ACK
	}
	src, dst := t.Src.Addr().As4(), t.Dst.Addr().As4()
	start := len(b)
	b = append(b,
		0x45, 0, 0, RSTLen, // version 4, IHL 5, total length 40
		0, 0, 0x40, 0, // ID 0, DF
		64, byte(reference.TCP), 0, 0, // TTL, protocol, checksum
	)
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	b = binary.BigEndian.AppendUint16(b, t.Src.Port())
	b = binary.BigEndian.AppendUint16(b, t.Dst.Port())
	b = binary.BigEndian.AppendUint32(b, seq)
	b = binary.BigEndian.AppendUint32(b, ackNum)
	b = append(b, 5<<4, byte(flags), 0, 0, 0, 0, 0, 0) // data offset 5, window, checksum, urgent
	p := b[start:]
	binary.BigEndian.PutUint16(p[10:], ^fold(sum(0, p[:20])))
	pseudo := sum(0, p[12:20]) + uint32(reference.TCP) + 20
	binary.BigEndian.PutUint16(p[36:], ^fold(sum(pseudo, p[20:])))
	return b, nil
}

// AppendReset appends to b the RST a host sends in answer to the TCP
// segment f when no connection matches it (RFC 9293 section 3.10.7.1):
// from f's destination to its source; if f has ACK, with sequence number
// f.Ack and no ACK; otherwise with sequence number 0 and ACK of f.Seq plus
// the segment length (SYN and FIN count one each). f must be a decoded
// IPv4 TCP frame. It returns b unchanged, with no error, if f is itself a
// RST, which is never answered.
func AppendReset(b []byte, f *Frame) ([]byte, error) {
	if f.Network != IPv4 || f.Proto != reference.TCP || !f.Transport {
		return b, fmt.Errorf("build rst: the frame is not a decoded ipv4 tcp segment")
	}
	if f.Flags.Has(reference.RST) {
		return b, nil
	}
	t := f.Tuple().Reverse()
	if f.Flags.Has(reference.ACK) {
		return AppendRST(b, t, f.Ack, false, 0)
	}
	n := uint32(f.PayloadLen)
	if f.Flags.Has(reference.SYN) {
		n++
	}
	if f.Flags.Has(reference.FIN) {
		n++
	}
	return AppendRST(b, t, 0, true, f.Seq+n)
}
