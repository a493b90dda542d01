package link

import (
	"encoding/binary"
	"net"

	"github.com/natcheck/natcheck/reference"
)

// Segment is one IPv4 packet to build.
type Segment struct {
	Tuple reference.Tuple
	// Flags, Seq, Ack and Window are the TCP header's; Window 0 means
	// 65535.
	Flags    reference.TCPFlags
	Seq, Ack uint32
	Window   uint16
	// ID is the IPv4 identification field.
	ID uint16
	// ICMPType is the ICMP type (8 echo request, 0 echo reply, 3
	// destination unreachable, 11 time exceeded) and ICMPCode its code;
	// an echo's identifier is the tuple's source port for a request and
	// its destination port for a reply.
	ICMPType, ICMPCode uint8
	// Quote, for an ICMP error, is the packet it quotes: its payload is
	// then that packet's IPv4 header and the first 8 bytes of its
	// transport header (RFC 792), built from the tuple with valid
	// checksums, in place of Payload.
	Quote   *reference.Tuple
	Payload []byte
}

// Header sizes.
const (
	ethLen  = 14
	ipLen   = 20
	tcpLen  = 20
	udpLen  = 8
	icmpLen = 8
)

// AppendFrame appends to b an Ethernet frame from src to dst MAC carrying
// s, with valid lengths and checksums, and returns the extended slice.
func AppendFrame(b []byte, src, dst net.HardwareAddr, s Segment) []byte {
	if s.Quote != nil && s.Tuple.Proto == reference.ICMP {
		q := AppendFrame(make([]byte, 0, ethLen+ipLen+tcpLen), nil, nil, Segment{Tuple: *s.Quote, ID: s.ID, ICMPType: 8})
		s.Payload, s.Quote = q[ethLen:ethLen+ipLen+8], nil
	}
	l4 := 0
	switch s.Tuple.Proto {
	case reference.TCP:
		l4 = tcpLen
	case reference.UDP:
		l4 = udpLen
	case reference.ICMP:
		l4 = icmpLen
	}
	total := ipLen + l4 + len(s.Payload)
	start := len(b)
	b = append(b, make([]byte, ethLen+total)...)
	f := b[start:]
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[ethLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(total))
	binary.BigEndian.PutUint16(ip[4:], s.ID)
	ip[6] = 0x40 // don't fragment, as stacks do (SplitFragments clears it)
	ip[8] = 64
	ip[9] = byte(s.Tuple.Proto)
	sa, da := s.Tuple.Src.Addr().As4(), s.Tuple.Dst.Addr().As4()
	copy(ip[12:16], sa[:])
	copy(ip[16:20], da[:])
	binary.BigEndian.PutUint16(ip[10:], ^sum(ip[:ipLen], 0))
	t := ip[ipLen:]
	copy(t[l4:], s.Payload)
	switch s.Tuple.Proto {
	case reference.TCP:
		binary.BigEndian.PutUint16(t[0:], s.Tuple.Src.Port())
		binary.BigEndian.PutUint16(t[2:], s.Tuple.Dst.Port())
		binary.BigEndian.PutUint32(t[4:], s.Seq)
		binary.BigEndian.PutUint32(t[8:], s.Ack)
		t[12] = 5 << 4
		t[13] = byte(s.Flags)
		w := s.Window
		if w == 0 {
			w = 65535
		}
		binary.BigEndian.PutUint16(t[14:], w)
		binary.BigEndian.PutUint16(t[16:], ^sum(t[:l4+len(s.Payload)], pseudo(ip, l4+len(s.Payload))))
	case reference.UDP:
		binary.BigEndian.PutUint16(t[0:], s.Tuple.Src.Port())
		binary.BigEndian.PutUint16(t[2:], s.Tuple.Dst.Port())
		binary.BigEndian.PutUint16(t[4:], uint16(l4+len(s.Payload)))
		c := ^sum(t[:l4+len(s.Payload)], pseudo(ip, l4+len(s.Payload)))
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(t[6:], c)
	case reference.ICMP:
		t[0], t[1] = s.ICMPType, s.ICMPCode
		id := s.Tuple.Src.Port()
		if s.ICMPType == 0 {
			id = s.Tuple.Dst.Port()
		}
		binary.BigEndian.PutUint16(t[4:], id)
		binary.BigEndian.PutUint16(t[6:], uint16(s.Seq))
		binary.BigEndian.PutUint16(t[2:], ^sum(t[:l4+len(s.Payload)], 0))
	}
	return b
}

// pseudo is the sum of the TCP/UDP pseudo-header of ip for a transport
// length n.
func pseudo(ip []byte, n int) uint32 {
	var s uint32
	for i := 12; i < 20; i += 2 {
		s += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	return s + uint32(ip[9]) + uint32(n)
}

// sum is the ones' complement sum of b added to initial, folded.
func sum(b []byte, initial uint32) uint16 {
	s := initial
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// SplitFragments cuts the IPv4 packet of an Ethernet frame built by
// AppendFrame into two fragments: the first carries the transport header
// and first bytes of payload (first, a multiple of 8, counted from the
// transport header), the second the rest. Both keep the IP ID.
func SplitFragments(frame []byte, first int) [2][]byte {
	ip := frame[ethLen:]
	total := int(binary.BigEndian.Uint16(ip[2:]))
	body := ip[ipLen:total]
	var out [2][]byte
	for i, part := range [2][]byte{body[:first], body[first:]} {
		f := make([]byte, ethLen+ipLen+len(part))
		copy(f, frame[:ethLen+ipLen])
		copy(f[ethLen+ipLen:], part)
		h := f[ethLen:]
		binary.BigEndian.PutUint16(h[2:], uint16(ipLen+len(part)))
		off := uint16(0)
		if i == 0 {
			off = 0x2000 // more fragments
		} else {
			off = uint16(first / 8)
		}
		binary.BigEndian.PutUint16(h[6:], off)
		binary.BigEndian.PutUint16(h[10:], 0)
		binary.BigEndian.PutUint16(h[10:], ^sum(h[:ipLen], 0))
		out[i] = f
	}
	return out
}
