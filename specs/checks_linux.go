package specs

import (
	"net/netip"
	"time"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	"github.com/natcheck/natcheck/reference"
)

// LinuxChecks returns every check of the linux profile (L1–L11), in
// SEMANTICS.md order. Timer checks read the numbers of the
// implementation's profile (its conntrack sysctls). Where the kernel
// chooses at random (L2, L4), they assert the properties SEMANTICS.md
// states: ports in the instance's ranges, the source port kept when it
// can be, never a refusal below half occupancy, always one at full.
func LinuxChecks() []Check {
	var cs []Check
	for _, part := range [][]Check{
		linuxInventoryChecks(), linuxPortChecks(), linuxTimerChecks(), linuxInboundChecks(),
		linuxPickupChecks(), linuxProtocolChecks(), linuxInvalidChecks(),
	} {
		cs = append(cs, part...)
	}
	return cs
}

func linuxInventoryChecks() []Check {
	return []Check{
		{ID: reference.L1, Title: "each instance's flows leave from its own rule's ranges: with two instances of 8 ports, 8 TCP flows of each to one destination lie in its ranges, and a 9th is refused",
			Run: func(p *Probe) {
				s := p.Open(config(1, 2, 8))
				plan := s.Plan()
				for i := range 2 {
					burst := s.Fill(0, tcp, backend(i), 20000, 9, server(0, 443))
					p.G.Expect(burst).To(BeExhaustedAfter(8))
					p.G.Expect(burst[:8]).To(LieInAllocationOf(plan, i))
					p.G.Expect(burst[:8]).To(UseDistinctSNATPorts())
				}
			}},
		{ID: reference.L1, Title: "TCP and UDP are apart: with an 8-port instance's TCP ports all taken toward one destination, 8 UDP flows toward it still map, in the same ranges",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 8))
				plan := s.Plan()
				p.G.Expect(s.Fill(0, tcp, backend(0), 20000, 9, server(0, 53))).To(BeExhaustedAfter(8))
				udps := s.Fill(sec, udp, backend(0), 20000, 8, server(0, 53))
				p.G.Expect(udps).To(LieInAllocationOf(plan, 0))
				p.G.Expect(udps).To(UseDistinctSNATPorts())
			}},
	}
}

// snatPort is the SNAT port of o.
func snatPort(o Outcome) uint16 { return o.SNAT().Port() }

func linuxPortChecks() []Check {
	return []Check{
		{ID: reference.L2, Title: "a source port inside the instance's range is kept when the translated tuple is unique (TCP and UDP)",
			Run: func(p *Probe) {
				s := p.Open(config(1, 2, 8))
				r := s.Plan().Instances[0].Ranges[0]
				for i, proto := range []reference.Proto{tcp, udp} {
					port := r.First + 3 + uint16(i)
					o := s.Out(0, proto, ep(backend(0), port), server(0, 443), syn)
					p.G.Expect(o.SNAT()).To(Equal(ep(r.IP, port)), "source port %d kept", port)
				}
			}},
		{ID: reference.L2, Title: "a source port outside the range is translated to a port inside the instance's range",
			Run: func(p *Probe) {
				s := p.Open(config(1, 2, 8))
				plan := s.Plan()
				for i, port := range []uint16{40000, 1, 65535} {
					o := s.Out(0, tcp, ep(backend(1), port), server(i, 443), syn)
					p.G.Expect(o).To(LieInAllocationOf(plan, 1))
				}
			}},
		{ID: reference.L2, Title: "a source port in range that a flow already uses toward the same destination is not kept: another port of the range",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 64))
				plan := s.Plan()
				d := server(0, 443)
				a := s.Out(0, tcp, ep(backend(0), 40000), d, syn)
				p.G.Expect(a).To(LieInAllocationOf(plan, 0))
				b := s.Out(0, tcp, ep(backend(0), snatPort(a)), d, syn)
				p.G.Expect(b).To(LieInAllocationOf(plan, 0))
				p.G.Expect([]Outcome{a, b}).To(UseDistinctSNATPorts())
			}},
	}
}

func linuxReuseChecks() []Check {
	return []Check{
		{ID: reference.L3, Title: "uniqueness is per 5-tuple: 8 ports carry 8 UDP flows toward each of two ports of one destination IP (16 flows)",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 8))
				plan := s.Plan()
				a := s.Fill(0, udp, backend(0), 20000, 8, server(0, 53))
				b := s.Fill(0, udp, backend(0), 21000, 8, server(0, 54))
				p.G.Expect(append(a, b...)).To(LieInAllocationOf(plan, 0))
				p.G.Expect(a).To(UseDistinctSNATPorts())
				p.G.Expect(b).To(UseDistinctSNATPorts())
			}},
		{ID: reference.L3, Title: "one inside endpoint's flows to two ports of one destination IP may share a SNAT port: with the source port kept, both use it",
			Run: func(p *Probe) {
				s := p.Open(config(1, 2, 8))
				r := s.Plan().Instances[0].Ranges[0]
				inside := ep(backend(0), r.First+2)
				for _, proto := range []reference.Proto{tcp, udp} {
					a := s.Out(0, proto, inside, server(0, 53), syn)
					b := s.Out(0, proto, inside, server(0, 54), syn)
					p.G.Expect([]Outcome{a, b}).To(ShareOneSNATPort())
				}
			}},
	}
}

func linuxExhaustionChecks() []Check {
	return []Check{
		{ID: reference.L4, Title: "a full instance refuses: 8 ports, 8 flows toward one destination, the 9th is dropped and the first ones go on",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 8))
				burst := s.Fill(0, tcp, backend(0), 20000, 9, server(0, 443))
				p.G.Expect(burst).To(BeExhaustedAfter(8))
				p.G.Expect(s.Reply(sec, burst[0], syn|ack)).To(BeForwardedTo(burst[0].Sent.Tuple.Src))
			}},
		{ID: reference.L4, Title: "a 1,024-port instance never refuses below half occupancy toward one destination, and refuses once all 1,024 are taken (new flows are sent until they are; the occupancy at the first refusal is noted)",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				plan := s.Plan()
				n := plan.Instances[0].Ports
				// A refused flow leaves its port free for a later one, so
				// flows are sent until n are forwarded (the kernel's
				// search from a random offset finds the last free ports
				// within a few tries each), at most 2n.
				var ok []Outcome
				first, port := -1, 20000
				for ; len(ok) < n && port < 20000+2*n; port++ {
					o := s.Out(0, tcp, ep(backend(0), uint16(port)), server(0, 443), syn)
					if o.Forwarded {
						ok = append(ok, o)
					} else if first < 0 {
						first = len(ok)
					}
				}
				p.G.Expect(ok).To(HaveLen(n), "all %d ports taken within %d flows", n, 2*n)
				p.G.Expect(ok).To(LieInAllocationOf(plan, 0))
				p.G.Expect(ok).To(UseDistinctSNATPorts())
				if first >= 0 {
					p.G.Expect(first).To(BeNumerically(">=", n/2), "first refusal with %d of %d ports taken", first, n)
					p.Notef(0, "first refusal with %d of %d ports taken: occupancy %.1f %%; %d flows sent to take all %d", first, n, 100*float64(first)/float64(n), port-20000, n)
				} else {
					p.Notef(0, "no refusal before all %d ports were taken", n)
				}
				p.G.Expect(s.Out(0, tcp, ep(backend(0), uint16(port)), server(0, 443), syn)).To(BeDropped(), "a new flow with all %d ports taken", n)
			}},
	}
}

// pickedUp is the timeout of an ESTABLISHED flow that has seen no reply
// (a mid-stream pick-up): nf_conntrack_tcp_packet caps the established
// timeout at the unacknowledged one.
func pickedUp(c reference.Conntrack) time.Duration { return min(c.Established, c.Unacknowledged) }

// handshake is a flow's opening: SYN, SYN-ACK, ACK, 1 ms apart.
var handshake = []tp{{0, out, syn}, {time.Millisecond, in, syn | ack}, {2 * time.Millisecond, out, ack}}

func then(a []tp, more ...tp) []tp { return append(append([]tp(nil), a...), more...) }

func dropped() types.GomegaMatcher { return BeDropped() }

func linuxTimerChecks() []Check {
	ct := func(f func(reference.Conntrack) time.Duration, plus time.Duration) func(reference.Profile) time.Duration {
		return func(pr reference.Profile) time.Duration { return plus + f(pr.Conntrack) }
	}
	const ms = time.Millisecond
	L5, L6, L7 := reference.L5, reference.L6, reference.L7
	cs := append(linuxReuseChecks(), linuxExhaustionChecks()...)
	for _, l := range []life{
		{id: L5, title: "a SYN with no answer (SYN_SENT) is released nf_conntrack_tcp_timeout_syn_sent after it", proto: tcp,
			packets: []tp{{0, out, syn}}, release: ct(func(c reference.Conntrack) time.Duration { return c.SynSent }, 0)},
		{id: L5, title: "a SYN answered by a SYN-ACK (SYN_RECV) is released nf_conntrack_tcp_timeout_syn_recv after the answer", proto: tcp,
			packets: []tp{{0, out, syn}, {sec, in, syn | ack}}, release: ct(func(c reference.Conntrack) time.Duration { return c.SynRecv }, sec)},
		{id: L5, title: "an established flow (SYN, SYN-ACK, ACK) is released nf_conntrack_tcp_timeout_established after its last packet", proto: tcp,
			packets: handshake, release: ct(func(c reference.Conntrack) time.Duration { return c.Established }, 2*ms)},
		{id: L5, title: "every packet of an established flow restarts its timer: an ACK at half the established timeout moves the release to that time + established", proto: tcp,
			packetsOf: func(pr reference.Profile) []tp {
				return then(handshake, tp{pr.Conntrack.Established / 2, out, ack | psh})
			},
			release: func(pr reference.Profile) time.Duration { return pr.Conntrack.Established/2 + pr.Conntrack.Established }},
		{id: L5, title: "a FIN from inside (FIN_WAIT) releases the flow nf_conntrack_tcp_timeout_fin_wait after it", proto: tcp,
			packets: then(handshake, tp{10 * sec, out, fin | ack}), release: ct(func(c reference.Conntrack) time.Duration { return c.FinWait }, 10*sec)},
		{id: L5, title: "unlike B10, a packet after the FIN restarts the timer of the state it leaves: the answering ACK (CLOSE_WAIT) at 50 s releases at 50 s + close_wait", proto: tcp,
			packets: then(handshake, tp{10 * sec, out, fin | ack}, tp{50 * sec, in, ack}), release: ct(func(c reference.Conntrack) time.Duration { return c.CloseWait }, 50*sec)},
		{id: L5, title: "a FIN both ways (LAST_ACK) releases the flow nf_conntrack_tcp_timeout_last_ack after the second FIN", proto: tcp,
			packets: then(handshake, tp{10 * sec, out, fin | ack}, tp{20 * sec, in, fin | ack}), release: ct(func(c reference.Conntrack) time.Duration { return c.LastAck }, 20*sec)},
		{id: L5, title: "the last ACK (TIME_WAIT) releases the flow nf_conntrack_tcp_timeout_time_wait after it", proto: tcp,
			packets: then(handshake, tp{10 * sec, out, fin | ack}, tp{20 * sec, in, fin | ack}, tp{21 * sec, out, ack}), release: ct(func(c reference.Conntrack) time.Duration { return c.TimeWait }, 21*sec)},
		{id: L5, title: "a flow picked up mid-stream (a pure ACK under tcp_loose, no reply yet) is released nf_conntrack_tcp_timeout_unacknowledged after it (or the established timeout, when shorter), not the established timeout", proto: tcp,
			packets: []tp{{0, out, ack}}, release: func(pr reference.Profile) time.Duration { return pickedUp(pr.Conntrack) }},
		{id: L5, title: "a picked-up flow's later packets, still unanswered, restart that shorter timer: an ACK at a third of it releases a third later", proto: tcp,
			packetsOf: func(pr reference.Profile) []tp {
				return []tp{{0, out, ack}, {pickedUp(pr.Conntrack) / 3, out, ack | psh}}
			},
			release: func(pr reference.Profile) time.Duration { return pickedUp(pr.Conntrack)/3 + pickedUp(pr.Conntrack) }},
		{id: L5, title: "a retransmitted SYN with no answer does not restart SYN_SENT's timer (nf_conntrack_proto_tcp.c): released syn_sent after the first SYN", proto: tcp,
			packetsOf: func(pr reference.Profile) []tp {
				return []tp{{0, out, syn}, {pr.Conntrack.SynSent / 4, out, syn}}
			},
			release: ct(func(c reference.Conntrack) time.Duration { return c.SynSent }, 0)},
		{id: L6, title: "a RST on a flow that has seen a reply moves it to CLOSE: still translated until nf_conntrack_tcp_timeout_close after the RST", proto: tcp,
			packets: then(handshake, tp{5 * sec, out, rst}), release: ct(func(c reference.Conntrack) time.Duration { return c.Close }, 5*sec)},
		{id: L6, title: "a RST from outside on an answered flow: CLOSE too", proto: tcp,
			packets: then(handshake, tp{5 * sec, in, rst | ack}), release: ct(func(c reference.Conntrack) time.Duration { return c.Close }, 5*sec)},
		{id: L7, title: "a UDP flow with no reply is released nf_conntrack_udp_timeout after its last packet", proto: udp,
			packets: []tp{{0, out, 0}, {20 * sec, out, 0}}, release: ct(func(c reference.Conntrack) time.Duration { return c.UDP }, 20*sec)},
		{id: L7, title: "a reply alone does not make a UDP stream: released nf_conntrack_udp_timeout after the reply", proto: udp,
			packets: []tp{{0, out, 0}, {5 * sec, in, 0}}, release: ct(func(c reference.Conntrack) time.Duration { return c.UDP }, 5*sec)},
		{id: L7, title: "replied, then a packet within the kernel's 2 s of the start: still nf_conntrack_udp_timeout", proto: udp,
			packetsOf: func(pr reference.Profile) []tp {
				a := pr.Conntrack.StreamAfter
				return []tp{{0, out, 0}, {a / 2, in, 0}, {a * 3 / 4, out, 0}}
			},
			release: func(pr reference.Profile) time.Duration { return pr.Conntrack.StreamAfter*3/4 + pr.Conntrack.UDP }},
		{id: L7, title: "replied, then a packet more than the kernel's 2 s after the start: nf_conntrack_udp_timeout_stream", proto: udp,
			packetsOf: func(pr reference.Profile) []tp {
				a := pr.Conntrack.StreamAfter
				return []tp{{0, out, 0}, {a / 2, in, 0}, {a * 3 / 2, out, 0}}
			},
			release: func(pr reference.Profile) time.Duration { return pr.Conntrack.StreamAfter*3/2 + pr.Conntrack.UDPStream }},
	} {
		l.gone = dropped
		cs = append(cs, l.check())
	}
	cs = append(cs,
		Check{ID: L6, Title: "a RST on a flow that never saw a reply frees it at once: a reply just before the RST comes back, one at the RST's time does not, and the port is free for a new flow at once",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 8))
				burst := s.Fill(0, tcp, backend(0), 20000, 8, server(0, 443))
				p.G.Expect(burst).To(HaveEach(BeForwarded()))
				p.G.Expect(s.Reply(5*sec-p.Epsilon(), burst[3], ack)).To(BeForwardedTo(burst[3].Sent.Tuple.Src))
				s = p.Open(config(1, 1, 8))
				burst = s.Fill(0, tcp, backend(0), 20000, 8, server(0, 443))
				p.G.Expect(s.Out(5*sec, tcp, burst[3].Sent.Tuple.Src, server(0, 443), rst)).To(BeForwarded())
				p.G.Expect(s.Reply(5*sec, burst[3], ack)).To(BeDropped())
				again := s.Out(5*sec, tcp, ep(backend(0), 30000), server(0, 443), syn)
				p.G.Expect([]Outcome{burst[3], again}).To(ShareOneSNATPort())
			}},
		Check{ID: L6, Title: "a new SYN on a flow in TIME_WAIT reopens it at once: forwarded, and its answer comes back",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				inside, d := ep(backend(0), 4000), server(0, 443)
				play(p, s, tcp, inside, d, then(handshake, tp{10 * sec, out, fin | ack}, tp{20 * sec, in, fin | ack}, tp{21 * sec, out, ack}), nil)
				again := s.Out(30*sec, tcp, inside, d, syn)
				p.G.Expect(again).To(BeForwarded())
				p.G.Expect(s.Reply(30*sec+time.Millisecond, again, syn|ack)).To(BeForwardedTo(inside))
			}},
	)
	return cs
}

func linuxInboundChecks() []Check {
	return []Check{
		{ID: reference.L8, Title: "inbound is translated back only on the exact reverse 5-tuple: another source port or IP, or another SNAT port, is dropped (TCP and UDP)",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				for i, proto := range []reference.Proto{tcp, udp} {
					at := time.Duration(i) * 10 * sec
					inside := ep(backend(0), 4000)
					o := s.Out(at, proto, inside, server(0, 53), syn)
					p.G.Expect(o).To(BeForwarded())
					snat := o.SNAT()
					for _, tc := range []struct{ src, dst netip.AddrPort }{
						{server(0, 54), snat}, {server(1, 53), snat}, {server(0, 53), ep(snat.Addr(), snat.Port()^1)},
					} {
						p.G.Expect(s.In(at+sec, proto, tc.src, tc.dst, syn|ack)).To(BeDropped(), "%v from %v to %v", proto, tc.src, tc.dst)
					}
					p.G.Expect(s.Reply(at+2*sec, o, syn|ack)).To(BeForwardedTo(inside))
				}
			}},
	}
}

func linuxPickupChecks() []Check {
	return []Check{
		{ID: reference.L9, Title: "with nf_conntrack_tcp_loose=1 a pure ACK with no flow opens one (its answer comes back); with 0 it is dropped",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				o := s.Out(0, tcp, ep(backend(0), 4000), server(0, 443), ack|psh)
				if !p.Profile().Conntrack.Loose {
					p.G.Expect(o).To(BeDropped())
					return
				}
				p.G.Expect(o).To(BeForwarded())
				p.G.Expect(s.Reply(sec, o, ack)).To(BeForwardedTo(ep(backend(0), 4000)))
			}},
		{ID: reference.L9, Title: "a FIN, a RST or a SYN-ACK with no flow is invalid and dropped",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				for i, f := range []reference.TCPFlags{fin | ack, rst, rst | ack, syn | ack} {
					p.G.Expect(s.Out(0, tcp, ep(backend(0), uint16(4000+i)), server(0, 443), f)).To(BeDropped(), "flags %v", f)
				}
			}},
		{ID: reference.L9, Title: "strict (nf_conntrack_tcp_loose=0): only a SYN opens a flow; the handshake then goes through", Needs: CapStrict,
			Run: func(p *Probe) {
				c := config(1, 1, 0)
				c.Strict = true
				s := p.Open(c)
				inside, d := ep(backend(0), 4000), server(0, 443)
				p.G.Expect(s.Out(0, tcp, inside, d, ack)).To(BeDropped())
				o := s.Out(0, tcp, inside, d, syn)
				p.G.Expect(o).To(BeForwarded())
				p.G.Expect(s.Reply(time.Millisecond, o, syn|ack)).To(BeForwardedTo(inside))
				p.G.Expect(s.Out(2*time.Millisecond, tcp, inside, d, ack)).To(BeForwarded())
			}},
	}
}

func linuxProtocolChecks() []Check {
	return []Check{
		{ID: reference.L10, Title: "an ICMP echo is translated from the instance's frontend IP, its identifier as the port, and the reply comes back to the inside identifier", Needs: CapICMP,
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				inside := ep(backend(0), 77)
				o := s.Send(reference.Packet{Time: Origin, Dir: out, Tuple: reference.Tuple{Proto: reference.ICMP, Src: inside, Dst: server(0, 0)}})
				p.G.Expect(o).To(BeForwarded())
				p.G.Expect(o.SNAT().Addr()).To(Equal(frontend(0)))
				back := s.Send(reference.Packet{Time: Origin.Add(sec), Dir: in, Tuple: reference.Tuple{Proto: reference.ICMP, Src: server(0, 0), Dst: o.SNAT()}})
				p.G.Expect(back).To(BeForwardedTo(inside))
			}},
		{ID: reference.L10, Title: "an ICMP echo mapping is released nf_conntrack_icmp_timeout after its last packet", Needs: CapICMP,
			Run: func(p *Probe) {
				T := p.Profile().Conntrack.ICMP
				for _, at := range []time.Duration{T - p.Epsilon(), T} {
					s := p.Open(config(1, 1, 0))
					inside := ep(backend(0), 77)
					o := s.Send(reference.Packet{Time: Origin, Dir: out, Tuple: reference.Tuple{Proto: reference.ICMP, Src: inside, Dst: server(0, 0)}})
					back := s.Send(reference.Packet{Time: Origin.Add(at), Dir: in, Tuple: reference.Tuple{Proto: reference.ICMP, Src: server(0, 0), Dst: o.SNAT()}})
					if at < T {
						p.G.Expect(back).To(BeForwardedTo(inside))
					} else {
						p.G.Expect(back).To(BeDropped())
					}
				}
			}},
		{ID: reference.L10, Title: "IP fragments of a tracked flow are translated with it, both ways", Needs: CapFragments,
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				inside := ep(backend(0), 5000)
				o := s.Out(0, udp, inside, server(0, 53), 0)
				p.G.Expect(o).To(BeForwarded())
				fr := s.Send(reference.Packet{Time: Origin.Add(sec), Dir: out, Tuple: o.Sent.Tuple, Fragment: true})
				p.G.Expect([]Outcome{o, fr}).To(ShareOneSNATPort())
				back := s.Send(reference.Packet{Time: Origin.Add(sec), Dir: in, Tuple: reference.Tuple{Proto: udp, Src: server(0, 53), Dst: o.SNAT()}, Fragment: true})
				p.G.Expect(back).To(BeForwardedTo(inside))
			}},
		icmpErrorChecks(reference.L10),
	}
}

func linuxInvalidChecks() []Check {
	return []Check{
		{ID: reference.L11, Title: "invalid TCP packets of a live flow (FIN without ACK, SYN with FIN, no flags, a SYN-ACK from the client) are dropped, never sent on with the inside address",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				inside, d := ep(backend(0), 4000), server(0, 443)
				o := s.Out(0, tcp, inside, d, syn)
				p.G.Expect(s.Reply(time.Millisecond, o, syn|ack)).To(BeForwarded())
				p.G.Expect(s.Out(2*time.Millisecond, tcp, inside, d, ack)).To(BeForwarded())
				for i, f := range []reference.TCPFlags{fin, syn | fin, 0, syn | ack} {
					got := s.Out(sec+time.Duration(i)*time.Millisecond, tcp, inside, d, f)
					p.G.Expect(got).To(BeDropped(), "flags %v", f)
				}
			}},
		{ID: reference.L11, Title: "a RST from inside with no flow, and a FIN-ACK after the flow's release, are dropped",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				p.G.Expect(s.Out(0, tcp, ep(backend(0), 4001), server(0, 443), rst|ack)).To(BeDropped())
				o := s.Out(0, tcp, ep(backend(0), 4000), server(0, 443), syn)
				p.G.Expect(o).To(BeForwarded())
				late := p.Profile().Conntrack.SynSent + sec
				p.G.Expect(s.Out(late, tcp, ep(backend(0), 4000), server(0, 443), fin|ack)).To(BeDropped())
			}},
		{ID: reference.L11, Title: "no packet leaves with an inside address: strict mode drops mid-stream packets instead of sending them on", Needs: CapStrict,
			Run: func(p *Probe) {
				c := config(1, 1, 0)
				c.Strict = true
				s := p.Open(c)
				for i, f := range []reference.TCPFlags{ack, ack | psh, fin | ack} {
					p.G.Expect(s.Out(0, tcp, ep(backend(0), uint16(4000+i)), server(0, 443), f)).To(BeDropped(), "flags %v", f)
				}
			}},
	}
}
