package reference

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Proto is an IP protocol number.
type Proto uint8

// IP protocol numbers the engine knows by name.
const (
	ICMP Proto = 1
	TCP  Proto = 6
	UDP  Proto = 17
)

// String returns "tcp", "udp", "icmp" or the protocol number.
func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case ICMP:
		return "icmp"
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

// Dir is the direction a packet travels through the NAT.
type Dir uint8

const (
	// Outbound packets travel from a backend instance (inside) to the
	// outside; the NAT rewrites their source.
	Outbound Dir = iota
	// Inbound packets travel from the outside to a SNAT IP:port; the NAT
	// rewrites their destination back to the inside endpoint.
	Inbound
)

// String returns "outbound" or "inbound".
func (d Dir) String() string {
	if d == Inbound {
		return "inbound"
	}
	return "outbound"
}

// Tuple is a 5-tuple. It is comparable and can be used as a map key. The
// zero Tuple is not a valid flow.
type Tuple struct {
	Proto Proto
	Src   netip.AddrPort
	Dst   netip.AddrPort
}

// Reverse returns the tuple of a packet travelling the other way.
func (t Tuple) Reverse() Tuple { return Tuple{Proto: t.Proto, Src: t.Dst, Dst: t.Src} }

// String returns "tcp 10.0.0.1:1234->192.0.2.1:80".
func (t Tuple) String() string {
	return t.Proto.String() + " " + t.Src.String() + "->" + t.Dst.String()
}

// TCPFlags are the flag bits of a TCP header, in header order.
type TCPFlags uint8

// TCP flag bits.
const (
	FIN TCPFlags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR
)

// Has reports whether all flags in f2 are set in f.
func (f TCPFlags) Has(f2 TCPFlags) bool { return f&f2 == f2 }

// String returns the flags as tcpdump prints them, "S", "S.", "F.", "R", or
// "none".
func (f TCPFlags) String() string {
	var b strings.Builder
	for _, x := range []struct {
		f TCPFlags
		c byte
	}{{SYN, 'S'}, {FIN, 'F'}, {RST, 'R'}, {PSH, 'P'}, {URG, 'U'}, {ECE, 'E'}, {CWR, 'W'}, {ACK, '.'}} {
		if f&x.f != 0 {
			b.WriteByte(x.c)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// Packet is what the engine needs to know of one packet. For an outbound
// packet Tuple.Src is the inside endpoint; for an inbound one Tuple.Dst is
// the SNAT IP:port it was sent to. An ICMP echo (L10, R6) carries its
// identifier as the inside (or SNAT) endpoint's port, and port 0 on the
// remote side.
type Packet struct {
	Time  time.Time
	Dir   Dir
	Tuple Tuple
	// Flags are the TCP flags; ignored for other protocols.
	Flags TCPFlags
	// Fragment is set for an IPv4 fragment (MF set or a non-zero offset):
	// its transport header, if any, is not trusted (B15).
	Fragment bool
	// Malformed is set for a packet whose transport header is cut or
	// impossible: the NAT cannot read its ports, so it drops it
	// (DropMalformed). Tuple then holds the addresses and protocol only.
	Malformed bool
	// ICMPOther is set for an ICMP message that is neither an echo request
	// or reply nor an error with Embedded (a timestamp, a redirect, an
	// error whose quoted header cannot be read): the engine drops it as
	// unsupported.
	ICMPOther bool
	// Embedded is set for an ICMP error (destination unreachable, time
	// exceeded): the 5-tuple of the packet it quotes, as quoted (its ports,
	// or an echo's identifier, as in Tuple). Inbound, that is a packet the
	// NAT sent (its source a SNAT endpoint); outbound, one the inside
	// endpoint received. A profile that translates ICMP (L10, R6) sends an
	// error about a live flow on to the other side, translated (outer
	// address and quoted endpoint both), and drops one about no flow;
	// the others drop every ICMP packet (B15, G8). Nil for every other
	// packet: a pointer, so that packets without it stay as small as
	// before (two packets compare equal with == only when they share it).
	Embedded *Tuple
}

// Action is what the NAT did with a packet.
type Action uint8

const (
	// Dropped: the packet went nowhere; the Verdict says why.
	Dropped Action = iota
	// Translated: the packet was forwarded with the Verdict's Tuple.
	Translated
	// Reset: the packet was not forwarded and the NAT answered its sender
	// with a RST (B14, G6).
	Reset
	// Hairpinned: an outbound packet to a public endpoint of the NAT was
	// sent back inside to the endpoint mapped there (R7); the Verdict's
	// Tuple is the packet as delivered, from the sender's public endpoint
	// to that inside endpoint.
	Hairpinned
)

// String returns "dropped", "translated", "reset" or "hairpinned".
func (a Action) String() string {
	switch a {
	case Translated:
		return "translated"
	case Reset:
		return "reset"
	case Hairpinned:
		return "hairpinned"
	}
	return "dropped"
}

// DropReason says why a packet was not translated.
type DropReason uint8

// Drop reasons. Each one is tied to the behaviour that causes it.
const (
	NotDropped DropReason = iota
	// DropExhausted: the instance has no SNAT port for a new flow (B9).
	DropExhausted
	// DropUnsolicited: an inbound packet matches no live flow (B8).
	DropUnsolicited
	// DropUnsupported: not TCP or UDP, or a protocol the outbound rule
	// does not carry (B15).
	DropUnsupported
	// DropFragment: an IP fragment (B15).
	DropFragment
	// DropReleased: a packet of a flow whose port was reclaimed by a pool
	// change (B16).
	DropReleased
	// DropNotSYN: in strict mode, a TCP packet with no live flow that is
	// not a SYN (C5).
	DropNotSYN
	// DropNoInstance: an outbound packet whose source is not a backend
	// instance of the configuration.
	DropNoInstance
	// DropMalformed: a packet whose transport header is cut or impossible
	// (Packet.Malformed): the NAT cannot read its ports.
	DropMalformed
	// DropInvalid: a TCP packet that connection tracking holds invalid (a
	// flag combination TCP forbids, or a packet its state table refuses,
	// such as a FIN or RST with no flow): dropped, never sent on with an
	// inside address (L11).
	DropInvalid

	dropEnd
)

// NumDropReasons is the length of the slice Engine.Drops returns: every
// DropReason is below it.
const NumDropReasons = int(dropEnd)

var dropNames = [...]string{"", "exhausted", "unsolicited", "unsupported-protocol", "fragment", "released", "not-syn", "no-instance", "malformed", "invalid"}

// String returns the reason as reports print it, "exhausted" or
// "unsolicited" for instance, and "" for NotDropped.
func (r DropReason) String() string {
	if int(r) < len(dropNames) {
		return dropNames[r]
	}
	return fmt.Sprintf("drop-%d", uint8(r))
}

// Verdict is the engine's answer for one packet.
type Verdict struct {
	Action Action
	// Reason is set when Action is Dropped or Reset.
	Reason DropReason
	// Behavior is the behaviour ID that decided this verdict.
	Behavior Behavior
	// Tuple is the packet as it leaves the NAT, when Action is Translated.
	Tuple Tuple
	// Instance is the index of the backend instance the packet belongs to,
	// or -1 when it belongs to none.
	Instance int
	// NewFlow is set when the packet created a flow.
	NewFlow bool
	// Embedded is, for a translated ICMP error (Packet.Embedded), the
	// quoted 5-tuple as it leaves the NAT: inbound, its source is the
	// inside endpoint; outbound, its destination the SNAT endpoint (R6,
	// L10). Nil otherwise.
	Embedded *Tuple
}

// String formats the verdict for logs and test failures: "L2 translated
// inst=0 tcp 203.0.113.1:1024->198.51.100.1:443 new", "G6 reset inst=-1
// unsolicited".
func (v Verdict) String() string {
	s := fmt.Sprintf("%v %v inst=%d", v.Behavior, v.Action, v.Instance)
	if v.Action == Translated || v.Action == Hairpinned {
		s += " " + v.Tuple.String()
		if v.Embedded != nil {
			s += " quoting " + v.Embedded.String()
		}
	} else {
		s += " " + v.Reason.String()
	}
	if v.NewFlow {
		s += " new"
	}
	return s
}
