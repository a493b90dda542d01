package scenario

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/regress"
)

// The azure-lb scenarios. Every one has one instance, 10.0.0.1, sending;
// the SNAT ports are C3's (lowest free first), from 1024 (C1).
var azureLB = []*Scenario{
	{
		Name: "azure-lb-exhaustion-pool-50", Profile: "azure-lb", Behaviors: []reference.Behavior{reference.B9, reference.B3, reference.B6},
		Title: "1,025 concurrent flows to one destination from one instance of a pool of 50: the 1,025th is refused, a flow to another destination is not",
		Setup: poolSetup(50), build: func(b *builder) { exhaustion(b, 1024) },
	},
	{
		Name: "azure-lb-exhaustion-pool-51", Profile: "azure-lb", Behaviors: []reference.Behavior{reference.B9, reference.B3, reference.B6},
		Title: "513 concurrent flows to one destination from one instance of a pool of 51: the 513th is refused, a flow to another destination is not",
		Setup: poolSetup(51), build: func(b *builder) { exhaustion(b, 512) },
	},
	{
		Name: "azure-lb-rst-15s", Profile: "azure-lb", Behaviors: []reference.Behavior{reference.B11, reference.B13, reference.C4},
		Title: "a RST frees its port 15 s later: a packet of the flow at 14.999 s is translated, a new flow at 14.9995 s refused, at 15 s it takes the port",
		Setup: eightPorts(), build: rstRelease,
	},
	{
		Name: "azure-lb-fin-240s", Profile: "azure-lb", Behaviors: []reference.Behavior{reference.B10, reference.B13},
		Title: "a FIN frees its port 240 s later whatever follows it: packets of the flow until 239.999 s are translated, a new flow at 240 s takes the port",
		Setup: eightPorts(), build: finRelease,
	},
	{
		Name: "azure-lb-idle-4m", Profile: "azure-lb", Behaviors: []reference.Behavior{reference.B12, reference.B13},
		Title: "a TCP flow with no packet for 4 minutes (the default idle timeout) frees its port: held at 3:59.999, taken by a new flow at 4:00",
		Setup: eightPorts(), build: func(b *builder) { idle(b, tcp, 4*time.Minute) },
	},
	{
		Name: "azure-lb-idle-30m", Profile: "azure-lb", Behaviors: []reference.Behavior{reference.B12, reference.B13},
		Title: "a UDP mapping with no packet for 30 minutes (an outbound rule's idle timeout) frees its port: held at 29:59.999, taken at 30:00",
		Setup: idleSetup("30m"), build: func(b *builder) { idle(b, udp, 30*time.Minute) },
	},
	{
		Name: "azure-lb-udp-port-restricted-cone", Profile: "azure-lb", Behaviors: []reference.Behavior{reference.B7, reference.B8},
		Title: "one UDP mapping per (inside endpoint, destination IP) for every destination port; replies only from the IP:ports it sent to",
		Setup: eightPorts(), build: udpCone,
	},
	{
		Name: "azure-lb-tcp-reuse-dst-ports", Profile: "azure-lb", Behaviors: []reference.Behavior{reference.B6, reference.B9},
		Title: "8 SNAT ports carry 8 flows to :443 and 8 more to :80 of one server at once; a 9th to either port is refused",
		Setup: eightPorts(), build: tcpReuse,
	},
	{
		Name: "azure-lb-unsolicited-inbound", Profile: "azure-lb", Behaviors: []reference.Behavior{reference.B8, reference.C8},
		Title: "inbound packets that match no live flow are dropped: another source, a port with no flow, a reply after the flow's release",
		Setup: eightPorts(), build: unsolicited,
	},
	{
		Name: "azure-lb-b14-rsts", Profile: "azure-lb", Behaviors: []reference.Behavior{reference.B14, reference.C6, reference.C7},
		Title: "tcpResetOnIdle: an established flow idling out gets RSTs at 4:00 and its late packets a RST; a flow that never saw a reply ends silently",
		Setup: resetSetup(), build: b14,
	},
}

func poolSetup(n int) regress.Setup {
	s := setup(inst0.String())
	s.PoolSize = n
	return s
}

func eightPorts() regress.Setup {
	s := setup(inst0.String())
	s.PortsPerInstance = 8
	return s
}

func idleSetup(idle string) regress.Setup {
	s := eightPorts()
	s.IdleTimeout = idle
	return s
}

func resetSetup() regress.Setup {
	s := eightPorts()
	s.TCPResetOnIdle = true
	return s
}

// exhaustion: n concurrent flows to one destination IP:port take the
// instance's n ports (B3 gives it n, B6 one port per flow to one
// destination); the next is refused (B9); a flow to another destination
// shares the first port (B6).
func exhaustion(b *builder, n int) {
	dst := server(10, 443)
	for i := range n {
		b.out(time.Duration(i)*ms, tcp, inside(uint16(10001+i)), dst, syn)
	}
	b.claim(Claim{Packet: 1, Verdict: "opened", Behavior: reference.B6, Why: "a new flow takes a free port"})
	b.claim(Claim{Packet: n, Verdict: "opened", OtherPortThan: []int{1}, Behavior: reference.B3,
		Why: fmt.Sprintf("the %dth flow to %v takes the last of the instance's %d ports (B3)", n, dst, n)})
	p := b.out(time.Duration(n)*ms, tcp, inside(uint16(10001+n)), dst, syn)
	b.claim(Claim{Packet: p, Verdict: "exhausted", Behavior: reference.B9,
		Why: fmt.Sprintf("every one of the %d ports carries a flow to %v (B6): the new flow is refused", n, dst)})
	p = b.out(time.Duration(n+1)*ms, tcp, inside(uint16(10002+n)), server(11, 443), syn)
	b.claim(Claim{Packet: p, Verdict: "opened", SamePortAs: 1, Behavior: reference.B6,
		Why: "a flow to another destination may share a port (B6): the lowest, 1024 (C3)"})
}

// eight opens 8 TCP flows (or UDP mappings) from inside ports 10001–10008
// to one destination at 0–7 ms: they take the 8 ports of the instance.
func eight(b *builder, proto reference.Proto, dst netip.AddrPort) {
	for i := range 8 {
		flags := syn
		if proto == udp {
			flags = 0
		}
		b.out(time.Duration(i)*ms, proto, inside(uint16(10001+i)), dst, flags)
	}
	b.claim(Claim{Packet: 8, Verdict: "opened", OtherPortThan: []int{1}, Behavior: reference.B6, Why: "the 8th flow takes the last port"})
}

// boundary claims the two sides of a release at t of the port packet 1's
// flow held (B13): a new flow from inside port 10009 to dst is refused at
// t − 0.5 ms and takes that port at t.
func boundary(b *builder, proto reference.Proto, dst netip.AddrPort, t time.Duration, b1 reference.Behavior) {
	flags := syn
	if proto == udp {
		flags = 0
	}
	p := b.out(t-ms/2, proto, inside(10009), dst, flags)
	b.claim(Claim{Packet: p, Verdict: "exhausted", Behavior: reference.B13,
		Why: "the released flow's port is still held just before its release time (B13): all 8 carry a flow to this destination"})
	p = b.out(t, proto, inside(10009), dst, flags)
	b.claim(Claim{Packet: p, Verdict: "opened", SamePortAs: 1, Behavior: b1,
		Why: "at the release time the port is free and a new flow takes it at once (B13, C4)"})
}

// rstRelease: a RST at 1 s sets the flow's release to 16 s (B11).
func rstRelease(b *builder) {
	dst := server(10, 443)
	eight(b, tcp, dst)
	p := b.out(1*sec, tcp, inside(10001), dst, rst)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: 1, Behavior: reference.B11, Why: "a RST is translated; the flow is released 15 s later"})
	t := 16 * sec
	p = b.out(t-ms, tcp, inside(10001), dst, ack)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: 1, Behavior: reference.B13, Why: "a packet at RST + 14.999 s is still translated (B13)"})
	boundary(b, tcp, dst, t, reference.B11)
	p = b.out(t+ms, tcp, inside(10001), dst, ack)
	b.claim(Claim{Packet: p, Verdict: "exhausted", Behavior: reference.C5,
		Why: "the reset flow is gone: its next packet would open a new flow (C5) and no port is free toward this destination (B9)"})
	b.event(EventClaim{At: t, Kind: "released", Release: "rst", Inside: inside(10001), Behavior: reference.B11, Why: "RST at 1 s + 15 s"})
}

// finRelease: a FIN at 1 s sets the release to 241 s (B10); the other
// flows are kept alive past it, the FIN flow's own packets do not move it.
func finRelease(b *builder) {
	dst := server(10, 443)
	eight(b, tcp, dst)
	p := b.out(1*sec, tcp, inside(10001), dst, finAck)
	b.claim(Claim{Packet: p, Verdict: "translated", Behavior: reference.B10, Why: "the first FIN starts the 240 s timer"})
	for i := range 7 {
		b.out(120*sec+time.Duration(i)*ms, tcp, inside(uint16(10002+i)), dst, ack) // keep-alives: idle until 360 s
	}
	p = b.out(200*sec, tcp, inside(10001), dst, psh)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: 1, Behavior: reference.B10, Why: "packets after a FIN are translated and do not restart the timer"})
	p = b.reply(230*sec, tcp, dst, inside(10001), finAck)
	b.claim(Claim{Packet: p, Verdict: "translated", Behavior: reference.B10, Why: "the server's FIN is translated; a second FIN does not move the release"})
	t := 241 * sec
	p = b.out(t-ms, tcp, inside(10001), dst, ack)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: 1, Behavior: reference.B13, Why: "a packet at FIN + 239.999 s is still translated (B13)"})
	boundary(b, tcp, dst, t, reference.B10)
	b.event(EventClaim{At: t, Kind: "released", Release: "fin", Inside: inside(10001), Behavior: reference.B10, Why: "FIN at 1 s + 240 s"})
}

// idle: flow 1's last packet is at 1 s; the others are kept alive at
// 1 s + timeout/2; flow 1 is released at 1 s + timeout (B12).
func idle(b *builder, proto reference.Proto, timeout time.Duration) {
	port := uint16(443)
	var last reference.TCPFlags = ack
	if proto == udp {
		port, last = 53, 0
	}
	dst := server(10, port)
	eight(b, proto, dst)
	p := b.out(1*sec, proto, inside(10001), dst, last)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: 1, Behavior: reference.B12, Why: "the flow's last packet restarts its idle timer"})
	for i := range 7 {
		b.out(1*sec+timeout/2+time.Duration(i)*ms, proto, inside(uint16(10002+i)), dst, last)
	}
	t := 1*sec + timeout
	boundary(b, proto, dst, t, reference.B12)
	p = b.reply(t+ms, proto, dst, inside(10001), last)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.B8,
		Why: "a reply of the idle-released flow finds no flow (B8); it is counted as a reply without a flow (C8)"})
	b.event(EventClaim{At: t, Kind: "released", Release: "idle", Inside: inside(10001), Behavior: reference.B12,
		Why: fmt.Sprintf("last packet at 1 s + the %v idle timeout", timeout)})
}

// udpCone: B7's mapping key and B8's filtering for UDP.
func udpCone(b *builder) {
	a, c := inside(5000), inside(5001)
	p1 := b.out(0, udp, a, server(10, 53), 0)
	b.claim(Claim{Packet: p1, Verdict: "opened", Behavior: reference.B7, Why: "a new mapping (inside endpoint, destination IP)"})
	p := b.out(10*ms, udp, a, server(10, 5353), 0)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: p1, Behavior: reference.B7, Why: "another port of the same destination IP uses the same mapping"})
	p = b.out(20*ms, udp, a, server(20, 53), 0)
	b.claim(Claim{Packet: p, Verdict: "opened", SamePortAs: p1, Behavior: reference.B7,
		Why: "a mapping toward another destination IP may share the port (B7), the lowest that can (C3)"})
	p = b.out(30*ms, udp, c, server(10, 53), 0)
	b.claim(Claim{Packet: p, Verdict: "opened", OtherPortThan: []int{p1}, Behavior: reference.B7,
		Why: "port 1024 already carries a mapping toward 198.51.100.10: another inside endpoint needs another port"})
	p = b.reply(40*ms, udp, server(10, 53), a, 0)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: p1, Behavior: reference.B8, Why: "a reply from an IP:port the mapping sent to"})
	p = b.reply(50*ms, udp, server(10, 5353), a, 0)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: p1, Behavior: reference.B8, Why: "a reply from the other IP:port it sent to"})
	p = b.reply(60*ms, udp, server(10, 9999), a, 0)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.B8, Why: "the mapping never sent to port 9999 of that IP (port-restricted)"})
	p = b.reply(70*ms, udp, server(30, 53), a, 0)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.B8, Why: "no mapping toward that IP"})
	p = b.reply(80*ms, udp, server(20, 53), c, 0)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.B8, Why: "that inside endpoint never sent to 198.51.100.20"})
}

// tcpReuse: B6 across destination ports of one server.
func tcpReuse(b *builder) {
	eight(b, tcp, server(10, 443))
	for i := range 8 {
		p := b.out(10*ms+time.Duration(i)*ms, tcp, inside(uint16(10009+i)), server(10, 80), syn)
		if i == 0 || i == 7 {
			b.claim(Claim{Packet: p, Verdict: "opened", SamePortAs: 1 + i, Behavior: reference.B6,
				Why: "a port carrying a flow to :443 also carries one to :80 of the same server (another destination)"})
		}
	}
	p := b.out(20*ms, tcp, inside(10017), server(10, 443), syn)
	b.claim(Claim{Packet: p, Verdict: "exhausted", Behavior: reference.B9, Why: "every port carries a flow to :443"})
	p = b.out(21*ms, tcp, inside(10018), server(10, 80), syn)
	b.claim(Claim{Packet: p, Verdict: "exhausted", Behavior: reference.B9, Why: "every port carries a flow to :80"})
	p = b.out(22*ms, tcp, inside(10019), server(10, 8443), syn)
	b.claim(Claim{Packet: p, Verdict: "opened", SamePortAs: 1, Behavior: reference.B6, Why: "a third destination port shares port 1024"})
}

// outside adds a packet recorded on the outside: a server's packet to the
// frontend IP.
func (b *builder) outside(d time.Duration, proto reference.Proto, from, to netip.AddrPort, flags reference.TCPFlags) int {
	return b.reply(d, proto, from, to, flags)
}

// unsolicited: B8 for TCP, on both sides of the NAT.
func unsolicited(b *builder) {
	a, dst := inside(10001), server(10, 443)
	p1 := b.out(0, tcp, a, dst, syn)
	p := b.reply(10*ms, tcp, dst, a, synAck)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: p1, Behavior: reference.B8, Why: "the exact reverse 5-tuple of a live flow"})
	p = b.outside(20*ms, tcp, server(99, 443), snat(1024), syn)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.B8, Why: "to the flow's SNAT port from another server"})
	p = b.outside(30*ms, tcp, dst, snat(2000), ack)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.B8, Why: "to a SNAT port with no flow"})
	p = b.outside(40*ms, tcp, server(10, 8443), snat(1024), ack)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.B8, Why: "from another port of the flow's server"})
	p = b.reply(50*ms, tcp, server(10, 8443), a, ack)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.C8, Why: "a reply recorded inside whose flow does not exist (C8)"})
	b.out(1*sec, tcp, a, dst, rst)
	p = b.reply(16*sec-ms, tcp, dst, a, ack)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: p1, Behavior: reference.B13, Why: "the reset flow lives until RST + 15 s"})
	p = b.reply(16*sec, tcp, dst, a, ack)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.B8, Why: "the flow was released at RST + 15 s"})
	p = b.outside(16*sec+ms, tcp, dst, snat(1024), ack)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.B8, Why: "the same, recorded on the outside"})
}

// b14: tcpResetOnIdle on an established flow (C6) and on one that never
// saw a reply; late packets within one idle timeout of the release (C7).
func b14(b *builder) {
	a, c, dst := inside(10001), inside(10002), server(10, 443)
	b.out(0, tcp, a, dst, syn)
	b.reply(10*ms, tcp, dst, a, synAck)
	b.out(20*ms, tcp, a, dst, ack) // established (C6); idle from 20 ms
	b.out(100*ms, tcp, c, dst, syn)
	ta, tc := 240*sec+20*ms, 240*sec+100*ms
	b.event(EventClaim{At: ta, Kind: "reset-sent", Inside: a, Behavior: reference.B14, Why: "an established flow idles out: RSTs to both ends"})
	b.event(EventClaim{At: ta, Kind: "released", Release: "idle", Inside: a, Behavior: reference.B12, Why: "idle 4 minutes after its last packet"})
	b.event(EventClaim{At: tc, Kind: "released", Release: "idle", Inside: c, Behavior: reference.B12, Why: "idle 4 minutes after its SYN"})
	b.event(EventClaim{At: tc, Kind: "reset-sent", Absent: true, Inside: c, Behavior: reference.C6, Why: "never saw a reply: not established (C6), no RST"})
	p := b.out(300*sec, tcp, a, dst, ack)
	b.claim(Claim{Packet: p, Verdict: "reset", Behavior: reference.B14, Why: "a late packet of the reset flow is answered with a RST"})
	p = b.reply(301*sec, tcp, dst, a, psh)
	b.claim(Claim{Packet: p, Verdict: "reset", Behavior: reference.C7, Why: "on either side of the NAT (C7)"})
	p = b.out(302*sec, tcp, c, dst, ack)
	b.claim(Claim{Packet: p, Verdict: "opened", Behavior: reference.C5, Why: "the silent flow is forgotten: its packet opens a new flow (C5 pick-up)"})
	p = b.out(ta+240*sec-ms, tcp, a, dst, ack)
	b.claim(Claim{Packet: p, Verdict: "reset", Behavior: reference.C7, Why: "still remembered one idle timeout after its release, less 1 ms"})
	p = b.out(ta+240*sec, tcp, a, dst, ack)
	b.claim(Claim{Packet: p, Verdict: "opened", Behavior: reference.C7, Why: "forgotten one idle timeout after its release: a new flow (C5)"})
}
