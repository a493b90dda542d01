package reference

import (
	"net/netip"
	"time"
)

// The engine's seams. A profile differs from another in a few choices,
// each made once in New from the Profile's fields and kept as a small
// value or an interface; the packet path calls them without asking which
// profile it runs:
//
//   - the mapping key (Profile.Mapping): which parts of the destination
//     key a flow, as two masks per protocol (kIP, kPort) applied to the
//     destination of every key the engine builds, as natlab derives its
//     key from the RFC 4787 mapping type;
//   - port allocation (Profile.PortChoice, Profile.Quota): a picker;
//   - timers (Profile.Timers): a lifecycle, which also decides which
//     packets may open a flow (C5, L9, G6) and what a packet with no flow
//     gets from the other side (G6, R2);
//   - inbound filtering (Profile.Filtering): a filter, consulted only when
//     an inbound packet's source is not the flow's first remote endpoint;
//   - the behaviour IDs that verdicts and events cite (behaviorIDs);
//   - hairpinning (Profile.Hairpin), ICMP echo (Profile.ICMPEcho) and
//     fragments (Profile.Fragments): flags read where a packet is admitted
//     or has been translated.

// Packets reach the seams as values (protocol, flags, endpoints), never as
// a *Packet: a pointer passed to an interface method escapes, and the
// packet of every Process call would then be allocated on the heap.

// picker chooses the SNAT endpoint of a new flow.
type picker interface {
	// pick returns the frontend IP index, port and slot (the port's index
	// among the instance's ports, for pickers that keep per-instance
	// state) of a new flow of instance inst from the inside endpoint
	// inside, whose key is k. fresh reports a public endpoint no flow of the
	// inside endpoint held before (R3). ok false means none is suitable
	// (B9, L4, G3, R3).
	pick(e *Engine, inst uint32, proto Proto, inside netip.AddrPort, k key) (ip, port, slot uint16, fresh, ok bool)
	// added and released tell the picker that flow id took or gave back
	// its endpoint (released: at time at, for reason r).
	added(e *Engine, id uint32)
	released(e *Engine, id uint32, at int64, r ReleaseReason)
}

// step is what a lifecycle made of a packet of a live flow.
type step uint8

const (
	// stepPass: the packet is translated.
	stepPass step = iota
	// stepInvalid: the packet is dropped as invalid (L11); the flow is
	// unchanged.
	stepInvalid
	// stepKill: the packet is translated and the flow released at once
	// (L6: a RST on a flow that never saw a reply).
	stepKill
	// stepReopen: the flow is released and the packet taken as the first
	// of a new one (L6: a SYN on a closed connection).
	stepReopen
	// stepIgnore: the packet is translated but leaves the flow's state
	// and timer as they were (conntrack's ignored packets).
	stepIgnore
)

// lifecycle is how packets move a flow's release time.
type lifecycle interface {
	// open decides whether an outbound packet of proto with flags, which
	// has no flow, may open one:
	// NotDropped, or the reason and behaviour it is refused with, and
	// whether the NAT answers it with a RST (G6).
	open(e *Engine, proto Proto, flags TCPFlags) (r DropReason, b Behavior, reset bool)
	// start sets up a new flow before its first packet is applied.
	start(e *Engine, f *flow, id uint32, t int64)
	// touch applies a packet with flags, travelling in direction dir
	// (stOut or stIn), to
	// live flow f, also the first packet of a new flow (f.state has no
	// stOut or stIn yet). It sets the release time with e.setDeadline.
	touch(e *Engine, f *flow, id uint32, t int64, flags TCPFlags, dir uint8) step
	// ended names why f is released at its deadline, and the behaviour.
	ended(e *Engine, f *flow, id uint32) (ReleaseReason, Behavior)
	// miss answers an inbound packet to a frontend IP that matches no
	// flow, when the profile does something else than drop it (G6 RSTs,
	// R2's inbound SYN through an open filter); handled false otherwise.
	miss(e *Engine, p Packet, t int64, fi uint16) (v Verdict, handled bool)
}

// filter is inbound filtering beyond the flow's key (B8, R2).
type filter interface {
	// sent records that flow id sent to ip:port, which differs from its
	// first remote endpoint.
	sent(e *Engine, f *flow, id uint32, ip uint32, port uint16)
	// allowed reports whether ip:port, which differs from the flow's
	// first remote endpoint, may send through it.
	allowed(e *Engine, f *flow, id uint32, ip uint32, port uint16) bool
	// released forgets flow id.
	released(e *Engine, f *flow, id uint32)
}

// behaviorIDs are the items a profile's verdicts and events cite; the
// arrays are indexed by protocol number & 31.
type behaviorIDs struct {
	out, opened, in                                              [32]Behavior
	unsolicited, exhausted, unsupported, fragment, notSYN, reuse Behavior
	// icmpError is the item an ICMP error about a flow cites (L10, R6).
	icmpError Behavior
}

func perProto(tcp, udp, icmp Behavior) [32]Behavior {
	var a [32]Behavior
	a[TCP&31], a[UDP&31], a[ICMP&31] = tcp, udp, icmp
	return a
}

// idsFor returns the behaviour IDs of a profile's family.
func idsFor(name string) behaviorIDs {
	switch name {
	case NameLinux:
		return behaviorIDs{out: perProto(L3, L3, L10), opened: perProto(L2, L2, L10), in: perProto(L8, L8, L10),
			unsolicited: L8, exhausted: L4, unsupported: L10, fragment: L10, notSYN: L9, icmpError: L10}
	case NameAzureNATGW:
		return behaviorIDs{out: perProto(G3, G3, G8), opened: perProto(G2, G2, G8), in: perProto(G7, G7, G8),
			unsolicited: G7, exhausted: G3, unsupported: G8, fragment: G8, notSYN: G6, icmpError: G8}
	case NameRFC:
		return behaviorIDs{out: perProto(R1, R1, R1), opened: perProto(R3, R3, R3), in: perProto(R2, R2, R2),
			unsolicited: R2, exhausted: R3, notSYN: R5, reuse: R1, icmpError: R6}
	}
	return behaviorIDs{out: perProto(B6, B7, B15), opened: perProto(B6, B7, B15), in: perProto(B8, B8, B15),
		unsolicited: B8, exhausted: B9, unsupported: B15, fragment: B15, notSYN: C5, icmpError: B15}
}

// Cites returns the item of the profile that a packet dropped for reason
// r cites, as the engine's verdicts and events do: B9, L4, G3 or R3 for
// DropExhausted, for instance (azure-natgw's TCP packets with no flow,
// counted as DropUnsolicited, cite G6 in their own verdicts); NoBehavior
// for a reason no item covers (a malformed packet, a source that is no
// instance).
func (p Profile) Cites(r DropReason) Behavior {
	ids := idsFor(p.Name)
	switch r {
	case DropExhausted:
		return ids.exhausted
	case DropUnsolicited:
		return ids.unsolicited
	case DropUnsupported:
		return ids.unsupported
	case DropFragment:
		return ids.fragment
	case DropReleased:
		return B14 // B14 or B16: only azure-lb remembers released flows (C7)
	case DropNotSYN:
		return ids.notSYN
	case DropInvalid:
		return L11
	}
	return NoBehavior
}

// keyMask is the part of a destination IP and port that keys a flow of
// one protocol: kept side by side so that a key costs one cache line.
type keyMask struct {
	ip   uint32
	port uint16
}

// keyMasks returns, per protocol, the masks of the destination IP and
// port in a flow's key (Profile.Mapping).
func keyMasks(m Mapping) (km [32]keyMask) {
	for _, pr := range []Proto{TCP, UDP, ICMP} {
		km[pr&31] = keyMask{^uint32(0), ^uint16(0)}
	}
	switch m {
	case MappingPerDestination:
		km[UDP&31].port = 0 // B7: one UDP mapping per destination IP
	case MappingEndpointIndependent:
		// R1: a UDP or ICMP mapping per inside endpoint; TCP connections
		// stay per 5-tuple, sharing the endpoint's public one (rfcPicker).
		km[UDP&31], km[ICMP&31] = keyMask{}, keyMask{}
	}
	km[ICMP&31].port = 0 // an echo's remote side has no port
	return km
}

// strategies builds the seams of profile p for an engine.
func (e *Engine) strategies() {
	p := e.prof
	e.kMask = keyMasks(p.Mapping)
	e.ids = idsFor(p.Name)
	switch p.Timers {
	case TimersConntrack:
		e.life = newConntrack(e)
	case TimersRFC:
		e.life = &rfcTimers{t: p.RFC, strict: e.cfg.Strict}
	default:
		e.holdT = newHoldTimers(e)
		e.hold = &e.holdT
		e.life = e.hold
	}
	switch p.PortChoice {
	case PortPreserve:
		e.pick = &preservePicker{src: bySource{}}
	case PortRandom:
		e.pick = newGatewayPicker(e)
	case PortParity:
		e.pick = newParityPicker(e)
	default:
		e.pick, e.lowest = lowestFreePicker{}, true
	}
	switch {
	case p.Mapping == MappingEndpointIndependent:
		e.filt = &rfcFilter{mode: p.Filtering, peers: map[uint32][]uint64{}}
	default:
		e.filt, e.peerPorts = portFilter{}, true
	}
}

// longestTimer is the longest delay a packet can set under the engine's
// profile, which sizes the timing wheel. Equivalent mutants: the wheel's
// size is a speed choice only (see New).
func longestTimer(c *Config) time.Duration {
	p := &c.Profile
	switch p.Timers {
	case TimersConntrack:
		ct := p.Conntrack
		return max(ct.SynSent, ct.SynRecv, ct.Established, ct.FinWait, ct.CloseWait, ct.LastAck, ct.TimeWait, ct.Close,
			ct.Unacknowledged, ct.UDP, ct.UDPStream, ct.ICMP)
	case TimersRFC:
		return max(p.RFC.UDP, p.RFC.TCPEstablished, p.RFC.TCPTransitory, p.RFC.ICMP)
	}
	return max(c.IdleTimeout, p.Gateway.UDPIdle, p.Gateway.HalfOpen) + max(p.FINHold, p.RSTHold, p.Gateway.UDPHoldDown)
}
