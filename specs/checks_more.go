package specs

import (
	"time"

	. "github.com/onsi/gomega"

	"github.com/natcheck/natcheck/reference"
)

func protocolChecks() []Check {
	return []Check{
		{ID: reference.B15, Title: "outbound and inbound ICMP is dropped", Needs: CapICMP,
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				icmp := reference.Tuple{Proto: reference.ICMP, Src: ep(backend(0), 0), Dst: server(0, 0)}
				p.G.Expect(s.Send(reference.Packet{Time: Origin, Dir: out, Tuple: icmp})).To(BeDropped())
				r := s.Plan().Instances[0].Ranges[0]
				back := reference.Tuple{Proto: reference.ICMP, Src: server(0, 0), Dst: ep(r.IP, 0)}
				p.G.Expect(s.Send(reference.Packet{Time: Origin, Dir: in, Tuple: back})).To(BeDropped())
			}},
		icmpErrorChecks(reference.B15),
		{ID: reference.B15, Title: "IP fragments are dropped, TCP and UDP, outbound and inbound, even of a live flow", Needs: CapFragments,
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				o := s.Out(0, udp, ep(backend(0), 5000), server(0, 53), 0)
				p.G.Expect(o).To(BeForwarded())
				for _, proto := range []reference.Proto{tcp, udp} {
					fr := reference.Packet{Time: Origin.Add(time.Second), Dir: out, Tuple: reference.Tuple{Proto: proto, Src: ep(backend(0), 5000), Dst: server(0, 53)}, Flags: syn, Fragment: true}
					p.G.Expect(s.Send(fr)).To(BeDropped())
				}
				back := reference.Packet{Time: Origin.Add(time.Second), Dir: in, Tuple: reference.Tuple{Proto: udp, Src: server(0, 53), Dst: o.SNAT()}, Fragment: true}
				p.G.Expect(s.Send(back)).To(BeDropped())
			}},
		{ID: reference.B15, Title: "an outbound rule limited to TCP drops UDP, and one limited to UDP drops TCP", Needs: CapProtocolRule,
			Run: func(p *Probe) {
				for _, tc := range []struct {
					rule       reference.Protocols
					carried    reference.Proto
					notCarried reference.Proto
				}{{reference.TCPOnly, tcp, udp}, {reference.UDPOnly, udp, tcp}} {
					c := config(1, 1, 0)
					c.Protocols = tc.rule
					s := p.Open(c)
					p.G.Expect(s.Out(0, tc.carried, ep(backend(0), 1000), server(0, 53), syn)).To(BeForwarded())
					p.G.Expect(s.Out(0, tc.notCarried, ep(backend(0), 1001), server(0, 53), syn)).To(BeDropped())
				}
			}},
	}
}

func poolChecks() []Check {
	return []Check{
		{ID: reference.B16, Title: "when the pool grows from 50 to 51, each instance keeps the lower half of its blocks: flows on kept ports go on, flows on reclaimed ports are dropped, the new instance gets 512",
			Needs: CapPoolChange,
			Run: func(p *Probe) {
				backs := config(1, 51, 0).Backends
				c := config(1, 50, 0)
				s := p.Open(c)
				before := s.Plan()
				// Source ports of the instance's own range: the flows take
				// every port whatever way the NAT picks them (C3, L2).
				flows := s.FillFrom(0, tcp, backend(0), ownPorts(before, 0, 1024), server(0, 443))
				p.G.Expect(flows).To(LieInAllocationOf(before, 0))
				s.SetPool(sec, backs, 0)
				after := s.Plan()
				p.G.Expect(after.Instances[0].Ports).To(Equal(512))
				kept := after.Instances[0].Ranges
				var keptFlows, lostFlows []Outcome
				for _, f := range flows {
					if inRanges(kept, f.SNAT()) {
						keptFlows = append(keptFlows, f)
					} else {
						lostFlows = append(lostFlows, f)
					}
				}
				p.G.Expect(keptFlows).To(HaveLen(512), "flows on kept ports")
				maxKept := uint16(0)
				for _, f := range keptFlows {
					maxKept = max(maxKept, f.SNAT().Port())
				}
				for _, f := range lostFlows {
					p.G.Expect(f.SNAT().Port()).To(BeNumerically(">", maxKept), "the kept blocks are the lower half")
				}
				// The servers answer (a SYN-ACK: the flows are opening).
				for _, f := range []Outcome{keptFlows[0], keptFlows[511]} {
					p.G.Expect(s.Reply(2*sec, f, syn|ack)).To(BeForwardedTo(f.Sent.Tuple.Src), "a flow on a kept port goes on")
				}
				for _, f := range []Outcome{lostFlows[0], lostFlows[511]} {
					p.G.Expect(s.Reply(2*sec, f, syn|ack)).To(BeDropped(), "a flow on a reclaimed port is dropped")
				}
				p.G.Expect(s.Out(2*sec, tcp, ep(backend(0), 9000), server(0, 443), syn)).To(BeDropped(), "instance 1 has no 513th port")
				expectPorts(p, s, 3*sec, 50, 512)
			}},
		{ID: reference.B16, Title: "shrinking the pool only adds ports: back from 51 to 50, instance 1 regains 1,024 and keeps its flows",
			Needs: CapPoolChange,
			Run: func(p *Probe) {
				c := config(1, 51, 0)
				s := p.Open(c)
				flows := s.FillFrom(0, tcp, backend(0), ownPorts(s.Plan(), 0, 512), server(0, 443))
				s.SetPool(sec, c.Backends[:50], 0)
				p.G.Expect(s.Plan().Instances[0].Ports).To(Equal(1024))
				p.G.Expect(s.Reply(2*sec, flows[0], syn|ack)).To(BeForwardedTo(flows[0].Sent.Tuple.Src))
				// The regained ports as source ports, then one outside them.
				more := s.FillFrom(2*sec, tcp, backend(0), ownPorts(s.Plan(), 0, 1025)[512:], server(0, 443))
				p.G.Expect(more).To(BeExhaustedAfter(512))
				p.G.Expect(append(flows, more[:512]...)).To(UseDistinctSNATPorts())
			}},
		{ID: reference.B16, Title: "a manual allocation never shrinks: an instance added beyond its capacity gets no ports and every new flow of it fails",
			Needs: CapPoolChange,
			Run: func(p *Probe) {
				c := config(1, 2, 32000)
				s := p.Open(c)
				o := s.Out(0, tcp, ep(backend(0), 1000), server(0, 443), syn)
				p.G.Expect(o).To(BeForwarded())
				s.SetPool(sec, config(1, 3, 0).Backends, 0)
				plan := s.Plan()
				p.G.Expect(plan.Instances[0].Ports).To(Equal(32000))
				p.G.Expect(plan.Instances[1].Ports).To(Equal(32000))
				p.G.Expect(plan.Instances[2].Ports).To(BeZero())
				p.G.Expect(s.Reply(2*sec, o, ack)).To(BeForwardedTo(ep(backend(0), 1000)))
				p.G.Expect(s.Out(2*sec, tcp, ep(backend(2), 1000), server(0, 443), syn)).To(BeDropped())
				p.G.Expect(s.Out(2*sec, udp, ep(backend(2), 1000), server(0, 53), 0)).To(BeDropped())
			}},
	}
}

func conventionChecks() []Check {
	return []Check{
		{ID: reference.C1, Title: "SNAT ports are 1024–65023: a 64,000-port instance's range, first and last port",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 64000))
				p.G.Expect(s.Plan().Instances[0].Ranges).To(Equal([]reference.PortRange{{IP: frontend(0), First: 1024, Last: 65023}}))
				p.G.Expect(s.Out(0, tcp, ep(backend(0), 1), server(0, 443), syn).SNAT()).To(Equal(ep(frontend(0), 1024)))
			}},
		{ID: reference.C2, Title: "instances take consecutive blocks in configuration order, filling IP #1 before IP #2 (3 × 40,000 on two IPs)",
			Run: func(p *Probe) {
				plan := p.Open(config(2, 3, 40000)).Plan()
				want := [][]reference.PortRange{
					{{IP: frontend(0), First: 1024, Last: 41023}},
					{{IP: frontend(0), First: 41024, Last: 65023}, {IP: frontend(1), First: 1024, Last: 17023}},
					{{IP: frontend(1), First: 17024, Last: 57023}},
				}
				for i, w := range want {
					p.G.Expect(plan.Instances[i].Ranges).To(Equal(w), "instance %d", i+1)
				}
			}},
		{ID: reference.C3, Title: "port choice is the lowest free port, and released ports are taken lowest first",
			Run: func(p *Probe) {
				var runs [2][]uint16
				for r := range runs {
					s := p.Open(config(1, 1, 16))
					for _, o := range s.Fill(0, tcp, backend(0), 1000, 5, server(0, 443)) {
						runs[r] = append(runs[r], o.SNAT().Port())
					}
					s.Out(sec, tcp, ep(backend(0), 1001), server(0, 443), rst)
					s.Out(sec, tcp, ep(backend(0), 1003), server(0, 443), rst)
					for _, o := range s.Fill(16*sec, tcp, backend(0), 2000, 3, server(0, 443)) {
						runs[r] = append(runs[r], o.SNAT().Port())
					}
				}
				p.G.Expect(runs[0]).To(Equal([]uint16{1024, 1025, 1026, 1027, 1028, 1025, 1027, 1029}))
				p.G.Expect(runs[1]).To(Equal(runs[0]), "the same input gives the same output")
			}},
		{ID: reference.C3, Title: "an instance spanning two IPs uses the first IP's ports first, then the second's from its lowest",
			Run: func(p *Probe) {
				s := p.Open(config(2, 3, 24000))
				burst := s.Fill(0, tcp, backend(2), 1, 16001, server(0, 443))
				p.G.Expect(burst[0].SNAT()).To(Equal(ep(frontend(0), 49024)))
				p.G.Expect(burst[15999].SNAT()).To(Equal(ep(frontend(0), 65023)))
				p.G.Expect(burst[16000].SNAT()).To(Equal(ep(frontend(1), 1024)))
			}},
		{ID: reference.C4, Title: "a released slot is taken again at once: TCP at its RST release time, UDP at its idle release time",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				a := s.Out(0, tcp, ep(backend(0), 1000), server(0, 443), syn)
				s.Out(sec, tcp, ep(backend(0), 1000), server(0, 443), rst)
				b := s.Out(16*sec, tcp, ep(backend(0), 1001), server(0, 443), syn)
				p.G.Expect([]Outcome{a, b}).To(ShareOneSNATPort())
				u := s.Out(20*sec, udp, ep(backend(0), 5000), server(0, 53), 0)
				v := s.Out(20*sec+4*minute, udp, ep(backend(0), 5001), server(0, 99), 0)
				p.G.Expect([]Outcome{u, v}).To(ShareOneSNATPort())
			}},
		{ID: reference.C5, Title: "a TCP packet from inside with no flow creates one whatever its flags (mid-stream pick-up: ACK, FIN, RST)",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				for i, f := range []reference.TCPFlags{ack | psh, fin | ack, rst} {
					inside, at := ep(backend(0), uint16(1000+i)), time.Duration(i)*10*sec
					o := s.Out(at, tcp, inside, server(0, 443), f)
					p.G.Expect(o).To(BeForwarded(), "flags %v", f)
					p.G.Expect(s.Reply(at+sec, o, ack)).To(BeForwardedTo(inside), "flags %v", f)
				}
			}},
		{ID: reference.C5, Title: "strict mode creates TCP flows only on a SYN", Needs: CapStrict,
			Run: func(p *Probe) {
				c := config(1, 1, 0)
				c.Strict = true
				s := p.Open(c)
				p.G.Expect(s.Out(0, tcp, ep(backend(0), 1000), server(0, 443), ack)).To(BeDropped())
				p.G.Expect(s.Out(0, tcp, ep(backend(0), 1000), server(0, 443), syn)).To(BeForwarded())
				p.G.Expect(s.Out(0, tcp, ep(backend(0), 1000), server(0, 443), ack)).To(BeForwarded())
			}},
		{ID: reference.C6, Title: "with tcpResetOnIdle, a flow that translated a packet each way (SYN out, SYN-ACK in) is established and reset at expiry; one that only sent is not",
			Needs: CapResetOnIdle,
			Run: func(p *Probe) {
				c := config(1, 1, 0)
				c.TCPResetOnIdle = true
				s := p.Open(c)
				o := s.Out(0, tcp, ep(backend(0), 1000), server(0, 443), syn)
				p.G.Expect(s.Reply(0, o, syn|ack)).To(BeForwardedTo(ep(backend(0), 1000)))
				p.G.Expect(s.Out(0, tcp, ep(backend(0), 2000), server(1, 443), syn|psh)).To(BeForwarded())
				p.G.Expect(s.Out(0, tcp, ep(backend(0), 2001), server(1, 443), ack)).To(BeForwarded())
				emitted := s.Wait(4 * minute)
				p.G.Expect(emitted).To(HaveLen(2), "RSTs for the flow seen both ways only")
				p.G.Expect(emitted).To(HaveEach(WithTransform(func(pk reference.Packet) bool {
					return pk.Tuple.Dst == ep(backend(0), 1000) || pk.Tuple.Dst == server(0, 443)
				}, BeTrue())))
			}},
		{ID: reference.C7, Title: "a flow reset at idle expiry T is remembered until T + idle timeout: late packets get a RST at T + idle − ε, and at T + idle a reply is unsolicited and an outbound packet opens a new flow",
			Needs: CapResetOnIdle,
			Run: func(p *Probe) {
				for _, late := range []time.Duration{4*minute - p.Epsilon(), 4 * minute} {
					c := config(1, 1, 0)
					c.TCPResetOnIdle = true
					s := p.Open(c)
					o := s.Out(0, tcp, ep(backend(0), 1000), server(0, 443), syn)
					p.G.Expect(s.Reply(0, o, syn|ack)).To(BeForwarded())
					p.G.Expect(s.Wait(4 * minute)).To(HaveLen(2))
					at := 4*minute + late
					if late < 4*minute {
						p.G.Expect(s.Reply(at, o, ack)).To(BeAnsweredWithRST())
						p.G.Expect(s.Out(at, tcp, ep(backend(0), 1000), server(0, 443), ack)).To(BeAnsweredWithRST())
						continue
					}
					p.G.Expect(s.Reply(at, o, ack)).To(BeDropped())
					p.G.Expect(s.Out(at, tcp, ep(backend(0), 1000), server(0, 443), ack)).To(BeForwarded())
				}
			}},
	}
}
