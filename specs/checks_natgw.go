package specs

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	"github.com/natcheck/natcheck/reference"
)

// NATGWChecks returns every check of the azure-natgw profile (G1–G8), in
// SEMANTICS.md order. The gateway chooses public IPs and ports at random
// (G2), so no check names a port: they assert ranges, distinctness, which
// flows a packet reaches, and when.
func NATGWChecks() []Check {
	var cs []Check
	for _, part := range [][]Check{natgwInventoryChecks(), natgwTimerChecks(), natgwResetChecks(), natgwInboundChecks()} {
		cs = append(cs, part...)
	}
	return cs
}

// inGateway matches forwarded outbound outcomes whose SNAT endpoints lie
// on one of ips, ports 1024–65535 (G1).
func inGateway(ips []netip.Addr) types.GomegaMatcher {
	return anyOutcomes(fmt.Sprintf("every SNAT endpoint to lie on %v, ports 1024–65535", ips), func(os []Outcome) (bool, string) {
		for i, o := range os {
			a := o.SNAT()
			if !o.Forwarded || !slices.Contains(ips, a.Addr()) || a.Port() < 1024 {
				return false, fmt.Sprintf("flow %d: %v", i+1, o)
			}
		}
		return true, ""
	})
}

func frontends(k int) []netip.Addr {
	var fs []netip.Addr
	for i := range k {
		fs = append(fs, frontend(i))
	}
	return fs
}

func natgwInventoryChecks() []Check {
	return []Check{
		{ID: reference.G1, Title: "the subnet shares one inventory: two instances open 2,000 flows each to one destination (beyond any per-instance quota), all from the public IP, ports 1024–65535, all distinct",
			Run: func(p *Probe) {
				s := p.Open(config(1, 2, 0))
				a := s.Fill(0, tcp, backend(0), 10000, 2000, server(0, 443))
				b := s.Fill(0, tcp, backend(1), 10000, 2000, server(0, 443))
				all := append(a, b...)
				p.G.Expect(all).To(inGateway(frontends(1)))
				p.G.Expect(all).To(UseDistinctSNATPorts())
			}},
		{ID: reference.G1, Title: "1 to 16 public IPs: 16 are accepted, 17 rejected",
			Run: func(p *Probe) {
				_, err := p.TryOpen(config(16, 1, 0))
				p.G.Expect(err).NotTo(HaveOccurred())
				_, err = p.TryOpen(config(17, 1, 0))
				p.G.Expect(err).To(BeRejectedConfig(""))
			}},
		{ID: reference.G2, Title: "ports are chosen at random: 32 flows to one destination get distinct ports, not handed out in ascending order",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				burst := s.Fill(0, tcp, backend(0), 10000, 32, server(0, 443))
				p.G.Expect(burst).To(UseDistinctSNATPorts())
				ascending := true
				for i := 1; i < len(burst); i++ {
					ascending = ascending && burst[i].SNAT().Port() == burst[i-1].SNAT().Port()+1
				}
				p.G.Expect(ascending).To(BeFalse(), "32 consecutive ports in order: a lowest-free choice, not a random one")
			}},
		{ID: reference.G2, Title: "public IPs are chosen at random too: with two IPs, 64 new flows use both",
			Run: func(p *Probe) {
				s := p.Open(config(2, 1, 0))
				burst := s.Fill(0, udp, backend(0), 10000, 64, server(0, 53))
				p.G.Expect(burst).To(inGateway(frontends(2)))
				used := map[netip.Addr]int{}
				for _, o := range burst {
					used[o.SNAT().Addr()]++
				}
				p.G.Expect(used).To(HaveLen(2), "flows per IP: %v", used)
			}},
		{ID: reference.G3, Title: "never two live flows to one destination IP:port on one public endpoint: 500 flows (TCP and UDP) to one destination use 500 endpoints each",
			Run: func(p *Probe) {
				s := p.Open(config(2, 1, 0))
				for _, proto := range []reference.Proto{tcp, udp} {
					burst := s.Fill(0, proto, backend(0), 10000, 500, server(0, 443))
					p.G.Expect(burst).To(UseDistinctSNATPorts())
				}
			}},
		{ID: reference.G3, Title: "at most 50,000 concurrent flows per (public IP, destination IP:port): with one IP the 50,001st is refused, another destination still works", Needs: CapLargeAllocation,
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				burst := s.Fill(0, tcp, backend(0), 1, 50001, server(0, 443))
				p.G.Expect(burst).To(BeExhaustedAfter(50000))
				p.G.Expect(s.Out(sec, tcp, ep(backend(0), 1), server(1, 443), syn)).To(BeForwarded())
			}},
	}
}

func rstBack() types.GomegaMatcher { return BeAnsweredWithRST() }

func natgwTimerChecks() []Check {
	const ms = time.Millisecond
	fixed := func(d time.Duration) func(reference.Profile) time.Duration {
		return func(reference.Profile) time.Duration { return d }
	}
	prof := func(f func(reference.Profile) time.Duration, plus time.Duration) func(reference.Profile) time.Duration {
		return func(pr reference.Profile) time.Duration { return plus + f(pr) }
	}
	finHold := func(pr reference.Profile) time.Duration { return pr.FINHold }
	rstHold := func(pr reference.Profile) time.Duration { return pr.RSTHold }
	G4, G5 := reference.G4, reference.G5
	var cs []Check
	for _, l := range []life{
		{id: G4, title: "a FIN from inside holds the flow 65 s: translated until then, a RST at FIN + 65 s", proto: tcp,
			packets: then(handshake, tp{10 * sec, out, fin | ack}), release: prof(finHold, 10*sec)},
		{id: G4, title: "a FIN from outside holds the flow 65 s", proto: tcp,
			packets: then(handshake, tp{10 * sec, in, fin | ack}), release: prof(finHold, 10*sec)},
		{id: G4, title: "packets after the FIN do not restart the hold: an ACK at 60 s, release still at FIN + 65 s", proto: tcp,
			packets: then(handshake, tp{10 * sec, out, fin | ack}, tp{60 * sec, in, ack}), release: prof(finHold, 10*sec)},
		{id: G4, title: "a RST holds the flow 16 s", proto: tcp,
			packets: then(handshake, tp{5 * sec, out, rst}), release: prof(rstHold, 5*sec)},
		{id: G4, title: "a RST 10 s after a FIN shortens the hold to RST + 16 s", proto: tcp,
			packets: then(handshake, tp{10 * sec, out, fin | ack}, tp{20 * sec, in, rst}), release: prof(rstHold, 20*sec)},
		{id: G4, title: "a SYN with no answer for 30 s is closed; a retransmitted SYN at 20 s does not extend it", proto: tcp,
			packets: []tp{{0, out, syn}, {20 * sec, out, syn}}, probe: syn | ack,
			release: func(pr reference.Profile) time.Duration { return pr.Gateway.HalfOpen }},
		{id: G5, title: "a TCP flow idle for the default 4 minutes is released", proto: tcp,
			packets: handshake, release: fixed(4*minute + 2*ms)},
		{id: G5, title: "inbound traffic restarts the idle timer", proto: tcp,
			packets: then(handshake, tp{3 * minute, in, ack}), release: fixed(7 * minute)},
		{id: G5, title: "a TCP idle timeout of 30 minutes applies", proto: tcp,
			packets: then(handshake, tp{20 * minute, out, ack}), release: fixed(50 * minute),
			cfg: func(c *reference.Config) { c.IdleTimeout = 30 * minute }},
	} {
		l.gone = rstBack
		cs = append(cs, l.check())
	}
	for _, l := range []life{
		{id: G5, title: "UDP idles out after a fixed 4 minutes, even with a TCP idle timeout of 30 minutes", proto: udp,
			packets: []tp{{0, out, 0}, {minute, in, 0}}, release: prof(func(pr reference.Profile) time.Duration { return pr.Gateway.UDPIdle }, minute),
			cfg: func(c *reference.Config) { c.IdleTimeout = 30 * minute }},
	} {
		l.gone = dropped
		cs = append(cs, l.check())
	}
	cs = append(cs, idleBoundsChecks(G5, "a TCP idle timeout")...)
	cs = append(cs,
		Check{ID: G4, Title: "after a UDP flow's idle release its public endpoint is held from that destination for 65 s: a new flow there meanwhile takes another one",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				inside, d := ep(backend(0), 5000), server(0, 53)
				o := s.Out(0, udp, inside, d, 0)
				p.G.Expect(o).To(BeForwarded())
				idle := p.Profile().Gateway.UDPIdle
				for i, at := range []time.Duration{idle, idle + 30*sec, idle + p.Profile().Gateway.UDPHoldDown - p.Epsilon()} {
					n := s.Out(at, udp, ep(backend(0), uint16(6000+i)), d, 0)
					p.G.Expect(n).To(BeForwarded())
					p.G.Expect([]Outcome{o, n}).To(UseDistinctSNATPorts(), "within the hold-down")
				}
			}},
		Check{ID: G5, Title: "expiry is silent: nothing is sent when a flow idles out",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				o := s.Out(0, tcp, ep(backend(0), 4000), server(0, 443), syn)
				p.G.Expect(s.Reply(time.Millisecond, o, syn|ack)).To(BeForwarded())
				p.G.Expect(s.Wait(10 * minute)).To(BeEmpty())
			}},
	)
	return cs
}

func natgwResetChecks() []Check {
	oneRST := func(o Outcome) bool { return len(o.Emitted) == 1 }
	return []Check{
		{ID: reference.G6, Title: "a TCP packet from inside with no flow (not a SYN) is answered with one RST toward its sender",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				for i, f := range []reference.TCPFlags{ack, ack | psh, fin | ack, syn | ack} {
					o := s.Out(time.Duration(i)*sec, tcp, ep(backend(0), uint16(4000+i)), server(0, 443), f)
					p.G.Expect(o).To(BeAnsweredWithRST(), "flags %v", f)
					p.G.Expect(oneRST(o)).To(BeTrue(), "a RST toward the sender only: %v", o)
				}
			}},
		{ID: reference.G6, Title: "a TCP packet from outside to a public IP with no flow is answered with one RST toward its sender; a RST is not answered",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				o := s.In(0, tcp, server(0, 443), ep(frontend(0), 40000), ack)
				p.G.Expect(o).To(BeAnsweredWithRST())
				p.G.Expect(oneRST(o)).To(BeTrue(), "a RST toward the sender only: %v", o)
				p.G.Expect(s.In(sec, tcp, server(0, 443), ep(frontend(0), 40000), rst)).To(BeDropped())
			}},
		{ID: reference.G6, Title: "a late packet of a flow that idled out is answered with a RST, from either side",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				inside := ep(backend(0), 4000)
				o := s.Out(0, tcp, inside, server(0, 443), syn)
				p.G.Expect(s.Reply(time.Millisecond, o, syn|ack)).To(BeForwarded())
				p.G.Expect(s.Reply(5*minute, o, ack)).To(BeAnsweredWithRST())
				p.G.Expect(s.Out(5*minute, tcp, inside, server(0, 443), ack)).To(BeAnsweredWithRST())
			}},
	}
}

func natgwInboundChecks() []Check {
	return []Check{
		{ID: reference.G7, Title: "replies of a live flow are translated back; UDP from another port or IP of the destination, and unsolicited UDP, are dropped",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				inside := ep(backend(0), 5000)
				o := s.Out(0, udp, inside, server(0, 53), 0)
				p.G.Expect(o).To(BeForwarded())
				p.G.Expect(s.Reply(sec, o, 0)).To(BeForwardedTo(inside))
				p.G.Expect(s.In(sec, udp, server(0, 54), o.SNAT(), 0)).To(BeDropped())
				p.G.Expect(s.In(sec, udp, server(1, 53), o.SNAT(), 0)).To(BeDropped())
				p.G.Expect(s.In(sec, udp, server(0, 53), ep(frontend(0), 40000), 0)).To(BeDropped())
				t := s.Out(2*sec, tcp, ep(backend(0), 4000), server(0, 443), syn)
				p.G.Expect(s.Reply(3*sec, t, syn|ack)).To(BeForwardedTo(ep(backend(0), 4000)))
			}},
		{ID: reference.G8, Title: "ICMP is dropped both ways", Needs: CapICMP,
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				icmp := reference.Tuple{Proto: reference.ICMP, Src: ep(backend(0), 7), Dst: server(0, 0)}
				p.G.Expect(s.Send(reference.Packet{Time: Origin, Dir: out, Tuple: icmp})).To(BeDropped())
				back := reference.Tuple{Proto: reference.ICMP, Src: server(0, 0), Dst: ep(frontend(0), 7)}
				p.G.Expect(s.Send(reference.Packet{Time: Origin, Dir: in, Tuple: back})).To(BeDropped())
			}},
		icmpErrorChecks(reference.G8),
		{ID: reference.G8, Title: "IP fragments are dropped, even of a live flow", Needs: CapFragments,
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				o := s.Out(0, udp, ep(backend(0), 5000), server(0, 53), 0)
				p.G.Expect(o).To(BeForwarded())
				fr := reference.Packet{Time: Origin.Add(sec), Dir: out, Tuple: o.Sent.Tuple, Fragment: true}
				p.G.Expect(s.Send(fr)).To(BeDropped())
			}},
	}
}
