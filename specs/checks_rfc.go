package specs

import (
	"fmt"
	"time"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	"github.com/natcheck/natcheck/reference"
)

// RFCChecks returns every check of the rfc profile (R1–R7), in
// SEMANTICS.md order.
func RFCChecks() []Check {
	var cs []Check
	for _, part := range [][]Check{rfcMappingChecks(), rfcTimerChecks(), rfcHairpinChecks()} {
		cs = append(cs, part...)
	}
	return cs
}

// BeHairpinnedTo matches an outbound Outcome that the NAT sent back
// inside to the endpoint inside, from the public endpoint from (R7).
func BeHairpinnedTo(inside, from any) types.GomegaMatcher {
	return prop(fmt.Sprintf("the packet to come back inside to %v from %v", inside, from), func(o Outcome) (bool, string) {
		return o.Forwarded && o.Packet.Dir == in && o.Packet.Tuple.Dst == inside && o.Packet.Tuple.Src == from, "got: " + o.String()
	})
}

func rfcMappingChecks() []Check {
	filter := func(f reference.Filtering) func(*reference.Profile) {
		return func(pr *reference.Profile) { pr.Filtering = f }
	}
	return []Check{
		{ID: reference.R1, Title: "one inside endpoint keeps one public endpoint for every destination: UDP to three destinations, TCP to two",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				var us, ts []Outcome
				for _, d := range []int{0, 1, 2} {
					us = append(us, s.Out(0, udp, ep(backend(0), 5000), server(d, uint16(53+d)), 0))
				}
				for _, d := range []int{0, 1} {
					ts = append(ts, s.Out(0, tcp, ep(backend(0), 6000), server(d, 443), syn))
				}
				p.G.Expect(us).To(ShareOneSNATPort())
				p.G.Expect(ts).To(ShareOneSNATPort())
			}},
		{ID: reference.R2, Title: "address-and-port-dependent filtering (the default): only the remote IP:port the mapping sent to gets in",
			Run: func(p *Probe) {
				p.G.Expect(p.Profile().Filtering).To(Equal(reference.FilterAddressAndPort), "the default filtering")
				s := p.Open(config(1, 1, 0))
				inside := ep(backend(0), 5000)
				o := s.Out(0, udp, inside, server(0, 53), 0)
				p.G.Expect(s.In(sec, udp, server(0, 53), o.SNAT(), 0)).To(BeForwardedTo(inside))
				p.G.Expect(s.In(sec, udp, server(0, 54), o.SNAT(), 0)).To(BeDropped())
				p.G.Expect(s.In(sec, udp, server(1, 53), o.SNAT(), 0)).To(BeDropped())
			}},
		{ID: reference.R2, Title: "address-dependent filtering: any port of a remote IP the mapping sent to gets in, other IPs do not",
			Run: func(p *Probe) {
				s := p.OpenTweaked(config(1, 1, 0), filter(reference.FilterAddress))
				inside := ep(backend(0), 5000)
				o := s.Out(0, udp, inside, server(0, 53), 0)
				p.G.Expect(s.In(sec, udp, server(0, 54), o.SNAT(), 0)).To(BeForwardedTo(inside))
				p.G.Expect(s.In(sec, udp, server(1, 53), o.SNAT(), 0)).To(BeDropped())
			}},
		{ID: reference.R2, Title: "endpoint-independent filtering: any remote endpoint gets in, TCP SYNs too",
			Run: func(p *Probe) {
				s := p.OpenTweaked(config(1, 1, 0), filter(reference.FilterEndpointIndependent))
				inside := ep(backend(0), 5000)
				o := s.Out(0, udp, inside, server(0, 53), 0)
				p.G.Expect(s.In(sec, udp, server(1, 99), o.SNAT(), 0)).To(BeForwardedTo(inside))
				t := s.Out(sec, tcp, ep(backend(0), 6000), server(0, 443), syn)
				p.G.Expect(s.In(2*sec, tcp, server(2, 7000), t.SNAT(), syn)).To(BeForwardedTo(ep(backend(0), 6000)))
			}},
		{ID: reference.R2, Title: "under address-and-port-dependent filtering a TCP SYN from another endpoint to a mapped port is dropped",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				t := s.Out(0, tcp, ep(backend(0), 6000), server(0, 443), syn)
				p.G.Expect(s.In(sec, tcp, server(2, 7000), t.SNAT(), syn)).To(BeDropped())
				p.G.Expect(s.Reply(sec, t, syn|ack)).To(BeForwardedTo(ep(backend(0), 6000)))
			}},
		{ID: reference.R3, Title: "the inside port is kept when free; otherwise the public port has its parity and range",
			Run: func(p *Probe) {
				s := p.Open(config(1, 2, 0))
				for _, port := range []uint16{5000, 5003, 80, 81} {
					a := s.Out(0, udp, ep(backend(0), port), server(0, 53), 0)
					p.G.Expect(a.SNAT().Port()).To(Equal(port), "backend 1's port %d kept", port)
					b := s.Out(0, udp, ep(backend(1), port), server(0, 53), 0)
					p.G.Expect([]Outcome{a, b}).To(UseDistinctSNATPorts())
					p.G.Expect(b.SNAT().Port()%2).To(Equal(port%2), "parity of %d", port)
					p.G.Expect(b.SNAT().Port() < 1024).To(Equal(port < 1024), "range of %d", port)
				}
			}},
		{ID: reference.R3, Title: "IP pooling is paired: one inside IP uses one public IP for all its mappings (UDP and TCP, three destinations)",
			Run: func(p *Probe) {
				s := p.Open(config(2, 2, 0))
				for b := range 2 {
					os := []Outcome{
						s.Out(0, udp, ep(backend(b), 5000), server(0, 53), 0),
						s.Out(0, udp, ep(backend(b), 5001), server(1, 53), 0),
						s.Out(0, tcp, ep(backend(b), 6000), server(2, 443), syn),
					}
					for _, o := range os {
						p.G.Expect(o).To(BeForwarded())
						p.G.Expect(o.SNAT().Addr()).To(Equal(os[0].SNAT().Addr()), "backend %d: %v", b+1, o)
					}
				}
			}},
	}
}

func rfcTimerChecks() []Check {
	udpT := func(pr reference.Profile) time.Duration { return pr.RFC.UDP }
	est := func(pr reference.Profile) time.Duration { return pr.RFC.TCPEstablished }
	tra := func(pr reference.Profile) time.Duration { return pr.RFC.TCPTransitory }
	plus := func(f func(reference.Profile) time.Duration, d time.Duration) func(reference.Profile) time.Duration {
		return func(pr reference.Profile) time.Duration { return d + f(pr) }
	}
	R4, R5 := reference.R4, reference.R5
	var cs []Check
	for _, l := range []life{
		{id: R4, title: "a UDP mapping lives 5 minutes after its last outbound packet", proto: udp,
			packets: []tp{{0, out, 0}}, release: udpT},
		{id: R4, title: "inbound traffic refreshes the UDP mapping (inbound refresh on)", proto: udp,
			packets: []tp{{0, out, 0}, {4 * minute, in, 0}}, release: func(pr reference.Profile) time.Duration {
				if pr.RFC.InboundRefresh {
					return 4*minute + pr.RFC.UDP
				}
				return pr.RFC.UDP
			}},
		{id: R5, title: "a TCP connection with only a SYN is transitory: released 4 minutes after it", proto: tcp,
			packets: []tp{{0, out, syn}}, release: tra},
		{id: R5, title: "an established TCP connection is released 124 minutes after its last packet", proto: tcp,
			packets: then(handshake, tp{time.Hour, out, ack}), release: plus(est, time.Hour)},
		{id: R5, title: "after a FIN in both directions the connection is transitory again: 4 minutes after the second FIN", proto: tcp,
			packets: then(handshake, tp{10 * sec, out, fin | ack}, tp{20 * sec, in, fin | ack}), release: plus(tra, 20*sec)},
		{id: R5, title: "a RST is translated and the connection kept 4 minutes after it", proto: tcp,
			packets: then(handshake, tp{5 * sec, out, rst}), release: plus(tra, 5*sec)},
	} {
		l.gone = dropped
		cs = append(cs, l.check())
	}
	cs = append(cs,
		Check{ID: R4, Title: "outbound traffic to any destination refreshes the UDP mapping: a reply from the first destination still gets in 5 minutes after a packet to another",
			Run: func(p *Probe) {
				T := 4*minute + p.Profile().RFC.UDP
				for _, at := range []time.Duration{T - p.Epsilon(), T} {
					s := p.Open(config(1, 1, 0))
					inside := ep(backend(0), 5000)
					o := s.Out(0, udp, inside, server(0, 53), 0)
					p.G.Expect(s.Out(4*minute, udp, inside, server(1, 53), 0)).To(BeForwarded())
					r := s.In(at, udp, server(0, 53), o.SNAT(), 0)
					if at < T {
						p.G.Expect(r).To(BeForwardedTo(inside))
					} else {
						p.G.Expect(r).To(BeDropped())
					}
				}
			}},
		Check{ID: R4, Title: "a UDP mapping timer under 2 minutes is rejected",
			Run: func(p *Probe) {
				c := config(1, 1, 0)
				c.Profile = p.Profile()
				c.Profile.RFC.UDP = time.Minute
				_, err := p.TryOpen(c)
				p.G.Expect(err).To(BeRejectedConfig(""))
			}},
		Check{ID: R5, Title: "an established idle timeout under 124 minutes or a transitory one under 4 minutes is rejected",
			Run: func(p *Probe) {
				for _, f := range []func(*reference.RFCTimers){
					func(t *reference.RFCTimers) { t.TCPEstablished = 120 * minute },
					func(t *reference.RFCTimers) { t.TCPTransitory = 3 * minute },
				} {
					c := config(1, 1, 0)
					c.Profile = p.Profile()
					f(&c.Profile.RFC)
					_, err := p.TryOpen(c)
					p.G.Expect(err).To(BeRejectedConfig(""))
				}
			}},
		Check{ID: reference.R6, Title: "an ICMP echo is translated and its reply comes back; the query mapping lives 60 s", Needs: CapICMP,
			Run: func(p *Probe) {
				T := p.Profile().RFC.ICMP
				for _, at := range []time.Duration{T - p.Epsilon(), T} {
					s := p.Open(config(1, 1, 0))
					inside := ep(backend(0), 77)
					o := s.Send(reference.Packet{Time: Origin, Dir: out, Tuple: reference.Tuple{Proto: reference.ICMP, Src: inside, Dst: server(0, 0)}})
					p.G.Expect(o).To(BeForwarded())
					back := s.Send(reference.Packet{Time: Origin.Add(at), Dir: in, Tuple: reference.Tuple{Proto: reference.ICMP, Src: server(0, 0), Dst: o.SNAT()}})
					if at < T {
						p.G.Expect(back).To(BeForwardedTo(inside))
					} else {
						p.G.Expect(back).To(BeDropped())
					}
				}
			}},
		icmpErrorChecks(reference.R6),
	)
	return cs
}

func rfcHairpinChecks() []Check {
	return []Check{
		{ID: reference.R7, Title: "hairpinning: a packet from inside to another inside endpoint's public endpoint reaches it, from the sender's public endpoint, once the filter lets it in",
			Run: func(p *Probe) {
				s := p.Open(config(1, 2, 0))
				a, b := ep(backend(0), 5000), ep(backend(1), 6000)
				pa := s.Out(0, udp, a, server(0, 53), 0).SNAT()
				pb := s.Out(0, udp, b, server(0, 53), 0).SNAT()
				p.G.Expect(s.Out(sec, udp, b, pa, 0)).To(BeDropped(), "A has not sent to B's public endpoint yet")
				p.G.Expect(s.Out(2*sec, udp, a, pb, 0)).To(BeHairpinnedTo(b, pa))
				p.G.Expect(s.Out(3*sec, udp, b, pa, 0)).To(BeHairpinnedTo(a, pb))
			}},
		{ID: reference.R7, Title: "hairpinning with endpoint-independent filtering: the first packet to a public endpoint gets in",
			Run: func(p *Probe) {
				s := p.OpenTweaked(config(1, 2, 0), func(pr *reference.Profile) { pr.Filtering = reference.FilterEndpointIndependent })
				a, b := ep(backend(0), 5000), ep(backend(1), 6000)
				pa := s.Out(0, udp, a, server(0, 53), 0).SNAT()
				o := s.Out(sec, udp, b, pa, 0)
				p.G.Expect(o).To(BeForwarded())
				p.G.Expect(o.Packet.Tuple.Dst).To(Equal(a))
				p.G.Expect(o.Packet.Tuple.Src.Addr()).To(Equal(frontend(0)))
			}},
	}
}
