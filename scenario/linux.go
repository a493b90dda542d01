package scenario

import (
	"fmt"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/regress"
)

// The linux scenarios: the kernel's default conntrack sysctls (SEMANTICS.md
// brackets), one rule per instance written from the allocation plan with 8
// ports each (L1): 10.0.0.1 gets 1024–1031, 10.0.0.2 1032–1039. Where the
// kernel chooses a port at random (L2) the claims say only that it lies in
// the instance's range; where it keeps the inside port, or where one port
// is all that is left, they say which.
var linux = []*Scenario{
	{
		Name: "linux-port-preserve", Profile: "linux", Behaviors: []reference.Behavior{reference.L2, reference.L3, reference.L4, reference.L1},
		Title: "the inside port is kept when it lies in the rule's range and the tuple is unique, else some port of the range; flows per 5-tuple",
		Setup: linuxSetup(), build: linuxPortPreserve,
	},
	{
		Name: "linux-tcp-state-timeouts", Profile: "linux", Behaviors: []reference.Behavior{reference.L5},
		Title: "each TCP state's timeout (SYN_SENT 120 s, SYN_RECV 60, FIN_WAIT 120, LAST_ACK 30, TIME_WAIT 120, ESTABLISHED 5 days), restarted by the packet that leaves the flow in it",
		Setup: linuxSetup(), build: linuxTCPStates,
	},
	{
		Name: "linux-tcp-rst", Profile: "linux", Behaviors: []reference.Behavior{reference.L6, reference.L5},
		Title: "a RST on an unanswered flow frees its port at once; on an answered one the flow is kept 10 s in CLOSE, restarted by its packets; a SYN reopens a closed tuple at once",
		Setup: linuxSetup(), build: linuxTCPRST,
	},
	{
		Name: "linux-udp-timeouts", Profile: "linux", Behaviors: []reference.Behavior{reference.L7},
		Title: "UDP: 30 s until a reply, 120 s once replied and a packet comes more than 2 s after the first (at 2 s exactly: still 30 s)",
		Setup: linuxSetup(), build: linuxUDP,
	},
	{
		Name: "linux-pickup-invalid", Profile: "linux", Behaviors: []reference.Behavior{reference.L9, reference.L11},
		Title: "tcp_loose=1: a pure ACK with no flow opens one; a FIN, RST or SYN-ACK with no flow and forbidden flags are dropped, and nothing leaves with an inside address",
		Setup: linuxSetup(), build: linuxPickup,
	},
	{
		Name: "linux-strict-invalid", Profile: "linux", Behaviors: []reference.Behavior{reference.L9, reference.L11},
		Title: "tcp_loose=0 (--strict): only a SYN opens a flow; mid-stream packets with no flow are dropped, never sent on with an inside address",
		Setup: linuxStrict(), build: linuxStrictBuild,
	},
	{
		Name: "linux-icmp-echo", Profile: "linux", Behaviors: []reference.Behavior{reference.L10},
		Title: "ICMP echo is translated, its identifier as the port (30 s timeout); its reply comes back until then",
		Setup: linuxSetup(), build: linuxICMP,
	},
}

func linuxSetup() regress.Setup {
	s := setup(inst0.String() + "," + inst1.String())
	s.PortsPerInstance = 8
	s.Profile = reference.NameLinux
	s.Seed = 7
	return s
}

func linuxStrict() regress.Setup {
	s := linuxSetup()
	s.Strict = true
	return s
}

// range0 and range1 are the rule ranges of 10.0.0.1 and 10.0.0.2 (L1).
var (
	range0 = [2]uint16{1024, 1031}
	range1 = [2]uint16{1032, 1039}
)

// handshake adds flow fl's TCP handshake at d, d+1 ms and d+2 ms (SYN,
// SYN-ACK, ACK) and returns the SYN's number.
func (b *builder) handshake(d time.Duration, fl reference.Tuple) int {
	p := b.out(d, tcp, fl.Src, fl.Dst, syn)
	b.reply(d+ms, tcp, fl.Dst, fl.Src, synAck)
	b.out(d+2*ms, tcp, fl.Src, fl.Dst, ack)
	return p
}

// tcpFlow is a TCP tuple from an inside endpoint to a server.
func tcpFlow(from uint16, to uint16) reference.Tuple {
	return reference.Tuple{Proto: tcp, Src: inside(from), Dst: server(10, to)}
}

// fill8 opens TCP flows from inside ports 1031 down to 1024 of 10.0.0.1
// to 198.51.100.10:443, 10 ms apart from at (port p at at + (1031−p)·10
// ms), each keeping its inside port (L2), which lowest-first choice would
// not: the instance's 8 ports then all carry a flow to that destination.
// Those in open are left with their SYN only; the others are
// established. It returns each flow's first packet, by inside port.
func (b *builder) fill8(at time.Duration, open ...uint16) map[uint16]int {
	first := map[uint16]int{}
	for i := range 8 {
		port := uint16(1031 - i)
		t := at + time.Duration(i)*10*ms
		fl := tcpFlow(port, 443)
		if contains(open, port) {
			first[port] = b.out(t, tcp, fl.Src, fl.Dst, syn)
		} else {
			first[port] = b.handshake(t, fl)
		}
		b.claim(Claim{Packet: first[port], Verdict: "opened", KeepsPort: true, Behavior: reference.L2,
			Why: "the inside port lies in the rule's range and the tuple is unique: it is kept"})
	}
	return first
}

func contains(s []uint16, v uint16) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// probe claims both sides of the moment t at which the port that flow
// (its first packet) held comes free, the 8 ports all carrying a flow to
// 198.51.100.10:443 until then: a new flow from inside port from is
// refused at t − 0.5 ms (L4: no unique tuple) and at t takes that port,
// the only one free. It returns the opening packet; the new flow is then
// established unless keepOpen.
func (b *builder) probe(t time.Duration, from uint16, flow int, keepOpen bool, why string) int {
	fl := tcpFlow(from, 443)
	p := b.out(t-ms/2, tcp, fl.Src, fl.Dst, syn)
	b.claim(Claim{Packet: p, Verdict: "exhausted", Behavior: reference.L4,
		Why: "0.5 ms before the release every port of the range carries a flow to this destination (" + why + ")"})
	p = b.out(t, tcp, fl.Src, fl.Dst, syn)
	b.claim(Claim{Packet: p, Verdict: "opened", SamePortAs: flow, Behavior: reference.L4,
		Why: "at the release time the port is free and the new flow takes it, the only one left (" + why + ")"})
	if !keepOpen {
		b.reply(t+ms, tcp, fl.Dst, fl.Src, synAck)
		b.out(t+2*ms, tcp, fl.Src, fl.Dst, ack)
	}
	return p
}

// linuxPortPreserve: L2's port choice, L3's 5-tuple flows, L4 at full
// occupancy.
func linuxPortPreserve(b *builder) {
	first := b.fill8(0)
	p := b.out(100*ms, tcp, inside(1024), server(10, 80), syn)
	b.claim(Claim{Packet: p, Verdict: "opened", KeepsPort: true, SamePortAs: first[1024], Behavior: reference.L3,
		Why: "another destination port of the same server: the tuple 203.0.113.1:1024 > :80 is unique, so port 1024 is kept again (L3, L2)"})
	p = b.out(110*ms, tcp, inside(5000), server(10, 443), syn)
	b.claim(Claim{Packet: p, Verdict: "exhausted", Behavior: reference.L4,
		Why: "all 8 ports of the range carry a flow to 198.51.100.10:443: at full occupancy a new flow is always refused (L4)"})
	p = b.out(120*ms, tcp, inside(5001), server(10, 8080), syn)
	b.claim(Claim{Packet: p, Verdict: "opened", PortIn: range0, Behavior: reference.L2,
		Why: "inside port 5001 is outside the rule's range: some port of the range, not predictable (L2)"})
	p = b.out(130*ms, tcp, inside1(1024), server(10, 443), syn)
	b.claim(Claim{Packet: p, Verdict: "opened", PortIn: range1, Behavior: reference.L1,
		Why: "10.0.0.2's rule maps it onto 1032–1039 (L1): port 1024 is not in its range, so some port of that range"})
	u := b.out(200*ms, udp, inside(1024), server(10, 53), 0)
	b.claim(Claim{Packet: u, Verdict: "opened", KeepsPort: true, Behavior: reference.L2, Why: "UDP: the inside port is kept (UDP has its own ports, L1)"})
	p = b.out(210*ms, udp, inside(1024), server(10, 5353), 0)
	b.claim(Claim{Packet: p, Verdict: "opened", SamePortAs: u, KeepsPort: true, Behavior: reference.L3,
		Why: "another destination port of the same IP is another flow (5-tuple, unlike azure-lb's B7), on the same port since the tuple is unique"})
	p = b.reply(220*ms, udp, server(10, 5353), inside(1024), 0)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: u, Behavior: reference.L8, Why: "the exact reverse 5-tuple of the second flow"})
	p = b.reply(230*ms, udp, server(10, 9999), inside(1024), 0)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.L8,
		Why: "no flow went to port 9999: address- and port-dependent filtering (L8)"})
	p = b.out(240*ms, udp, inside(1025), server(10, 53), 0)
	b.claim(Claim{Packet: p, Verdict: "opened", KeepsPort: true, OtherPortThan: []int{u}, Behavior: reference.L2, Why: "another inside port in range is kept"})
}

// linuxTCPStates: every timer is seen through the one port it frees, the
// instance's 8 ports all carrying a flow to one destination until then.
func linuxTCPStates(b *builder) {
	first := b.fill8(0, 1024) // 1024: a SYN with no answer yet
	a := inside(1024)
	// SYN_SENT, then SYN_RECV: the SYN-ACK at 90 s leaves the flow in
	// SYN_RECV, whose 60 s restart then: released at 150 s, not 120 s.
	p := b.reply(90*sec, tcp, server(10, 443), a, synAck)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: first[1024], Behavior: reference.L5, Why: "the answer to a live SYN_SENT flow"})
	b.event(EventClaim{At: 150 * sec, Kind: "released", Release: "idle", Cites: reference.L5, Inside: a, Behavior: reference.L5,
		Why: "SYN_RECV's 60 s from the SYN-ACK at 90 s"})
	b.event(EventClaim{At: 120*sec + 70*ms, Kind: "released", Release: "idle", Absent: true, Inside: a, Behavior: reference.L5,
		Why: "the SYN-ACK restarted the timer: SYN_SENT's 120 s from the SYN, at 70 ms, do not apply"})
	b.probe(150*sec, 5001, first[1024], false, "SYN_RECV 60 s")
	// FIN_WAIT: a FIN from inside at 200 s; 120 s.
	p = b.out(200*sec, tcp, inside(1025), server(10, 443), finAck)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: first[1025], Behavior: reference.L5, Why: "a FIN moves the flow to FIN_WAIT"})
	b.event(EventClaim{At: 320 * sec, Kind: "released", Release: "fin", Cites: reference.L5, Inside: inside(1025), Behavior: reference.L5,
		Why: "FIN_WAIT's 120 s from the FIN"})
	b.probe(320*sec, 5002, first[1025], false, "FIN_WAIT 120 s")
	// LAST_ACK then TIME_WAIT: FIN, the server's FIN, the last ACK.
	c := inside(1026)
	b.out(400*sec, tcp, c, server(10, 443), finAck)
	b.reply(400*sec+10*ms, tcp, server(10, 443), c, finAck)
	p = b.out(400*sec+20*ms, tcp, c, server(10, 443), ack)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: first[1026], Behavior: reference.L5, Why: "the last ACK moves the flow from LAST_ACK to TIME_WAIT"})
	b.event(EventClaim{At: 400*sec + 10*ms + 30*sec, Kind: "released", Absent: true, Release: "fin", Inside: c, Behavior: reference.L5,
		Why: "LAST_ACK's 30 s do not apply: the ACK moved the flow on"})
	b.event(EventClaim{At: 520*sec + 20*ms, Kind: "released", Release: "fin", Cites: reference.L5, Inside: c, Behavior: reference.L5,
		Why: "TIME_WAIT's 120 s from the last ACK"})
	b.probe(520*sec+20*ms, 5003, first[1026], true, "TIME_WAIT 120 s")
	// SYN_SENT: the last probe's SYN has no answer: 120 s.
	b.event(EventClaim{At: 640*sec + 20*ms, Kind: "released", Release: "idle", Cites: reference.L5, Inside: inside(5003), Behavior: reference.L5,
		Why: "SYN_SENT's 120 s from the SYN"})
	b.probe(640*sec+20*ms, 5004, first[1026], false, "SYN_SENT 120 s")
	// ESTABLISHED, 432,000 s (5 days) from the last packet: 1027's ACK at
	// one day moves it to 6 days; 1028's last packet was its handshake.
	day := 24 * time.Hour
	p = b.out(day, tcp, inside(1027), server(10, 443), ack)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: first[1027], Behavior: reference.L5, Why: "a packet of an ESTABLISHED flow restarts its 5 days"})
	b.event(EventClaim{At: day + 432000*sec, Kind: "released", Release: "idle", Cites: reference.L5, Inside: inside(1027), Behavior: reference.L5,
		Why: "ESTABLISHED's 432,000 s from the ACK at one day"})
	b.event(EventClaim{At: 32*ms + 432000*sec, Kind: "released", Release: "idle", Cites: reference.L5, Inside: inside(1028), Behavior: reference.L5,
		Why: "ESTABLISHED's 432,000 s from the handshake's last ACK, at 32 ms"})
	p = b.out(day+432000*sec+ms, tcp, inside(6000), server(10, 443), syn)
	b.claim(Claim{Packet: p, Verdict: "opened", PortIn: range0, Behavior: reference.L2, Why: "every established flow has timed out: ports are free"})
}

// linuxTCPRST: L6's two kinds of RST and the reopening SYN.
func linuxTCPRST(b *builder) {
	first := b.fill8(0, 1024)
	// A RST on 1024, which never saw a reply: the port is free at once.
	fl := tcpFlow(5001, 443)
	p := b.out(10*sec-ms/2, tcp, fl.Src, fl.Dst, syn)
	b.claim(Claim{Packet: p, Verdict: "exhausted", Behavior: reference.L4, Why: "before the RST every port carries a flow to this destination"})
	p = b.out(10*sec, tcp, inside(1024), server(10, 443), rst)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: first[1024], Behavior: reference.L6, Why: "the RST itself is translated"})
	b.event(EventClaim{At: 10 * sec, Kind: "released", Release: "rst", Cites: reference.L6, Inside: inside(1024), Behavior: reference.L6,
		Why: "a RST on a flow that never saw a reply deletes the entry at once"})
	p = b.out(10*sec+time.Microsecond, tcp, fl.Src, fl.Dst, syn)
	b.claim(Claim{Packet: p, Verdict: "opened", SamePortAs: first[1024], Behavior: reference.L6, Why: "1 µs after the RST the port is free (L6: at once)"})
	b.reply(10*sec+ms, tcp, fl.Dst, fl.Src, synAck)
	b.out(10*sec+2*ms, tcp, fl.Src, fl.Dst, ack)
	// A RST from the server on 1025, which is established: CLOSE, 10 s,
	// restarted by the flow's own packet at 25 s.
	p = b.reply(20*sec, tcp, server(10, 443), inside(1025), rst)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: first[1025], Behavior: reference.L6, Why: "a RST from the server is translated; the flow moves to CLOSE"})
	p = b.out(25*sec, tcp, inside(1025), server(10, 443), ack)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: first[1025], Behavior: reference.L6,
		Why: "a flow in CLOSE is still translated until its timer fires (L6), and the packet restarts it (L5)"})
	b.event(EventClaim{At: 30 * sec, Kind: "released", Absent: true, Release: "rst", Inside: inside(1025), Behavior: reference.L5,
		Why: "the packet at 25 s restarted CLOSE's 10 s"})
	b.event(EventClaim{At: 35 * sec, Kind: "released", Release: "rst", Cites: reference.L6, Inside: inside(1025), Behavior: reference.L6,
		Why: "CLOSE's 10 s from the packet at 25 s"})
	b.probe(35*sec, 5002, first[1025], false, "CLOSE 10 s")
	// A RST from inside on 1026, then a new SYN on the same tuple: the
	// closed flow is reopened at once, on its port.
	p = b.out(50*sec, tcp, inside(1026), server(10, 443), rst)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: first[1026], Behavior: reference.L6, Why: "a RST from inside: CLOSE"})
	p = b.out(51*sec, tcp, inside(1026), server(10, 443), syn)
	b.claim(Claim{Packet: p, Verdict: "opened", SamePortAs: first[1026], KeepsPort: true, Behavior: reference.L6,
		Why: "a new SYN on a tuple in CLOSE reopens it at once: a new flow, its inside port kept"})
	b.event(EventClaim{At: 51 * sec, Kind: "released", Release: "rst", Cites: reference.L6, Inside: inside(1026), Behavior: reference.L6,
		Why: "the closed flow ends when the SYN reopens its tuple, 1 s after its RST, not 10 s"})
}

// linuxUDP: L7's two timeouts and the 2 s rule, on both sides of it.
func linuxUDP(b *builder) {
	dns := server(10, 53)
	first := map[uint16]int{}
	for i := range 8 {
		port := uint16(1024 + i)
		first[port] = b.out(time.Duration(i)*10*ms, udp, inside(port), dns, 0)
		b.claim(Claim{Packet: first[port], Verdict: "opened", KeepsPort: true, Behavior: reference.L2, Why: "the inside port is kept"})
	}
	// 1024 never hears back: 30 s from its packet at 0. 1025, 1026 and
	// 1027 hear back at 0.5 s, then send again: 1025 at 1 s (under 2 s
	// after its first, at 10 ms): still 30 s, from 1 s; 1026 at 2.020 s,
	// exactly 2 s after its first: not more than 2 s, still 30 s; 1027 at
	// 2.031 s, 2.001 s after its first: the stream timeout, 120 s. 1028
	// sends again at 3 s with no reply ever: 30 s from 3 s.
	b.reply(500*ms, udp, dns, inside(1025), 0)
	b.reply(510*ms, udp, dns, inside(1026), 0)
	b.reply(520*ms, udp, dns, inside(1027), 0)
	b.out(1*sec, udp, inside(1025), dns, 0)
	b.out(2*sec+20*ms, udp, inside(1026), dns, 0)
	b.out(2*sec+31*ms, udp, inside(1027), dns, 0)
	b.out(3*sec, udp, inside(1028), dns, 0)
	// 1029–1031: replied and streaming, kept alive past the test.
	for i, port := range []uint16{1029, 1030, 1031} {
		b.reply(4*sec+time.Duration(i)*ms, udp, dns, inside(port), 0)
	}
	for i, port := range []uint16{1029, 1030, 1031} {
		b.out(5*sec+time.Duration(i)*ms, udp, inside(port), dns, 0)
	}
	b.event(EventClaim{At: 30 * sec, Kind: "released", Release: "idle", Cites: reference.L7, Inside: inside(1024), Behavior: reference.L7,
		Why: "udp_timeout, 30 s, with no reply"})
	probe := inside(5001)
	p := b.out(30*sec-ms/2, udp, probe, dns, 0)
	b.claim(Claim{Packet: p, Verdict: "exhausted", Behavior: reference.L4, Why: "0.5 ms before, every port carries a flow to 198.51.100.10:53"})
	p = b.out(30*sec, udp, probe, dns, 0)
	b.claim(Claim{Packet: p, Verdict: "opened", SamePortAs: first[1024], Behavior: reference.L7, Why: "30 s after its only packet, 1024's flow is gone and its port taken"})
	b.event(EventClaim{At: 31 * sec, Kind: "released", Release: "idle", Cites: reference.L7, Inside: inside(1025), Behavior: reference.L7,
		Why: "replied, but its last packet came less than 2 s after its first: 30 s from 1 s"})
	b.event(EventClaim{At: 32*sec + 20*ms, Kind: "released", Release: "idle", Cites: reference.L7, Inside: inside(1026), Behavior: reference.L7,
		Why: "a packet exactly 2 s after the first is not more than 2 s: 30 s"})
	b.event(EventClaim{At: 33 * sec, Kind: "released", Release: "idle", Cites: reference.L7, Inside: inside(1028), Behavior: reference.L7,
		Why: "never replied: 30 s from its last packet at 3 s"})
	b.event(EventClaim{At: 32*sec + 31*ms, Kind: "released", Absent: true, Release: "idle", Inside: inside(1027), Behavior: reference.L7,
		Why: "replied, and a packet 2.001 s after its first: the stream timeout applies, not 30 s"})
	b.event(EventClaim{At: 122*sec + 31*ms, Kind: "released", Release: "idle", Cites: reference.L7, Inside: inside(1027), Behavior: reference.L7,
		Why: "udp_timeout_stream, 120 s from its packet at 2.031 s"})
	p = b.reply(122*sec+31*ms, udp, dns, inside(1027), 0)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.L7, Why: "120 s after its last packet the flow is gone: a reply finds none"})
}

// linuxPickup: L9 under tcp_loose=1, and L11 for packets TCP forbids.
func linuxPickup(b *builder) {
	dst := server(10, 443)
	p := b.out(0, tcp, inside(5000), dst, ack)
	b.claim(Claim{Packet: p, Verdict: "opened", PortIn: range0, Behavior: reference.L9, Why: "tcp_loose: a pure ACK with no flow is picked up mid-stream"})
	p2 := b.out(10*ms, tcp, inside(5000), dst, psh)
	b.claim(Claim{Packet: p2, Verdict: "translated", SamePortAs: p, Behavior: reference.L9, Why: "the picked-up flow goes on"})
	for i, c := range []struct {
		flags reference.TCPFlags
		id    reference.Behavior
		why   string
	}{
		{finAck, reference.L9, "a FIN with no flow is invalid"},
		{rst, reference.L9, "a RST with no flow is invalid"},
		{rst | reference.ACK, reference.L9, "a RST-ACK with no flow is invalid"},
		{synAck, reference.L9, "a SYN-ACK from inside with no flow: the state table refuses it"},
		{reference.SYN | reference.FIN, reference.L11, "SYN with FIN: flags TCP forbids"},
		{0, reference.L11, "no flags at all"},
		{reference.FIN, reference.L11, "a FIN without ACK"},
	} {
		p := b.out(100*ms+time.Duration(i)*10*ms, tcp, inside(uint16(5001+i)), dst, c.flags)
		b.claim(Claim{Packet: p, Verdict: "dropped:invalid", Behavior: c.id, Why: c.why + ": dropped, never sent on with its inside address (L11)"})
	}
	p = b.out(200*ms, tcp, inside(5000), dst, reference.SYN|reference.RST)
	b.claim(Claim{Packet: p, Verdict: "dropped:invalid", Behavior: reference.L11, Why: "SYN with RST on a live flow: flags TCP forbids"})
	p = b.out(210*ms, tcp, inside(5000), dst, ack)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: p2, Behavior: reference.L11, Why: "the invalid packet left the flow as it was"})
}

// linuxStrictBuild: L9 under tcp_loose=0.
func linuxStrictBuild(b *builder) {
	dst := server(10, 443)
	for i, f := range []reference.TCPFlags{ack, psh, finAck, rst} {
		p := b.out(time.Duration(i)*10*ms, tcp, inside(uint16(5000+i)), dst, f)
		b.claim(Claim{Packet: p, Verdict: "dropped:invalid", Behavior: reference.L9,
			Why: fmt.Sprintf("tcp_loose=0: a %v with no flow is not tracked and is dropped (L11: never sent on with its inside address)", f)})
	}
	p := b.out(100*ms, tcp, inside(5000), dst, syn)
	b.claim(Claim{Packet: p, Verdict: "opened", PortIn: range0, Behavior: reference.L9, Why: "a SYN opens a flow"})
	q := b.reply(110*ms, tcp, dst, inside(5000), synAck)
	b.claim(Claim{Packet: q, Verdict: "translated", SamePortAs: p, Behavior: reference.L8, Why: "the answer"})
	q = b.out(120*ms, tcp, inside(5000), dst, ack)
	b.claim(Claim{Packet: q, Verdict: "translated", SamePortAs: p, Behavior: reference.L5, Why: "the flow is established"})
}

// linuxICMP: L10's echo.
func linuxICMP(b *builder) {
	id := uint16(7)
	p := b.out(0, icmp, inside(id), server(10, 0), 0)
	b.claim(Claim{Packet: p, Verdict: "opened", PortIn: range0, Behavior: reference.L10,
		Why: "an echo request is translated, its identifier mapped like a port onto the rule's range"})
	q := b.reply(10*ms, icmp, server(10, 0), inside(id), 0)
	b.claim(Claim{Packet: q, Verdict: "translated", SamePortAs: p, Behavior: reference.L10, Why: "the echo reply comes back through the mapping"})
	q = b.out(1*sec, icmp, inside(id), server(10, 0), 0)
	b.claim(Claim{Packet: q, Verdict: "translated", SamePortAs: p, Behavior: reference.L10, Why: "the next request, same identifier, same mapping"})
	q = b.reply(31*sec-ms, icmp, server(10, 0), inside(id), 0)
	b.claim(Claim{Packet: q, Verdict: "translated", SamePortAs: p, Behavior: reference.L10, Why: "nf_conntrack_icmp_timeout, 30 s from the last packet: live 1 ms before"})
	q = b.reply(61*sec, icmp, server(10, 0), inside(id), 0)
	b.claim(Claim{Packet: q, Verdict: "dropped:unsolicited", Behavior: reference.L10, Why: "30 s after the reply at 30.999 s the mapping is gone"})
	b.event(EventClaim{At: 61*sec - ms, Kind: "released", Release: "idle", Cites: reference.L10, Inside: inside(id), Behavior: reference.L10,
		Why: "30 s from the last packet"})
}
