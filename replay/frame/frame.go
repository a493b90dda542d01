package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/reference"
)

// Network is the network layer protocol of a frame.
type Network uint8

// Network layers. Only IPv4 frames are decoded further.
const (
	// NonIP is ARP, LLC, or any ethertype or address family other than
	// IPv4 and IPv6.
	NonIP Network = iota
	// IPv4 frames have their IPv4 and transport headers decoded.
	IPv4
	// IPv6 frames are recognised only: the caller counts and skips them.
	IPv6
)

// String returns "non-ip", "ipv4" or "ipv6".
func (n Network) String() string {
	switch n {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return "non-ip"
}

// MaxVLANs is the number of stacked VLAN tags Decode accepts: QinQ is two,
// and more than four is taken for damage.
const MaxVLANs = 4

// Ethertypes and IP protocol numbers Decode knows.
const (
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	tpid8021Q     = 0x8100
	tpid8021AD    = 0x88a8
	tpidQinQOld   = 0x9100
)

// Sentinel errors wrapped by *Error. Test for them with errors.Is.
var (
	// ErrShort: the frame was cut (by the snap length, or damaged) inside
	// a header Decode needs. A frame cut after its headers is not an
	// error: Decode sets Frame.Truncated.
	ErrShort = errors.New("frame cut inside its headers")
	// ErrBadHeader: a header holds impossible values: an IPv4 header
	// length under 20, a total length under the header length, a TCP data
	// offset under 20, a transport header longer than the IP packet, the
	// wrong IP version, too many VLAN tags.
	ErrBadHeader = errors.New("malformed header")
	// ErrLinkType: Decode does not know the link type.
	ErrLinkType = errors.New("unsupported link type")
	// ErrNotIPv4: a rewrite was asked of a frame that is not IPv4, or to
	// an address that is not IPv4.
	ErrNotIPv4 = errors.New("not ipv4")
	// ErrNoPorts: a rewrite asked for a port on a frame whose transport
	// header carries none (ICMP, a non-first fragment, another protocol).
	ErrNoPorts = errors.New("no transport ports")
)

// Error is the error Decode returns for a frame it cannot use: the layer at
// fault, where that layer starts in the frame, and what is wrong.
type Error struct {
	// Layer is the header at fault: "ethernet", "vlan", "sll", "sll2",
	// "loopback", "raw", "ipv4", "tcp", "udp", "icmp", or "link".
	Layer string
	// Offset is where that header starts in the frame.
	Offset int
	// Err says what is wrong; it wraps a sentinel error.
	Err error
}

// Error returns "decode frame: tcp header at offset 34: frame cut inside
// its headers: need 20 bytes, have 12".
func (e *Error) Error() string {
	return fmt.Sprintf("decode frame: %s header at offset %d: %v", e.Layer, e.Offset, e.Err)
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

func short(layer string, off, need, have int) error {
	return &Error{Layer: layer, Offset: off, Err: fmt.Errorf("%w: need %d bytes, have %d", ErrShort, need, have)}
}

func bad(layer string, off int, format string, args ...any) error {
	return &Error{Layer: layer, Offset: off, Err: fmt.Errorf("%w: "+format, append([]any{ErrBadHeader}, args...)...)}
}

// Frame is a decoded frame. Decode fills it in place, so one Frame can be
// reused for every packet of a capture. Offsets index the data given to
// Decode; fields of layers the frame does not have are zero.
type Frame struct {
	// LinkType is the link type the frame was decoded as.
	LinkType layers.LinkType
	// Network is the network layer: IPv4, IPv6 or NonIP.
	Network Network
	// EtherType is the ethertype after any VLAN tags (Ethernet, SLL,
	// SLL2), or 0.
	EtherType uint16
	// Family is the address family of a NULL or LOOP frame, or 0.
	Family uint32
	// VLANs holds the VLAN IDs of the frame's tags, outermost first.
	VLANs    [MaxVLANs]uint16
	NumVLANs int
	// PacketType is the Linux cooked packet type of an SLL or SLL2 frame:
	// 0 sent to this host, 1 broadcast, 2 multicast, 3 to another host, 4
	// sent by this host.
	PacketType uint8
	// L3 is the offset of the network header: the IPv4 header for IPv4.
	L3 int
	// L4 is the offset of the transport header, or 0 when Transport is
	// false.
	L4 int
	// End is the offset just past the IPv4 packet, or past the captured
	// bytes if they end first. Bytes from End on are link-layer padding.
	End int

	// The IPv4 header.
	Src, Dst netip.Addr
	Proto    reference.Proto
	TTL      uint8
	ID       uint16
	// TotalLen is the IPv4 total length: the header's, or the captured
	// length from L3 when the header says 0 (segmentation offload).
	TotalLen int
	// Fragment is set when More Fragments is set or the fragment offset
	// is not zero. FragOffset is the offset in bytes.
	Fragment      bool
	MoreFragments bool
	FragOffset    int
	// Truncated is set when the capture holds less of the IPv4 packet
	// than TotalLen: the headers are whole (Decode checks that), the
	// payload is cut.
	Truncated bool

	// Transport is set when the TCP, UDP or ICMP header was decoded: not
	// for a non-first fragment, a first fragment too small to hold it, or
	// another protocol.
	Transport bool
	// Ports, for TCP and UDP.
	SrcPort, DstPort uint16
	// TCP fields.
	Flags    reference.TCPFlags
	Seq, Ack uint32
	// ICMP type and code. An echo request (8) or reply (0) also sets a
	// port: its identifier, SrcPort of a request and DstPort of a reply,
	// the side of the host that pings (the engine's convention for ICMP
	// echo, L10, R6).
	ICMPType, ICMPCode uint8
	// PayloadLen is the length of the transport payload according to the
	// IPv4 header (it may be longer than what was captured).
	PayloadLen int

	// Quoted is set for an ICMP error (destination unreachable, time
	// exceeded) whose quoted packet was read: its IPv4 header, at QuotedL3,
	// and the first 8 bytes of its transport header, at QuotedL4, all
	// captured (RFC 792 guarantees those 8). An error whose quote is cut,
	// is not IPv4, or is a non-first fragment is no decode error: Quoted
	// stays false and the engine drops it as other ICMP.
	Quoted             bool
	QuotedL3, QuotedL4 int
	// The quoted packet's protocol and endpoints, ports as for the frame
	// itself: TCP and UDP ports, an echo's identifier on the side that
	// pings.
	QuotedProto          reference.Proto
	QuotedSrc, QuotedDst netip.AddrPort
}

// Decode decodes data, a frame of link type lt, into f. It never allocates
// unless it returns an error; on error f holds what was decoded before the
// fault. A frame that is not IPv4 is no error: f.Network says what it is.
func Decode(lt layers.LinkType, data []byte, f *Frame) error {
	*f = Frame{LinkType: lt}
	switch lt {
	case layers.LinkTypeEthernet:
		if len(data) < 14 {
			return short("ethernet", 0, 14, len(data))
		}
		return f.etherType(data, 12, 14)
	case layers.LinkTypeLinuxSLL:
		if len(data) < 16 {
			return short("sll", 0, 16, len(data))
		}
		f.PacketType = uint8(binary.BigEndian.Uint16(data[0:]))
		return f.etherType(data, 14, 16)
	case layers.LinkTypeLinuxSLL2:
		if len(data) < 20 {
			return short("sll2", 0, 20, len(data))
		}
		f.PacketType = data[10]
		return f.etherType(data, 0, 20)
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(data) < 4 {
			return short("loopback", 0, 4, len(data))
		}
		fam := binary.BigEndian.Uint32(data)
		if lt == layers.LinkTypeNull {
			// Host order of the machine that captured: take the order
			// that gives a small number, as Wireshark does.
			if le := binary.LittleEndian.Uint32(data); le <= 0xffff {
				fam = le
			}
		}
		f.Family = fam
		switch fam {
		case 2: // AF_INET everywhere
			return f.ipv4(data, 4)
		case 24, 28, 30: // AF_INET6 on NetBSD/OpenBSD, FreeBSD, macOS
			f.Network, f.L3 = IPv6, 4
		}
		return nil
	case layers.LinkTypeRaw, 12, 14, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		// LINKTYPE_RAW 101, and DLT_RAW 12 (most systems) or 14
		// (OpenBSD) as some files carry it: the version nibble says.
		if len(data) < 1 {
			return short("raw", 0, 1, 0)
		}
		switch v := data[0] >> 4; {
		case v == 4 && lt != layers.LinkTypeIPv6:
			return f.ipv4(data, 0)
		case v == 6 && lt != layers.LinkTypeIPv4:
			f.Network = IPv6
			return nil
		default:
			return bad("raw", 0, "ip version %d", v)
		}
	}
	return &Error{Layer: "link", Err: fmt.Errorf("%w: %d (%s)", ErrLinkType, uint16(lt), lt)}
}

// etherType reads the ethertype at data[at:] and the VLAN tags after it,
// the network header starting at off.
func (f *Frame) etherType(data []byte, at, off int) error {
	et := binary.BigEndian.Uint16(data[at:])
	for et == tpid8021Q || et == tpid8021AD || et == tpidQinQOld {
		if f.NumVLANs == MaxVLANs {
			return bad("vlan", off-4, "more than %d vlan tags", MaxVLANs)
		}
		if len(data) < off+4 {
			return short("vlan", off, 4, len(data)-off)
		}
		f.VLANs[f.NumVLANs] = binary.BigEndian.Uint16(data[off:]) & 0x0fff
		f.NumVLANs++
		et = binary.BigEndian.Uint16(data[off+2:])
		off += 4
	}
	f.EtherType, f.L3 = et, off
	switch et {
	case etherTypeIPv4:
		return f.ipv4(data, off)
	case etherTypeIPv6:
		f.Network = IPv6
	}
	return nil
}

func (f *Frame) ipv4(data []byte, off int) error {
	f.Network, f.L3 = IPv4, off
	b := data[off:]
	if len(b) < 20 {
		return short("ipv4", off, 20, len(b))
	}
	if v := b[0] >> 4; v != 4 {
		return bad("ipv4", off, "ip version %d", v)
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 {
		return bad("ipv4", off, "header length %d", ihl)
	}
	if len(b) < ihl {
		return short("ipv4", off, ihl, len(b))
	}
	total := int(binary.BigEndian.Uint16(b[2:]))
	if total == 0 {
		total = len(b) // segmentation offload: the stack left it to the NIC
	}
	if total < ihl {
		return bad("ipv4", off, "total length %d under header length %d", total, ihl)
	}
	f.TotalLen = total
	f.ID = binary.BigEndian.Uint16(b[4:])
	frag := binary.BigEndian.Uint16(b[6:])
	f.FragOffset = int(frag&0x1fff) * 8
	f.MoreFragments = frag&0x2000 != 0
	f.Fragment = f.MoreFragments || f.FragOffset != 0
	f.TTL = b[8]
	f.Proto = reference.Proto(b[9])
	f.Src = netip.AddrFrom4([4]byte(b[12:16]))
	f.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	f.End = off + total
	if f.End > len(data) {
		f.End, f.Truncated = len(data), true
	}
	if f.FragOffset != 0 {
		return nil // no transport header in this fragment
	}
	var need int
	switch f.Proto {
	case reference.TCP:
		need = 20
	case reference.UDP, reference.ICMP:
		need = 8
	default:
		return nil
	}
	l4 := off + ihl
	payload := total - ihl // as the header says
	if payload < need {
		if f.Fragment {
			return nil // a tiny first fragment: the ports are in the next
		}
		return bad(f.Proto.String(), l4, "header needs %d bytes, the ip packet has %d", need, payload)
	}
	t := data[l4:f.End]
	if len(t) < need {
		return short(f.Proto.String(), l4, need, len(t))
	}
	switch f.Proto {
	case reference.TCP:
		doff := int(t[12]>>4) * 4
		if doff < 20 || doff > payload {
			return bad("tcp", l4, "data offset %d in %d bytes", doff, payload)
		}
		if len(t) < doff {
			return short("tcp", l4, doff, len(t))
		}
		f.SrcPort = binary.BigEndian.Uint16(t[0:])
		f.DstPort = binary.BigEndian.Uint16(t[2:])
		f.Seq = binary.BigEndian.Uint32(t[4:])
		f.Ack = binary.BigEndian.Uint32(t[8:])
		f.Flags = reference.TCPFlags(t[13])
		f.PayloadLen = payload - doff
	case reference.UDP:
		f.SrcPort = binary.BigEndian.Uint16(t[0:])
		f.DstPort = binary.BigEndian.Uint16(t[2:])
		f.PayloadLen = payload - 8
	case reference.ICMP:
		f.ICMPType, f.ICMPCode = t[0], t[1]
		f.PayloadLen = payload - 8
		switch f.ICMPType {
		case icmpEchoRequest:
			f.SrcPort = binary.BigEndian.Uint16(t[4:])
		case icmpEchoReply:
			f.DstPort = binary.BigEndian.Uint16(t[4:])
		case icmpUnreachable, icmpTimeExceeded:
			if !f.Fragment {
				f.quoted(data, l4+8, f.End)
			}
		}
	}
	f.L4, f.Transport = l4, true
	return nil
}

// quoted reads the packet an ICMP error quotes, from data[off:end].
func (f *Frame) quoted(data []byte, off, end int) {
	q := data[off:end]
	if len(q) < 20 || q[0]>>4 != 4 {
		return
	}
	ihl := int(q[0]&0x0f) * 4
	if ihl < 20 || len(q) < ihl+8 || binary.BigEndian.Uint16(q[6:])&0x1fff != 0 {
		return
	}
	proto := reference.Proto(q[9])
	t := q[ihl:]
	var sp, dp uint16
	switch proto {
	case reference.TCP, reference.UDP:
		sp, dp = binary.BigEndian.Uint16(t[0:]), binary.BigEndian.Uint16(t[2:])
	case reference.ICMP:
		switch t[0] {
		case icmpEchoRequest:
			sp = binary.BigEndian.Uint16(t[4:])
		case icmpEchoReply:
			dp = binary.BigEndian.Uint16(t[4:])
		default:
			return // an error about an error, or another query: nothing to map
		}
	default:
		return
	}
	f.Quoted, f.QuotedL3, f.QuotedL4, f.QuotedProto = true, off, off+ihl, proto
	f.QuotedSrc = netip.AddrPortFrom(netip.AddrFrom4([4]byte(q[12:16])), sp)
	f.QuotedDst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(q[16:20])), dp)
}

// ICMP types: echo, and the errors that quote a packet of a flow.
const (
	icmpEchoReply    = 0
	icmpUnreachable  = 3
	icmpEchoRequest  = 8
	icmpTimeExceeded = 11
)

// IsEcho reports whether the frame is a decoded ICMP echo request or
// reply, whose identifier stands for a port.
func (f *Frame) IsEcho() bool {
	return f.Transport && f.Proto == reference.ICMP && (f.ICMPType == icmpEchoRequest || f.ICMPType == icmpEchoReply)
}

// HasPorts reports whether the frame carries transport ports: a decoded
// TCP or UDP header.
func (f *Frame) HasPorts() bool {
	return f.Transport && (f.Proto == reference.TCP || f.Proto == reference.UDP)
}

// Tuple returns the frame's 5-tuple. Ports are zero when the frame has
// none (HasPorts). It is meaningful for IPv4 frames only.
func (f *Frame) Tuple() reference.Tuple {
	return reference.Tuple{
		Proto: f.Proto,
		Src:   netip.AddrPortFrom(f.Src, f.SrcPort),
		Dst:   netip.AddrPortFrom(f.Dst, f.DstPort),
	}
}

// Packet returns the engine's input for this frame, seen at ts travelling
// in direction dir. It is meaningful for IPv4 frames only. It allocates
// the packet's Embedded for an ICMP error with a quote (Quoted), and
// nothing otherwise.
func (f *Frame) Packet(ts time.Time, dir reference.Dir) reference.Packet {
	p := reference.Packet{Time: ts, Dir: dir, Tuple: f.Tuple(), Fragment: f.Fragment,
		ICMPOther: f.Proto == reference.ICMP && !f.IsEcho() && !f.Quoted}
	if f.Proto == reference.TCP {
		p.Flags = f.Flags
	}
	if f.Quoted {
		p.Embedded = &reference.Tuple{Proto: f.QuotedProto, Src: f.QuotedSrc, Dst: f.QuotedDst}
	}
	return p
}
