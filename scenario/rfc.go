package scenario

import (
	"net/netip"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/regress"
)

// The rfc scenarios: the IETF requirements (RFC 4787, 5382, 7857), one
// inventory of 203.0.113.1's ports (and 203.0.113.2's where pooling is
// shown) shared by the inside hosts. R3 keeps an inside port when it is
// free, which is what lets these captures address the public endpoint of
// a mapping from outside: the claims check that the port was kept.
var rfc = []*Scenario{
	{
		Name: "rfc-endpoint-independent-mapping", Profile: "rfc", Behaviors: []reference.Behavior{reference.R1, reference.R3},
		Title: "one inside IP:port keeps one public IP:port for every destination; the inside port is kept when free, else one of its parity and range",
		Setup: rfcSetup(), build: rfcMapping,
	},
	{
		Name: "rfc-paired-pooling", Profile: "rfc", Behaviors: []reference.Behavior{reference.R3},
		Title: "with two public IPs, every mapping of one inside host uses the same public IP",
		Setup: rfcPooling(), build: rfcPairing,
	},
	{
		Name: "rfc-filtering-endpoint-independent", Profile: "rfc", Behaviors: []reference.Behavior{reference.R2},
		Title: "--filtering endpoint-independent: any remote endpoint may send in through a mapping",
		Setup: rfcFiltering("endpoint-independent"), build: func(b *builder) { rfcFilter(b, "endpoint-independent") },
	},
	{
		Name: "rfc-filtering-address", Profile: "rfc", Behaviors: []reference.Behavior{reference.R2},
		Title: "--filtering address: any port of an IP the mapping has sent to may send in",
		Setup: rfcFiltering("address"), build: func(b *builder) { rfcFilter(b, "address") },
	},
	{
		Name: "rfc-filtering-address-and-port", Profile: "rfc", Behaviors: []reference.Behavior{reference.R2},
		Title: "the default filtering, address and port: only IP:ports the mapping has sent to may send in",
		Setup: rfcSetup(), build: func(b *builder) { rfcFilter(b, "address-and-port") },
	},
	{
		Name: "rfc-udp-timer", Profile: "rfc", Behaviors: []reference.Behavior{reference.R4},
		Title: "a UDP mapping lives 5 minutes after its last packet, outbound or (by default) inbound",
		Setup: rfcSetup(), build: func(b *builder) { rfcUDP(b, 5*time.Minute, true) },
	},
	{
		Name: "rfc-udp-timer-2m-outbound-only", Profile: "rfc", Behaviors: []reference.Behavior{reference.R4},
		Title: "--udp-timeout 2m --inbound-refresh=false: a UDP mapping lives 2 minutes after its last outbound packet; replies do not refresh it",
		Setup: rfcUDPSetup(), build: func(b *builder) { rfcUDP(b, 2*time.Minute, false) },
	},
	{
		Name: "rfc-tcp-timers", Profile: "rfc", Behaviors: []reference.Behavior{reference.R5},
		Title: "TCP: 4 minutes idle while transitory (SYN only, after a FIN each way, after a RST, which is translated), 124 minutes once established",
		Setup: rfcSetup(), build: rfcTCP,
	},
	{
		Name: "rfc-hairpin", Profile: "rfc", Behaviors: []reference.Behavior{reference.R7, reference.R2},
		Title: "a packet from inside to a mapped public endpoint reaches its inside endpoint from the sender's public endpoint, through the mapping's filter",
		Setup: rfcSetup(), build: rfcHairpin,
	},
}

func rfcSetup() regress.Setup {
	s := setup(inst0.String() + "," + inst1.String())
	s.Profile = reference.NameRFC
	return s
}

func rfcFiltering(f string) regress.Setup {
	s := rfcSetup()
	s.Filtering = f
	return s
}

func rfcUDPSetup() regress.Setup {
	s := rfcSetup()
	s.UDPTimeout, s.NoInboundRefresh = "2m", true
	return s
}

func rfcPooling() regress.Setup {
	s := rfcSetup()
	s.Frontends = []netip.Addr{frontend, frontend2}
	s.Backends = "10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4"
	return s
}

func host(n byte, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, n}), port)
}

// rfcMapping: R1's endpoint-independent mapping, R3's port choice.
func rfcMapping(b *builder) {
	a := inside(5000)
	p1 := b.out(0, udp, a, server(10, 53), 0)
	b.claim(Claim{Packet: p1, Verdict: "opened", KeepsPort: true, Behavior: reference.R3, Why: "the inside port is free: kept"})
	for i, dst := range []netip.AddrPort{server(10, 5353), server(20, 53), server(30, 123)} {
		p := b.out(time.Duration(10+10*i)*ms, udp, a, dst, 0)
		b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: p1, Behavior: reference.R1,
			Why: "another destination, the same mapping: one public IP:port for every destination"})
	}
	t1 := b.out(50*ms, tcp, a, server(10, 443), syn)
	b.claim(Claim{Packet: t1, Verdict: "opened", KeepsPort: true, Behavior: reference.R3, Why: "TCP has its own ports: 5000 is free there too"})
	p := b.out(60*ms, tcp, a, server(20, 443), syn)
	b.claim(Claim{Packet: p, Verdict: "opened", SamePortAs: t1, Behavior: reference.R1,
		Why: "a second connection of the same inside endpoint, to another server, uses the same public endpoint"})
	c := inside1(5000)
	p = b.out(70*ms, udp, c, server(10, 53), 0)
	b.claim(Claim{Packet: p, Verdict: "opened", SameParity: true, OtherPortThan: []int{p1}, Behavior: reference.R3,
		Why: "port 5000 is 10.0.0.1's: another host's inside port 5000 gets another port of the same parity and range"})
	p = b.out(80*ms, udp, inside(53), server(10, 53), 0)
	b.claim(Claim{Packet: p, Verdict: "opened", KeepsPort: true, Behavior: reference.R3, Why: "a port under 1024 is kept in its range"})
	p = b.out(90*ms, udp, inside1(53), server(10, 53), 0)
	b.claim(Claim{Packet: p, Verdict: "opened", SameParity: true, Behavior: reference.R3,
		Why: "53 is taken: an odd port under 1024 instead (range and parity preserved)"})
	p = b.out(100*ms, udp, inside1(6001), server(10, 53), 0)
	b.claim(Claim{Packet: p, Verdict: "opened", KeepsPort: true, Behavior: reference.R3, Why: "a free port is kept"})
	p = b.reply(110*ms, udp, server(30, 123), a, 0)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: p1, Behavior: reference.R2, Why: "a reply from an endpoint the mapping sent to"})
}

// rfcPairing: R3's paired pooling over two public IPs and four hosts.
func rfcPairing(b *builder) {
	t := time.Duration(0)
	for h := byte(1); h <= 4; h++ {
		var first int
		for i, port := range []uint16{5000, 5001, 6000} {
			p := b.out(t, udp, host(h, port), server(10+byte(i), 53), 0)
			t += 10 * ms
			c := Claim{Packet: p, Verdict: "opened", SameParity: true, Behavior: reference.R3,
				Why: "the host's first mapping, on the public IP paired with it: its inside port if free there, else one of the same parity and range"}
			if first == 0 {
				first = p
			} else {
				c.SameIPAs = first
				c.Why = "paired pooling: every mapping of one inside host on the same public IP"
			}
			b.claim(c)
		}
		p := b.out(t, tcp, host(h, 7000), server(20, 443), syn)
		t += 10 * ms
		b.claim(Claim{Packet: p, Verdict: "opened", SameIPAs: first, SameParity: true, Behavior: reference.R3, Why: "TCP too: the same public IP as the host's UDP mappings"})
	}
}

// rfcFilter: R2 in mode f. The mapping 10.0.0.1:5000 keeps its port
// (R3), so packets recorded on the outside address 203.0.113.1:5000.
func rfcFilter(b *builder, f string) {
	a := inside(5000)
	p1 := b.out(0, udp, a, server(10, 53), 0)
	b.claim(Claim{Packet: p1, Verdict: "opened", KeepsPort: true, Behavior: reference.R3, Why: "kept: the mapping is 203.0.113.1:5000"})
	pub := snat(5000)
	verdict := func(allowed bool) string {
		if allowed {
			return "translated"
		}
		return "dropped:unsolicited"
	}
	p := b.outside(10*ms, udp, server(10, 53), pub, 0)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: p1, Behavior: reference.R2, Why: "the endpoint the mapping sent to: let in by every filter"})
	p = b.outside(20*ms, udp, server(10, 9999), pub, 0)
	b.claim(Claim{Packet: p, Verdict: verdict(f != "address-and-port"), SamePortAs: sameIf(f != "address-and-port", p1), Behavior: reference.R2,
		Why: "another port of an IP the mapping sent to: let in unless filtering by address and port (" + f + ")"})
	p = b.outside(30*ms, udp, server(99, 53), pub, 0)
	b.claim(Claim{Packet: p, Verdict: verdict(f == "endpoint-independent"), SamePortAs: sameIf(f == "endpoint-independent", p1), Behavior: reference.R2,
		Why: "an IP the mapping never sent to: let in only by endpoint-independent filtering (" + f + ")"})
	// TCP: a connection from outside to the public endpoint of a live
	// mapping opens one when the filter lets its sender in.
	t1 := b.out(40*ms, tcp, a, server(10, 443), syn)
	b.claim(Claim{Packet: t1, Verdict: "opened", KeepsPort: true, Behavior: reference.R3, Why: "kept: 203.0.113.1:5000 for TCP too"})
	p = b.outside(50*ms, tcp, server(10, 8443), pub, syn)
	b.claim(Claim{Packet: p, Verdict: openedIf(f != "address-and-port"), Behavior: reference.R2,
		Why: "a SYN from another port of the server the mapping reached: a new connection unless filtering by address and port (" + f + ")"})
	p = b.outside(60*ms, tcp, server(99, 443), pub, syn)
	b.claim(Claim{Packet: p, Verdict: openedIf(f == "endpoint-independent"), Behavior: reference.R2,
		Why: "a SYN from a server the mapping never reached: only endpoint-independent filtering lets it open a connection (" + f + ")"})
	p = b.outside(70*ms, tcp, server(10, 443), pub, synAck)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: t1, Behavior: reference.R2, Why: "the connection's own answer"})
}

func sameIf(c bool, p int) int {
	if c {
		return p
	}
	return 0
}

func openedIf(c bool) string {
	if c {
		return "opened"
	}
	return "dropped:unsolicited"
}

// rfcUDP: R4's timer of length d, refreshed by inbound packets or not.
// Twins two 2 ms apart show both sides of each end: the one whose end is
// 1 ms away still translates, the other's packet at its end does not.
func rfcUDP(b *builder, d time.Duration, inbound bool) {
	dns := server(10, 53)
	u, u2, v, v2 := inside(5000), inside(5002), inside(5004), inside(5006)
	pu := b.out(0, udp, u, dns, 0)
	pu2 := b.out(2*ms, udp, u2, dns, 0)
	pv := b.out(10*ms, udp, v, dns, 0)
	pv2 := b.out(12*ms, udp, v2, dns, 0)
	for _, p := range []int{pu, pu2, pv, pv2} {
		b.claim(Claim{Packet: p, Verdict: "opened", KeepsPort: true, Behavior: reference.R3, Why: "a new mapping, its port kept"})
	}
	// V and V2 hear back 60 s on: with inbound refresh the timer restarts
	// there, without it the replies only pass.
	b.reply(60*sec, udp, dns, v, 0)
	b.reply(60*sec+2*ms, udp, dns, v2, 0)
	// U: outbound only, ends at d.
	p := b.out(d+ms, udp, u2, dns, 0)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: pu2, Behavior: reference.R4, Why: "its twin's end less 1 ms: the mapping lives"})
	p = b.reply(d+2*ms, udp, dns, u2, 0)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: pu2, Behavior: reference.R4, Why: "its refreshed mapping lives"})
	p = b.reply(d+3*ms, udp, dns, u, 0)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.R4, Why: "U's mapping ended at its last packet + the timer"})
	b.event(EventClaim{At: d, Kind: "released", Release: "idle", Cites: reference.R4, Inside: u, Behavior: reference.R4, Why: "the UDP mapping timer from U's only packet"})
	endV := d + 10*ms
	if inbound {
		endV = 60*sec + d
	}
	b.event(EventClaim{At: endV, Kind: "released", Release: "idle", Cites: reference.R4, Inside: v, Behavior: reference.R4,
		Why: "from V's reply when inbound packets refresh the mapping, else from its packet"})
	if inbound {
		b.event(EventClaim{At: d + 10*ms, Kind: "released", Release: "idle", Absent: true, Inside: v, Behavior: reference.R4, Why: "the reply at 60 s refreshed V"})
	} else {
		b.event(EventClaim{At: 60*sec + d, Kind: "released", Release: "idle", Absent: true, Inside: v, Behavior: reference.R4, Why: "replies do not refresh V"})
	}
	p = b.out(endV+ms, udp, v2, dns, 0)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: pv2, Behavior: reference.R4, Why: "V's twin at its own end less 1 ms: lives"})
	p = b.out(endV+3*ms, udp, v, dns, 0)
	b.claim(Claim{Packet: p, Verdict: "opened", KeepsPort: true, Behavior: reference.R4, Why: "V's mapping ended: a new one"})
}

// rfcTCP: R5's timers. Twins 2 ms apart show both sides of each end: the
// one whose end is 1 ms away still translates, the other's packet at its
// end does not.
func rfcTCP(b *builder) {
	dst := server(10, 443)
	syn1, syn2 := tcpFlow(5000, 443), tcpFlow(5002, 443)
	est, est2 := tcpFlow(5004, 443), tcpFlow(5006, 443)
	rs, rs2 := tcpFlow(5008, 443), tcpFlow(5010, 443)
	fin := tcpFlow(5012, 443)
	b.out(0, tcp, syn1.Src, dst, syn)
	ps2 := b.out(2*ms, tcp, syn2.Src, dst, syn)
	b.handshake(10*ms, est) // established, last packet at 12 ms
	pe2 := b.handshake(20*ms, est2)
	pr := b.handshake(30*ms, rs)
	pr2 := b.handshake(40*ms, rs2)
	b.handshake(50*ms, fin)
	// RSTs at 10 s: translated, the session kept 4 minutes.
	p := b.out(10*sec, tcp, rs.Src, dst, rst)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: pr, Behavior: reference.R5, Why: "a RST is translated"})
	b.out(10*sec+2*ms, tcp, rs2.Src, dst, rst)
	// A FIN each way at 20 s: transitory again.
	b.out(20*sec, tcp, fin.Src, dst, finAck)
	b.reply(20*sec+ms, tcp, dst, fin.Src, finAck)
	// SYN only: transitory, 4 minutes.
	p = b.out(4*time.Minute+ms, tcp, syn2.Src, dst, syn)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: ps2, Behavior: reference.R5, Why: "its twin's end less 1 ms: lives"})
	p = b.out(4*time.Minute+2*ms, tcp, syn1.Src, dst, ack)
	b.claim(Claim{Packet: p, Verdict: "opened", KeepsPort: true, Behavior: reference.R5, Why: "4 minutes after its SYN the connection is gone: this packet opens another"})
	b.event(EventClaim{At: 4 * time.Minute, Kind: "released", Release: "idle", Cites: reference.R5, Inside: syn1.Src, Behavior: reference.R5, Why: "transitory: SYN only, 4 minutes"})
	// After the RSTs.
	p = b.reply(4*time.Minute+10*sec+ms, tcp, dst, rs2.Src, ack)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: pr2, Behavior: reference.R5, Why: "its RST + 4 minutes less 1 ms: the session is kept"})
	p = b.reply(4*time.Minute+10*sec+2*ms, tcp, dst, rs.Src, ack)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.R5, Why: "RST + 4 minutes: the session is gone"})
	b.event(EventClaim{At: 4*time.Minute + 10*sec, Kind: "released", Release: "rst", Cites: reference.R5, Inside: rs.Src, Behavior: reference.R5, Why: "RST + 4 minutes"})
	b.event(EventClaim{At: 4*time.Minute + 20*sec + ms, Kind: "released", Release: "fin", Cites: reference.R5, Inside: fin.Src, Behavior: reference.R5,
		Why: "FIN both ways: transitory, 4 minutes from the last packet"})
	b.event(EventClaim{At: 124*time.Minute + 52*ms, Kind: "released", Release: "idle", Absent: true, Inside: fin.Src, Behavior: reference.R5,
		Why: "after a FIN each way the established timer no longer applies"})
	// Established: 124 minutes.
	p = b.out(124*time.Minute+21*ms, tcp, est2.Src, dst, ack)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: pe2, Behavior: reference.R5, Why: "established, its end less 1 ms: lives"})
	p = b.reply(124*time.Minute+22*ms, tcp, dst, est.Src, ack)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.R5, Why: "124 minutes after its last packet the connection is gone"})
	b.event(EventClaim{At: 124*time.Minute + 12*ms, Kind: "released", Release: "idle", Cites: reference.R5, Inside: est.Src, Behavior: reference.R5,
		Why: "established: 124 minutes from its last packet, at 12 ms"})
	b.event(EventClaim{At: 4*time.Minute + 12*ms, Kind: "released", Release: "idle", Absent: true, Inside: est.Src, Behavior: reference.R5,
		Why: "not the transitory 4 minutes"})
}

// rfcHairpin: R7 under the default filtering (address and port).
func rfcHairpin(b *builder) {
	a, c := inside(5000), inside1(6000)
	pa := b.out(0, udp, a, server(10, 53), 0)
	b.claim(Claim{Packet: pa, Verdict: "opened", KeepsPort: true, Behavior: reference.R3, Why: "10.0.0.1:5000's mapping is 203.0.113.1:5000"})
	pc := b.out(10*ms, udp, c, snat(5000), 0)
	b.claim(Claim{Packet: pc, Verdict: "dropped:unsolicited", Behavior: reference.R2,
		Why: "10.0.0.2:6000 gets its own mapping, 203.0.113.1:6000, but the packet hairpinned from it is filtered: 10.0.0.1:5000's mapping never sent to 203.0.113.1:6000"})
	p := b.out(20*ms, udp, a, snat(6000), 0)
	b.claim(Claim{Packet: p, Verdict: "hairpinned", DeliveredTo: c, DeliveredFrom: snat(5000), Behavior: reference.R7,
		Why: "to 10.0.0.2:6000's public endpoint, which sent to 203.0.113.1:5000: delivered to 10.0.0.2:6000 from 203.0.113.1:5000"})
	p = b.out(30*ms, udp, c, snat(5000), 0)
	b.claim(Claim{Packet: p, Verdict: "hairpinned", DeliveredTo: a, DeliveredFrom: snat(6000), Behavior: reference.R7,
		Why: "now 10.0.0.1:5000's mapping has sent to 203.0.113.1:6000: let in, from 10.0.0.2:6000's public endpoint"})
	p = b.out(40*ms, udp, c, snat(5999), 0)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.R7, Why: "a public port with no mapping"})
}
