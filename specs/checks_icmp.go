package specs

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/onsi/gomega/types"

	"github.com/natcheck/natcheck/reference"
)

// router is where the checks' ICMP errors come from: a hop on the path,
// neither a flow's remote nor the NAT.
var router = netip.MustParseAddrPort("192.0.2.254:0")

// icmpError is an ICMP error (destination unreachable, time exceeded) at
// Origin+at, travelling dir from src to dst, quoting the packet q.
func icmpError(at time.Duration, dir reference.Dir, src, dst netip.Addr, q reference.Tuple) reference.Packet {
	return reference.Packet{Time: Origin.Add(at), Dir: dir, Embedded: &q,
		Tuple: reference.Tuple{Proto: reference.ICMP, Src: netip.AddrPortFrom(src, 0), Dst: netip.AddrPortFrom(dst, 0)}}
}

// errorAbout is the ICMP error a router sends at Origin+at about the
// packet the NAT sent for outbound outcome o, its quoted destination
// replaced by remote when that is valid.
func errorAbout(at time.Duration, o Outcome, remote netip.AddrPort) reference.Packet {
	if !remote.IsValid() {
		remote = o.Packet.Tuple.Dst
	}
	q := reference.Tuple{Proto: o.Packet.Tuple.Proto, Src: o.SNAT(), Dst: remote}
	return icmpError(at, in, router.Addr(), q.Src.Addr(), q)
}

// BeErrorTranslatedTo matches the Outcome of an inbound ICMP error that the
// NAT forwarded to inside's address, from the error's own source, quoting
// the packet with its source rewritten to inside and its destination
// unchanged (R6, L10).
func BeErrorTranslatedTo(inside netip.AddrPort) types.GomegaMatcher {
	return prop(fmt.Sprintf("the ICMP error to reach %v, quoting a packet from %v", inside.Addr(), inside), func(o Outcome) (bool, string) {
		q, got := o.Sent.Embedded, o.Packet.Embedded
		ok := o.Forwarded && q != nil && got != nil && o.Packet.Tuple.Proto == reference.ICMP &&
			o.Packet.Tuple.Src == o.Sent.Tuple.Src && o.Packet.Tuple.Dst.Addr() == inside.Addr() &&
			*got == reference.Tuple{Proto: q.Proto, Src: inside, Dst: q.Dst}
		return ok, "got: " + o.String()
	})
}

// icmpErrorChecks are the checks of ICMP errors about a flow: translated
// back under rfc (R6) and linux (L10), each with its way to expire a flow;
// dropped under azure-lb (B15) and azure-natgw (G8).
func icmpErrorChecks(id reference.Behavior) Check {
	const needs = CapICMP | CapICMPErrors
	switch id {
	case reference.R6:
		return Check{ID: id, Title: "an ICMP error about a live mapping or connection is translated back (outer destination and quoted source to the inside endpoint); one about no mapping, a remote the filter does not admit, or an expired mapping is dropped", Needs: needs,
			Run: func(p *Probe) {
				// Another port of the UDP destination: the mapping never
				// sent there, and address-and-port-dependent filtering (R2)
				// keeps it out; another TCP destination port is no
				// connection. The UDP mapping expires R4's timer after its
				// last packet.
				errorsTranslatedBack(p, p.Profile().RFC.UDP, func(s *Session, u Outcome, at time.Duration) {
					// A public port no mapping holds.
					none := u.Packet.Tuple
					none.Src = ep(none.Src.Addr(), none.Src.Port()+1)
					p.G.Expect(s.Send(icmpError(at, in, router.Addr(), none.Src.Addr(), none))).To(BeDropped())
				})
			}}
	case reference.L10:
		return Check{ID: id, Title: "an ICMP error about a live flow is translated back (outer destination and quoted source to the inside endpoint) without moving its timer; one about no flow (another destination port, an expired flow) is dropped", Needs: needs,
			Run: func(p *Probe) {
				// L3, L8: flows are per 5-tuple, so another destination port
				// is no flow, UDP (whose mapping azure-lb would share) too.
				// L7: the unanswered UDP flow ends udp_timeout after its
				// last packet; an error is RELATED and restarts nothing.
				errorsTranslatedBack(p, p.Profile().Conntrack.UDP, func(*Session, Outcome, time.Duration) {})
			}}
	}
	// B15, G8: ICMP is not translated, errors about a live flow included.
	return Check{ID: id, Title: "an ICMP error about a live flow is dropped, not translated back", Needs: needs,
		Run: func(p *Probe) {
			s := p.Open(config(1, 1, 0))
			u := s.Out(0, udp, ep(backend(0), 5000), server(0, 53), 0)
			t := s.Out(0, tcp, ep(backend(0), 5001), server(0, 443), syn)
			for _, o := range []Outcome{u, t} {
				p.G.Expect(o).To(BeForwarded())
				p.G.Expect(s.Send(errorAbout(sec, o, netip.AddrPort{}))).To(BeDropped())
			}
		}}
}

// errorsTranslatedBack checks what R6 and L10 share: from one backend, a
// UDP flow and a TCP connection; an error about either is translated back
// to its inside endpoint, one quoting another destination port of it is
// dropped; more runs (at 4 s); then the UDP flow, which the errors did not
// refresh, still takes an error just before expiry after its one packet
// and drops one at expiry (ε after it on a live device). Each error that
// is to be dropped has an instant of its own: a live device that judges a
// drop by waiting for nothing to come out would leave the next packet of
// the same instant late, and hold the profile clock back by as much.
func errorsTranslatedBack(p *Probe, expiry time.Duration, more func(s *Session, u Outcome, at time.Duration)) {
	s := p.Open(config(1, 1, 0))
	a, b := ep(backend(0), 5000), ep(backend(0), 6000)
	u := s.Out(0, udp, a, server(0, 53), 0)
	t := s.Out(0, tcp, b, server(1, 443), syn)
	p.G.Expect(s.Send(errorAbout(sec, u, netip.AddrPort{}))).To(BeErrorTranslatedTo(a))
	p.G.Expect(s.Send(errorAbout(sec, t, netip.AddrPort{}))).To(BeErrorTranslatedTo(b))
	p.G.Expect(s.Send(errorAbout(2*sec, u, server(0, 54)))).To(BeDropped())
	p.G.Expect(s.Send(errorAbout(3*sec, t, server(1, 444)))).To(BeDropped())
	more(s, u, 4*sec)
	// Dropped at expiry on the engine (ε = 1 ms); a live device, whose
	// resolution is coarser, is given ε past it, as life checks are.
	p.G.Expect(s.Send(errorAbout(expiry-p.Epsilon(), u, netip.AddrPort{}))).To(BeErrorTranslatedTo(a))
	p.G.Expect(s.Send(errorAbout(expiry+p.Epsilon()-time.Millisecond, u, netip.AddrPort{}))).To(BeDropped())
}
