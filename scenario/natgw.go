package scenario

import (
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/regress"
)

// The azure-natgw scenarios: one public IP, 203.0.113.1, shared by
// 10.0.0.1 and 10.0.0.2 (G1), ports chosen at random with a fixed seed
// (G2): the claims never name a port, only which packets share one, which
// do not, and that every port lies in 1024–65535.
var natgw = []*Scenario{
	{
		Name: "azure-natgw-reuse", Profile: "azure-natgw", Behaviors: []reference.Behavior{reference.G3, reference.G2, reference.G1},
		Title: "concurrent flows to one destination IP:port never share a public port, whichever host sends them; every port lies in 1024–65535",
		Setup: natgwSetup(""), build: natgwReuse,
	},
	{
		Name: "azure-natgw-holds", Profile: "azure-natgw", Behaviors: []reference.Behavior{reference.G4, reference.G6},
		Title: "a flow is held 65 s after a FIN and 16 s after a RST whatever follows, a SYN with no answer closed at 30 s, a UDP flow's port held 65 s from its destination",
		Setup: natgwSetup(""), build: natgwHolds,
	},
	{
		Name: "azure-natgw-idle", Profile: "azure-natgw", Behaviors: []reference.Behavior{reference.G5},
		Title: "with a 10-minute idle timeout, TCP flows idle out after 10 minutes of no packet either way, UDP flows after a fixed 4",
		Setup: natgwSetup("10m"), build: natgwIdle,
	},
	{
		Name: "azure-natgw-rst-unknown", Profile: "azure-natgw", Behaviors: []reference.Behavior{reference.G6, reference.G7},
		Title: "a TCP packet with no flow, from either side, is answered with a RST toward its sender only; a RST is never answered; UDP gets no RST",
		Setup: natgwSetup(""), build: natgwRSTUnknown,
	},
	{
		Name: "azure-natgw-inbound", Profile: "azure-natgw", Behaviors: []reference.Behavior{reference.G7, reference.G8},
		Title: "UDP replies only from the destination IP:port a flow sent to; ICMP and fragments are dropped",
		Setup: natgwSetup(""), build: natgwInbound,
	},
}

func natgwSetup(idle string) regress.Setup {
	s := setup(inst0.String() + "," + inst1.String())
	s.Profile = reference.NameAzureNATGW
	s.Seed = 42
	s.IdleTimeout = idle
	return s
}

// gwRange is a public IP's ports (G1).
var gwRange = [2]uint16{1024, 65535}

// natgwReuse: G3's rule over two hosts; G2's ports, in G1's range.
func natgwReuse(b *builder) {
	dst := server(10, 443)
	var firsts []int
	for i, from := range []func(uint16) reference.Tuple{
		func(p uint16) reference.Tuple { return reference.Tuple{Src: inside(p)} },
		func(p uint16) reference.Tuple { return reference.Tuple{Src: inside1(p)} },
	} {
		for j := range 3 {
			src := from(uint16(5001 + j)).Src
			p := b.out(time.Duration(i*3+j)*ms, tcp, src, dst, syn)
			b.claim(Claim{Packet: p, Verdict: "opened", PortIn: gwRange, OtherPortThan: append([]int(nil), firsts...), Behavior: reference.G3,
				Why: "never two live flows to one destination IP:port on one public port, whichever host sends (G3); a random port of 1024–65535 (G1, G2)"})
			firsts = append(firsts, p)
		}
	}
	p := b.out(10*ms, tcp, inside(5001), server(10, 80), syn)
	b.claim(Claim{Packet: p, Verdict: "opened", PortIn: gwRange, Behavior: reference.G2,
		Why: "another destination port is another flow, on a port chosen at random"})
	p = b.reply(20*ms, tcp, dst, inside(5001), synAck)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: firsts[0], Behavior: reference.G7, Why: "the answer of a live flow"})
	p = b.out(30*ms, tcp, inside(5001), dst, ack)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: firsts[0], Behavior: reference.G3, Why: "the flow keeps its port"})
	u := b.out(40*ms, udp, inside(5001), server(10, 53), 0)
	b.claim(Claim{Packet: u, Verdict: "opened", PortIn: gwRange, Behavior: reference.G3, Why: "a UDP flow"})
	p = b.out(50*ms, udp, inside1(5001), server(10, 53), 0)
	b.claim(Claim{Packet: p, Verdict: "opened", PortIn: gwRange, OtherPortThan: []int{u}, Behavior: reference.G3,
		Why: "UDP too: never two live flows to one destination IP:port on one public port"})
}

// natgwHolds: G4's holds, each on both sides of its end.
func natgwHolds(b *builder) {
	dst := server(10, 443)
	a, c := tcpFlow(5001, 443), tcpFlow(5002, 443)
	pa := b.handshake(0, a)
	pc := b.handshake(10*ms, c)
	// FIN from inside at 10 s: released at 75 s, whatever follows.
	p := b.out(10*sec, tcp, a.Src, dst, finAck)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: pa, Behavior: reference.G4, Why: "a FIN: the flow is held 65 s"})
	p = b.out(40*sec, tcp, a.Src, dst, psh)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: pa, Behavior: reference.G4, Why: "packets after the FIN are translated and do not move its end"})
	p = b.out(75*sec-ms, tcp, a.Src, dst, ack)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: pa, Behavior: reference.G4, Why: "FIN + 64.999 s: still held"})
	p = b.out(75*sec, tcp, a.Src, dst, ack)
	b.claim(Claim{Packet: p, Verdict: "reset", Behavior: reference.G6, Why: "FIN + 65 s: the flow is gone, its packet gets a RST (G6)"})
	b.event(EventClaim{At: 75 * sec, Kind: "released", Release: "fin", Cites: reference.G4, Inside: a.Src, Behavior: reference.G4, Why: "FIN at 10 s + 65 s"})
	// A RST from the server at 100 s: released at 116 s.
	p = b.reply(100*sec, tcp, dst, c.Src, rst)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: pc, Behavior: reference.G4, Why: "the server's RST is translated: the flow is held 16 s"})
	p = b.out(116*sec-ms, tcp, c.Src, dst, ack)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: pc, Behavior: reference.G4, Why: "RST + 15.999 s: still held"})
	p = b.out(116*sec, tcp, c.Src, dst, ack)
	b.claim(Claim{Packet: p, Verdict: "reset", Behavior: reference.G6, Why: "RST + 16 s: the flow is gone"})
	b.event(EventClaim{At: 116 * sec, Kind: "released", Release: "rst", Cites: reference.G4, Inside: c.Src, Behavior: reference.G4, Why: "RST at 100 s + 16 s"})
	// A SYN with no answer at 200 s: closed at 230 s; its own retransmission
	// does not move that.
	h := tcpFlow(5003, 443)
	ph := b.out(200*sec, tcp, h.Src, dst, syn)
	b.claim(Claim{Packet: ph, Verdict: "opened", PortIn: gwRange, Behavior: reference.G2, Why: "a new flow"})
	p = b.out(230*sec-ms, tcp, h.Src, dst, syn)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: ph, Behavior: reference.G4, Why: "the SYN again, 29.999 s on, still unanswered: the flow lives, half-open"})
	p = b.out(230*sec, tcp, h.Src, dst, ack)
	b.claim(Claim{Packet: p, Verdict: "reset", Behavior: reference.G6, Why: "30 s half-open with no answer: closed; its packet gets a RST"})
	b.event(EventClaim{At: 230 * sec, Kind: "released", Release: "idle", Cites: reference.G4, Inside: h.Src, Behavior: reference.G4,
		Why: "half-open 30 s from its first SYN: the retransmission does not restart it"})
	// UDP: idle 4 minutes, then its (public IP, port, destination) is held
	// 65 s: the flow's next packet opens a new flow on another port.
	u := inside(5004)
	pu := b.out(300*sec, udp, u, server(10, 53), 0)
	b.reply(300*sec+10*ms, udp, server(10, 53), u, 0)
	b.event(EventClaim{At: 540*sec + 10*ms, Kind: "released", Release: "idle", Cites: reference.G5, Inside: u, Behavior: reference.G5,
		Why: "UDP idle, 4 minutes after the reply"})
	p = b.out(540*sec+10*ms, udp, u, server(10, 53), 0)
	b.claim(Claim{Packet: p, Verdict: "opened", PortIn: gwRange, OtherPortThan: []int{pu}, Behavior: reference.G4,
		Why: "the released flow's port is held down 65 s for this destination: a new flow to it takes another"})
}

// natgwIdle: G5 with --idle-timeout 10m: TCP 10 minutes, UDP still 4.
func natgwIdle(b *builder) {
	dst := server(10, 443)
	a, a2, a3 := tcpFlow(5001, 443), tcpFlow(5002, 443), tcpFlow(5003, 443)
	b.handshake(0, a) // last packet at 2 ms
	pa2 := b.handshake(10*ms, a2)
	pa3 := b.handshake(20*ms, a3)
	dns := server(10, 53)
	u, u2 := inside(5004), inside(5005)
	b.out(1*sec, udp, u, dns, 0)
	b.reply(1*sec+10*ms, udp, dns, u, 0) // U idle from 1.010 s
	pu2 := b.out(1*sec+20*ms, udp, u2, dns, 0)
	b.reply(1*sec+30*ms, udp, dns, u2, 0) // U2 idle from 1.030 s
	// UDP: 4 minutes whatever the idle timeout.
	p := b.out(241*sec+10*ms, udp, u, dns, 0)
	b.claim(Claim{Packet: p, Verdict: "opened", PortIn: gwRange, Behavior: reference.G5, Why: "4 minutes after its last packet U is gone: a new flow"})
	p = b.out(241*sec+29*ms, udp, u2, dns, 0)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: pu2, Behavior: reference.G5, Why: "4 minutes less 1 ms after its last packet U2 lives"})
	b.event(EventClaim{At: 241*sec + 10*ms, Kind: "released", Release: "idle", Cites: reference.G5, Inside: u, Behavior: reference.G5,
		Why: "UDP's fixed 4 minutes, not the configured 10"})
	// A3 hears from its server at 300 s: traffic either way restarts.
	p = b.reply(300*sec, tcp, dst, a3.Src, psh)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: pa3, Behavior: reference.G5, Why: "a packet from the server restarts the idle timer too"})
	// TCP: 10 minutes.
	p = b.out(600*sec+2*ms, tcp, a.Src, dst, ack)
	b.claim(Claim{Packet: p, Verdict: "reset", Behavior: reference.G6, Why: "10 minutes after its last packet A is gone: a RST"})
	p = b.out(600*sec+11*ms, tcp, a2.Src, dst, ack)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: pa2, Behavior: reference.G5, Why: "10 minutes less 1 ms after its last packet A2 lives"})
	b.event(EventClaim{At: 600*sec + 2*ms, Kind: "released", Release: "idle", Cites: reference.G5, Inside: a.Src, Behavior: reference.G5,
		Why: "the configured 10 minutes from A's last packet"})
	b.event(EventClaim{At: 600*sec + 22*ms, Kind: "released", Release: "idle", Absent: true, Inside: a3.Src, Behavior: reference.G5,
		Why: "A3's server spoke at 300 s"})
	p = b.out(900*sec, tcp, a3.Src, dst, ack)
	b.claim(Claim{Packet: p, Verdict: "reset", Behavior: reference.G6, Why: "10 minutes after the server's packet A3 is gone"})
	b.event(EventClaim{At: 900 * sec, Kind: "released", Release: "idle", Cites: reference.G5, Inside: a3.Src, Behavior: reference.G5,
		Why: "10 minutes from the server's packet at 300 s"})
}

// natgwRSTUnknown: G6 from both sides.
func natgwRSTUnknown(b *builder) {
	dst := server(10, 443)
	for i, c := range []struct {
		flags   reference.TCPFlags
		verdict string
		why     string
	}{
		{ack, "reset", "an ACK from inside with no flow: a RST back to the inside host, none to the server"},
		{finAck, "reset", "a FIN from inside with no flow: the same"},
		{psh, "reset", "data from inside with no flow: the same (nothing is picked up)"},
		{rst, "dropped:unsolicited", "a RST is never answered with a RST"},
	} {
		p := b.out(time.Duration(i)*10*ms, tcp, inside(uint16(5001+i)), dst, c.flags)
		b.claim(Claim{Packet: p, Verdict: c.verdict, Behavior: reference.G6, Why: c.why})
	}
	pub := func(port uint16) reference.Tuple { return reference.Tuple{Dst: snat(port)} }
	for i, c := range []struct {
		proto   reference.Proto
		flags   reference.TCPFlags
		verdict string
		id      reference.Behavior
		why     string
	}{
		{tcp, ack, "reset", reference.G6, "an ACK from outside to a public port with no flow: a RST back to the server"},
		{tcp, syn, "reset", reference.G6, "an unsolicited SYN from outside: the same"},
		{tcp, rst, "dropped:unsolicited", reference.G6, "a RST from outside is never answered"},
		{udp, 0, "dropped:unsolicited", reference.G7, "UDP with no flow: dropped, no RST"},
	} {
		p := b.outside(100*ms+time.Duration(i)*10*ms, c.proto, server(20, 443), pub(uint16(40000+i)).Dst, c.flags)
		b.claim(Claim{Packet: p, Verdict: c.verdict, Behavior: c.id, Why: c.why})
	}
	o := tcpFlow(5010, 443)
	po := b.out(200*ms, tcp, o.Src, dst, syn)
	b.claim(Claim{Packet: po, Verdict: "opened", PortIn: gwRange, Behavior: reference.G2, Why: "only a SYN opens a flow"})
	p := b.reply(210*ms, tcp, dst, o.Src, synAck)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: po, Behavior: reference.G7, Why: "its answer"})
	b.out(1*sec, tcp, o.Src, dst, rst)
	p = b.out(17*sec, tcp, o.Src, dst, psh)
	b.claim(Claim{Packet: p, Verdict: "reset", Behavior: reference.G6, Why: "16 s after the RST the flow is gone (G4): its late packet gets a RST, toward the inside host only"})
}

// natgwInbound: G7's UDP filter, G8's protocols.
func natgwInbound(b *builder) {
	a := inside(5001)
	p1 := b.out(0, udp, a, server(10, 53), 0)
	b.claim(Claim{Packet: p1, Verdict: "opened", PortIn: gwRange, Behavior: reference.G2, Why: "a UDP flow"})
	p := b.reply(10*ms, udp, server(10, 53), a, 0)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: p1, Behavior: reference.G7, Why: "a reply from the destination IP:port"})
	p = b.reply(20*ms, udp, server(10, 5353), a, 0)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.G7, Why: "another port of the destination IP: not a reply"})
	p = b.reply(30*ms, udp, server(20, 53), a, 0)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsolicited", Behavior: reference.G7, Why: "another IP: not a reply"})
	p2 := b.out(40*ms, udp, a, server(10, 5353), 0)
	b.claim(Claim{Packet: p2, Verdict: "opened", PortIn: gwRange, Behavior: reference.G3, Why: "to the other port: a flow of its own"})
	p = b.reply(50*ms, udp, server(10, 5353), a, 0)
	b.claim(Claim{Packet: p, Verdict: "translated", SamePortAs: p2, Behavior: reference.G7, Why: "now a reply of that flow"})
	p = b.out(60*ms, icmp, inside(7), server(10, 0), 0)
	b.claim(Claim{Packet: p, Verdict: "dropped:unsupported-protocol", Behavior: reference.G8, Why: "ICMP is not translated"})
	b.Packets = append(b.Packets, reference.Packet{Time: b.at(70 * ms), Dir: reference.Outbound, Fragment: true,
		Tuple: reference.Tuple{Proto: udp, Src: a, Dst: server(10, 53)}})
	b.claim(Claim{Packet: len(b.Packets), Verdict: "dropped:fragment", Behavior: reference.G8, Why: "an IP fragment is dropped"})
}
