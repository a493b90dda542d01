package specs

import (
	"fmt"
	"net/netip"
	"time"

	. "github.com/onsi/gomega"

	"github.com/natcheck/natcheck/reference"
)

// Short names for the vocabulary the checks are written in.
const (
	tcp    = reference.TCP
	udp    = reference.UDP
	syn    = reference.SYN
	ack    = reference.ACK
	fin    = reference.FIN
	rst    = reference.RST
	psh    = reference.PSH
	out    = reference.Outbound
	in     = reference.Inbound
	sec    = time.Second
	minute = time.Minute
)

// frontend is frontend IP #i+1: 203.0.113.1, …
func frontend(i int) netip.Addr { return netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}) }

// backend is backend instance i's inside address: 10.0.0.1, …
func backend(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(i%250 + 1)})
}

// server is destination endpoint i: 198.51.100.(i+1):port.
func server(i int, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}), port)
}

func ep(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// config is k frontend IPs and a pool of n backends, each with an inside
// address, and the outbound rule's ports per instance (0: default table).
func config(k, n, perInstance int) reference.Config {
	c := reference.Config{PortsPerInstance: perInstance}
	for i := range k {
		c.Frontends = append(c.Frontends, frontend(i))
	}
	for i := range n {
		c.Backends = append(c.Backends, backend(i))
	}
	return c
}

// Checks returns every check of the azure-lb profile, in SEMANTICS.md
// order: the one list that the Ginkgo suite and Verify both iterate.
func Checks() []Check {
	var cs []Check
	for _, part := range [][]Check{
		allocationChecks(), reuseChecks(), inboundChecks(), exhaustionChecks(),
		timerChecks(), expiryChecks(), protocolChecks(), poolChecks(), conventionChecks(),
	} {
		cs = append(cs, part...)
	}
	return cs
}

// ChecksFor returns the checks of the profile called name: Checks for
// azure-lb, LinuxChecks, NATGWChecks or RFCChecks.
func ChecksFor(name string) ([]Check, error) {
	switch name {
	case reference.NameAzureLB, "":
		return Checks(), nil
	case reference.NameLinux:
		return LinuxChecks(), nil
	case reference.NameAzureNATGW:
		return NATGWChecks(), nil
	case reference.NameRFC:
		return RFCChecks(), nil
	}
	return nil, fmt.Errorf("checks of profile %q: want azure-lb, azure-natgw, rfc or linux", name)
}

// expectPorts asserts that instance inst of s's plan has exactly n SNAT
// ports, seen both in the plan and in traffic: n TCP flows to one
// destination are forwarded from distinct endpoints of its allocation and
// the (n+1)-th fails. The flows come from the instance's own port numbers
// as source ports, then from one outside them: the count does not then
// hang on how the NAT picks among free ports (a Linux SNAT keeps a source
// port in its range, L2, and may give up probing before its range is
// full, L4), only on how many it has.
func expectPorts(p *Probe, s *Session, at time.Duration, inst, n int) {
	plan := s.Plan()
	p.G.Expect(plan.Instances).To(HaveLen(max(len(plan.Instances), inst+1)), "the plan has instance %d", inst)
	p.G.Expect(plan.Instances[inst].Ports).To(Equal(n), "instance %d's allocation in the plan", inst)
	burst := s.FillFrom(at, tcp, backend(inst), ownPorts(plan, inst, n+1), server(0, 443))
	p.G.Expect(burst).To(BeExhaustedAfter(n))
	p.G.Expect(burst[:n]).To(LieInAllocationOf(plan, inst))
	p.G.Expect(burst[:n]).To(UseDistinctSNATPorts())
}

// ownPorts returns n distinct port numbers: instance inst's SNAT ports in
// plan order, then ports outside its ranges.
func ownPorts(plan reference.Plan, inst, n int) []uint16 {
	var out []uint16
	seen := map[uint16]bool{}
	for _, r := range ranges(plan, inst) {
		for port := int(r.First); port <= int(r.Last) && len(out) < n; port++ {
			if !seen[uint16(port)] {
				seen[uint16(port)] = true
				out = append(out, uint16(port))
			}
		}
	}
	for port := 65535; len(out) < n && port > 0; port-- {
		if !seen[uint16(port)] {
			seen[uint16(port)] = true
			out = append(out, uint16(port))
		}
	}
	return out
}

func allocationChecks() []Check {
	cs := []Check{
		{ID: reference.B1, Title: "a frontend IP offers 64,000 SNAT ports: one instance with 64,000 ports per instance opens 64,000 TCP flows to one destination and the 64,001st fails",
			Needs: CapLargeAllocation,
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 64000))
				expectPorts(p, s, 0, 0, 64000)
			}},
		{ID: reference.B1, Title: "TCP and UDP are separate inventories with the same layout: with every TCP port taken toward one destination, UDP toward it still maps, within the same allocation",
			Run: func(p *Probe) {
				s := p.Open(config(1, 2, 8))
				plan := s.Plan()
				p.G.Expect(s.Fill(0, tcp, backend(0), 1000, 9, server(0, 53))).To(BeExhaustedAfter(8))
				udps := s.Fill(sec, udp, backend(0), 2000, 9, server(0, 53))
				p.G.Expect(udps).To(BeExhaustedAfter(8))
				p.G.Expect(udps[:8]).To(LieInAllocationOf(plan, 0))
			}},
		{ID: reference.B1, Title: "two frontend IPs offer 64,000 ports each: two instances of 64,000 ports are accepted, each IP fully allocated",
			Run: func(p *Probe) {
				s := p.Open(config(2, 2, 64000))
				plan := s.Plan()
				for _, f := range plan.Frontends {
					p.G.Expect(f.Allocated).To(Equal(64000), "frontend %v allocated", f.IP)
				}
				for i := range 2 {
					p.G.Expect(plan.Instances[i].Ports).To(Equal(64000))
				}
			}},
	}
	for _, n := range []int{12, 1001, 63996, 20} {
		cs = append(cs, Check{ID: reference.B2, Title: fmt.Sprintf("ports per instance %d, not a multiple of 8, is rejected", n),
			Run: func(p *Probe) {
				_, err := p.TryOpen(config(1, 1, n))
				p.G.Expect(err).To(BeRejectedConfig(""))
			}})
	}
	for _, n := range []int{8, 16, 6400} {
		cs = append(cs, Check{ID: reference.B2, Title: fmt.Sprintf("ports per instance %d is handed out exactly: %d flows to one destination, the %d-th fails", n, n, n+1),
			Run: func(p *Probe) { expectPorts(p, p.Open(config(1, 1, n)), 0, 0, n) }})
	}
	cs = append(cs, Check{ID: reference.B2, Title: "every instance's ranges start and end on 8-port block edges (7 instances × 296 ports, default table for 3)",
		Run: func(p *Probe) {
			for _, c := range []reference.Config{config(1, 7, 296), config(2, 3, 0)} {
				plan := p.Open(c).Plan()
				base := map[netip.Addr]uint16{}
				for _, in := range plan.Instances {
					for _, r := range in.Ranges {
						if b, ok := base[r.IP]; !ok || r.First < b {
							base[r.IP] = r.First
						}
					}
				}
				for _, in := range plan.Instances {
					for _, r := range in.Ranges {
						p.G.Expect((int(r.First)-int(base[r.IP]))%8).To(BeZero(), "instance %d range %v-%v starts off a block edge", in.Index, r.First, r.Last)
						p.G.Expect(r.Len()%8).To(BeZero(), "instance %d range %v-%v is not whole blocks", in.Index, r.First, r.Last)
					}
				}
			}
		}})

	// B3: every tier edge of the default table, on one IP, probed on the
	// first and the last instance; then several IPs and the cap.
	for _, tc := range []struct{ pool, ips, want int }{
		{1, 1, 1024}, {50, 1, 1024}, {51, 1, 512}, {100, 1, 512}, {101, 1, 256}, {200, 1, 256},
		{201, 1, 128}, {400, 1, 128}, {401, 1, 64}, {800, 1, 64}, {801, 1, 32}, {1000, 1, 32},
		{1, 2, 1024}, {51, 2, 1024}, {101, 3, 768}, {1000, 4, 128},
	} {
		cs = append(cs, Check{ID: reference.B3, Title: fmt.Sprintf("a pool of %d on %d frontend IP(s) gives each instance %d ports (first and last instance)", tc.pool, tc.ips, tc.want),
			Run: func(p *Probe) {
				s := p.Open(config(tc.ips, tc.pool, 0))
				expectPorts(p, s, 0, 0, tc.want)
				if tc.pool > 1 {
					expectPorts(p, s, 0, tc.pool-1, tc.want)
				}
			}})
	}
	cs = append(cs, Check{ID: reference.B3, Title: "a pool of 1,001 under the default table is rejected",
		Run: func(p *Probe) {
			_, err := p.TryOpen(config(1, 1001, 0))
			p.G.Expect(err).To(BeRejectedConfig(""))
		}})

	cs = append(cs,
		Check{ID: reference.B4, Title: "ports per instance 8 (the minimum) gives exactly 8 ports",
			Run: func(p *Probe) { expectPorts(p, p.Open(config(1, 2, 8)), 0, 1, 8) }},
		Check{ID: reference.B4, Title: "ports per instance 64,000 (the maximum) on one IP gives exactly 64,000 ports", Needs: CapLargeAllocation,
			Run: func(p *Probe) { expectPorts(p, p.Open(config(1, 1, 64000)), 0, 0, 64000) }},
		Check{ID: reference.B4, Title: "10 instances × 6,400 fill one IP exactly: accepted, the last instance has 6,400 ports",
			Run: func(p *Probe) { expectPorts(p, p.Open(config(1, 10, 6400)), 0, 9, 6400) }},
		Check{ID: reference.B4, Title: "0 ports per instance means the default table",
			Run: func(p *Probe) { expectPorts(p, p.Open(config(1, 3, 0)), 0, 2, 1024) }},
		Check{ID: reference.B4, Title: "8,000 instances × 8 ports on one IP are accepted",
			Run: func(p *Probe) {
				c := config(1, 1, 8)
				c.PoolSize = 8000
				p.G.Expect(p.Open(c).Plan().Frontends[0].Free).To(BeZero())
			}},
	)
	for _, tc := range []struct {
		ips, pool, ports int
	}{{1, 10, 6408}, {1, 1, 64008}, {2, 3, 64000}, {1, 8001, 8}} {
		cs = append(cs, Check{ID: reference.B4, Title: fmt.Sprintf("%d instances × %d ports on %d IP(s) exceed the capacity and are rejected", tc.pool, tc.ports, tc.ips),
			Run: func(p *Probe) {
				c := config(tc.ips, 1, tc.ports)
				c.PoolSize = tc.pool
				_, err := p.TryOpen(c)
				p.G.Expect(err).To(BeRejectedConfig(""))
			}})
	}

	for _, proto := range []reference.Proto{tcp, udp} {
		cs = append(cs, Check{ID: reference.B5, Title: fmt.Sprintf("an instance's ports are its own (%v): with two instances of 8, instance 1's 9th flow fails while instance 2 has 8 free, and their SNAT ports are disjoint", proto),
			Run: func(p *Probe) {
				s := p.Open(config(1, 2, 8))
				plan := s.Plan()
				a := s.Fill(0, proto, backend(0), 1000, 9, server(0, 53))
				p.G.Expect(a).To(BeExhaustedAfter(8))
				p.G.Expect(a[:8]).To(LieInAllocationOf(plan, 0))
				b := s.Fill(sec, proto, backend(1), 1000, 8, server(0, 53))
				p.G.Expect(b).To(LieInAllocationOf(plan, 1))
				p.G.Expect(append(a[:8:8], b...)).To(UseDistinctSNATPorts())
			}})
	}
	return cs
}

func reuseChecks() []Check {
	return []Check{
		{ID: reference.B6, Title: "TCP flows to different destinations share SNAT ports: 8 ports carry 8 flows to each of three destinations (two ports of one IP, another IP)",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 8))
				plan := s.Plan()
				for i, d := range []netip.AddrPort{server(0, 443), server(0, 80), server(1, 443)} {
					burst := s.Fill(0, tcp, backend(0), 1000+100*i, 8, d)
					p.G.Expect(burst).To(LieInAllocationOf(plan, 0))
					p.G.Expect(burst).To(UseDistinctSNATPorts())
				}
			}},
		{ID: reference.B6, Title: "one inside endpoint's flows to three destinations (two ports of one IP, another IP) share one SNAT port",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				// A source port of the instance's own range: a NAT that
				// keeps a free source port (L2) shares it as surely as one
				// that takes the lowest free port (C3); one outside the
				// range would leave the sharing to how the NAT picks.
				inside := ep(backend(0), s.Plan().Instances[0].Ranges[0].First+100)
				var os []Outcome
				for _, d := range []netip.AddrPort{server(0, 443), server(0, 80), server(1, 443)} {
					os = append(os, s.Out(0, tcp, inside, d, syn))
				}
				p.G.Expect(os).To(ShareOneSNATPort())
			}},
		{ID: reference.B6, Title: "N concurrent flows to one destination IP:port use N distinct SNAT ports; with 8 ports the 9th fails",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 8))
				burst := s.Fill(0, tcp, backend(0), 1000, 9, server(0, 443))
				p.G.Expect(burst[:8]).To(UseDistinctSNATPorts())
				p.G.Expect(burst).To(BeExhaustedAfter(8))
			}},
		{ID: reference.B7, Title: "one inside endpoint uses one UDP mapping for every port of a destination IP: its packets to a second port leave from its mapping's SNAT port even after another endpoint mapped toward that port, and replies from both ports come back",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				inside := ep(backend(0), 5000)
				a := s.Out(0, udp, inside, server(0, 53), 0)
				// Another endpoint toward the second port first: under a
				// mapping per destination IP it cannot take a's port (one
				// mapping per destination IP per port); a mapping keyed by
				// the full 5-tuple could, and a's next packet would then
				// need another port.
				other := s.Out(sec, udp, ep(backend(0), 5001), server(0, 123), 0)
				b := s.Out(2*sec, udp, inside, server(0, 123), 0)
				p.G.Expect([]Outcome{a, b}).To(ShareOneSNATPort(), "one mapping for both ports of the destination IP")
				p.G.Expect([]Outcome{a, other}).To(UseDistinctSNATPorts())
				p.G.Expect(s.In(3*sec, udp, server(0, 53), a.SNAT(), 0)).To(BeForwardedTo(inside))
				p.G.Expect(s.In(3*sec, udp, server(0, 123), a.SNAT(), 0)).To(BeForwardedTo(inside))
			}},
		{ID: reference.B7, Title: "a SNAT port carries at most one UDP mapping per destination IP: two inside endpoints toward one IP (other ports) get different SNAT ports",
			Run: func(p *Probe) {
				s := p.Open(config(1, 2, 0))
				a := s.Out(0, udp, ep(backend(0), 5000), server(0, 53), 0)
				b := s.Out(0, udp, ep(backend(0), 5001), server(0, 9999), 0)
				p.G.Expect([]Outcome{a, b}).To(UseDistinctSNATPorts())
			}},
		{ID: reference.B7, Title: "UDP mappings toward different destination IPs share ports: 8 ports carry 8 mappings toward each of two IPs, the 9th toward one fails",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 8))
				plan := s.Plan()
				a := s.Fill(0, udp, backend(0), 5000, 8, server(0, 53))
				b := s.Fill(0, udp, backend(0), 5000, 8, server(1, 53))
				p.G.Expect(a).To(UseDistinctSNATPorts())
				p.G.Expect(b).To(UseDistinctSNATPorts())
				p.G.Expect(append(a, b...)).To(LieInAllocationOf(plan, 0))
				p.G.Expect(append(a, s.Out(0, udp, ep(backend(0), 6000), server(0, 99), 0))).To(BeExhaustedAfter(8))
			}},
	}
}

func inboundChecks() []Check {
	return []Check{
		{ID: reference.B8, Title: "a TCP reply on the exact reverse 5-tuple is translated back to the inside endpoint",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				o := s.Out(0, tcp, ep(backend(0), 1000), server(0, 443), syn)
				p.G.Expect(o).To(BeForwarded())
				p.G.Expect(s.Reply(sec, o, syn|ack)).To(BeForwardedTo(ep(backend(0), 1000)))
			}},
		{ID: reference.B8, Title: "TCP packets from another source port or IP, or to another SNAT port or frontend IP, are dropped",
			Run: func(p *Probe) {
				c := config(2, 1, 0)
				s := p.Open(c)
				o := s.Out(0, tcp, ep(backend(0), 1000), server(0, 443), syn)
				p.G.Expect(o).To(BeForwarded())
				snat := o.SNAT()
				other := frontend(0)
				if snat.Addr() == other {
					other = frontend(1)
				}
				for _, tc := range []struct{ src, dst netip.AddrPort }{
					{server(0, 444), snat}, {server(1, 443), snat},
					{server(0, 443), ep(snat.Addr(), snat.Port()+1)}, {server(0, 443), ep(other, snat.Port())},
				} {
					p.G.Expect(s.In(sec, tcp, tc.src, tc.dst, ack)).To(BeDropped())
				}
			}},
		{ID: reference.B8, Title: "a UDP reply is translated back only from an endpoint the mapping has sent to",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				o := s.Out(0, udp, ep(backend(0), 5000), server(0, 53), 0)
				p.G.Expect(o).To(BeForwarded())
				inside := ep(backend(0), 5000)
				p.G.Expect(s.In(sec, udp, server(0, 53), o.SNAT(), 0)).To(BeForwardedTo(inside))
				p.G.Expect(s.In(sec, udp, server(0, 54), o.SNAT(), 0)).To(BeDropped())
				p.G.Expect(s.In(sec, udp, server(2, 53), o.SNAT(), 0)).To(BeDropped())
				p.G.Expect(s.Out(2*sec, udp, inside, server(0, 54), 0)).To(BeForwarded())
				p.G.Expect(s.In(3*sec, udp, server(0, 54), o.SNAT(), 0)).To(BeForwardedTo(inside))
			}},
		{ID: reference.B8, Title: "an inbound packet to a SNAT port with no flow is dropped",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				plan := s.Plan()
				r := plan.Instances[0].Ranges[0]
				p.G.Expect(s.In(0, tcp, server(0, 443), ep(r.IP, r.First), syn)).To(BeDropped())
				p.G.Expect(s.In(0, udp, server(0, 53), ep(r.IP, r.First), 0)).To(BeDropped())
			}},
	}
}

func exhaustionChecks() []Check {
	return []Check{
		{ID: reference.B9, Title: "the (N+1)-th flow to one destination is dropped; existing flows go on and another destination still works",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 8))
				burst := s.Fill(0, tcp, backend(0), 1000, 9, server(0, 443))
				p.G.Expect(burst).To(BeExhaustedAfter(8))
				// The existing flows go on: their servers' answers come
				// back, and the client's ACK leaves from its port.
				p.G.Expect(s.Reply(sec, burst[0], syn|ack)).To(BeForwardedTo(ep(backend(0), 1000)))
				again := s.Out(sec, tcp, ep(backend(0), 1000), server(0, 443), ack)
				p.G.Expect([]Outcome{burst[0], again}).To(ShareOneSNATPort())
				p.G.Expect(s.Reply(sec, burst[7], syn|ack)).To(BeForwardedTo(ep(backend(0), 1007)))
				p.G.Expect(s.Out(sec, tcp, ep(backend(0), 1008), server(0, 80), syn)).To(BeForwarded())
			}},
		{ID: reference.B9, Title: "an instance is exhausted even when other instances have free ports",
			Run: func(p *Probe) {
				s := p.Open(config(1, 3, 8))
				p.G.Expect(s.Fill(0, tcp, backend(1), 1000, 9, server(0, 443))).To(BeExhaustedAfter(8))
				p.G.Expect(s.Fill(sec, tcp, backend(2), 1000, 9, server(0, 443))).To(BeExhaustedAfter(8))
			}},
		{ID: reference.B9, Title: "an instance spanning two frontend IPs uses its ports on both before it is exhausted", Needs: CapLargeAllocation,
			Run: func(p *Probe) {
				s := p.Open(config(2, 3, 24000))
				plan := s.Plan()
				p.G.Expect(plan.Instances[2].Ranges).To(HaveLen(2), "instance 3 spans two IPs")
				burst := s.Fill(0, tcp, backend(2), 1, 24001, server(0, 443))
				p.G.Expect(burst).To(BeExhaustedAfter(24000))
				p.G.Expect(burst[:24000]).To(LieInAllocationOf(plan, 2))
			}},
		{ID: reference.B9, Title: "a new flow succeeds as soon as a port is released: RST at 1 s, refused at 16 s − ε, given the released port at 16 s",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 8))
				burst := s.Fill(0, tcp, backend(0), 1000, 9, server(0, 443))
				p.G.Expect(burst).To(BeExhaustedAfter(8))
				p.G.Expect(s.Out(sec, tcp, ep(backend(0), 1003), server(0, 443), rst)).To(BeForwarded())
				p.G.Expect(s.Out(16*sec-p.Epsilon(), tcp, ep(backend(0), 3001), server(0, 443), syn)).To(BeDropped())
				got := s.Out(16*sec, tcp, ep(backend(0), 3001), server(0, 443), syn)
				p.G.Expect([]Outcome{burst[3], got}).To(ShareOneSNATPort())
			}},
	}
}
