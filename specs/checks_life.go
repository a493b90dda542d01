package specs

import (
	"net/netip"
	"time"

	"github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	"github.com/natcheck/natcheck/reference"
)

// life is a check of when one flow is released, for profiles whose ports
// are not predictable (linux, azure-natgw, rfc): the flow's own packets
// show it. In one session the flow's packets are sent, then at T − ε an
// inbound probe from the remote end is translated back; in a second
// session, at T, the same probe gets what gone says (dropped, or a RST).
type life struct {
	id    reference.Behavior
	title string
	proto reference.Proto
	// packets are the flow's: out from the inside endpoint to the remote,
	// in from the remote to the flow's SNAT endpoint; packetsOf, when set,
	// computes them from the profile's numbers instead.
	packets   []tp
	packetsOf func(reference.Profile) []tp
	// release is T, from the profile's numbers.
	release func(reference.Profile) time.Duration
	// probe is the inbound probe's TCP flags (ACK if zero).
	probe reference.TCPFlags
	// gone is what the probe at T gets.
	gone  func() types.GomegaMatcher
	needs Capabilities
	// cfg adjusts the configuration (nil: one frontend IP, one instance,
	// the default allocation).
	cfg func(*reference.Config)
}

// play sends one flow's packets (out: from inside to remote; in: remote's
// answer to the flow's SNAT endpoint), expecting each to be translated,
// outbound ones from the first one's SNAT endpoint, and returns the
// outcome of the first. before, if set, runs before each packet with its
// time.
func play(p *Probe, s *Session, proto reference.Proto, inside, remote netip.AddrPort, packets []tp, before func(time.Duration)) Outcome {
	var first Outcome
	for i, pk := range packets {
		if before != nil {
			before(pk.at)
		}
		if pk.dir == out {
			o := s.Out(pk.at, proto, inside, remote, pk.flags)
			p.G.Expect(o).To(BeForwarded())
			if i == 0 {
				first = o
			} else if first.Forwarded {
				// Translated from another endpoint, it would be a new flow:
				// the one under test was released already.
				p.G.Expect(o.SNAT()).To(gomega.Equal(first.SNAT()), "the flow's packet at +%v leaves from its SNAT endpoint", pk.at)
			}
			continue
		}
		p.G.Expect(s.Reply(pk.at, first, pk.flags)).To(BeForwardedTo(inside))
	}
	return first
}

func (l life) check() Check {
	return Check{ID: l.id, Title: l.title, Needs: l.needs, Run: func(p *Probe) {
		T := l.release(p.Profile())
		packets := l.packets
		if l.packetsOf != nil {
			packets = l.packetsOf(p.Profile())
		}
		// Gone is probed at T on the engine (B13's boundary); a live
		// device, whose resolution is coarser, is given it past T.
		for _, at := range []time.Duration{T - p.Epsilon(), T + p.Epsilon() - time.Millisecond} {
			c := config(1, 1, 0)
			if l.cfg != nil {
				l.cfg(&c)
			}
			s := p.Open(c)
			inside := ep(backend(0), 4000)
			remote := server(0, 443)
			if l.proto == udp {
				remote = server(0, 53)
			}
			first := play(p, s, l.proto, inside, remote, packets, nil)
			flags := l.probe
			if flags == 0 && l.proto == tcp {
				flags = ack
			}
			p.Notef(at, "probe at T%+v (T = %v)", at-T, T)
			got := s.Reply(at, first, flags)
			if at < T {
				p.G.Expect(got).To(BeForwardedTo(inside), "at T − ε the flow still translates")
				continue
			}
			p.G.Expect(got).To(l.gone(), "at T the flow is gone")
		}
	}}
}
