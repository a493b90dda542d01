package specs

import (
	"fmt"
	"time"

	. "github.com/onsi/gomega"

	"github.com/natcheck/natcheck/reference"
)

// tp is one packet of the flow under a timer check: its time, direction
// and flags.
type tp struct {
	at    time.Duration
	dir   reference.Dir
	flags reference.TCPFlags
}

// timerCheck builds a check of one release time T. An instance of 8 ports
// keeps 7 established flows to destination D alive; the flow under test
// takes the 8th and gets packets (its handshake first: a stateful NAT
// drops a client's ACK or FIN on a flow that never saw a SYN-ACK, which
// is no timer's doing); then, in one run, at T − ε a new flow to D is refused
// (the slot is held) and the flow's reply is still translated; in another
// run, at T a new flow to D is given the flow's port, the only one free.
func timerCheck(id reference.Behavior, title string, idle time.Duration, packets []tp, release time.Duration) Check {
	return Check{ID: id, Title: title, Run: func(p *Probe) {
		for _, probe := range []time.Duration{-p.Epsilon(), 0} {
			c := config(1, 1, 8)
			c.IdleTimeout = idle
			s := p.Open(c)
			d := server(0, 443)
			inside := ep(backend(0), 4000)
			establishAll(p, s, 0, s.Fill(0, tcp, backend(0), 1000, 7, d))
			last := time.Duration(0)
			keepAlive := func(to time.Duration) {
				for ; last+3*minute < to; last += 3 * minute {
					for i := range 7 {
						p.G.Expect(s.Out(last+3*minute, tcp, ep(backend(0), uint16(1000+i)), d, ack)).To(BeForwarded())
					}
				}
			}
			first := play(p, s, tcp, inside, d, packets, keepAlive)
			at := release + probe
			keepAlive(at)
			p.Notef(at, "probe at T%+v (T = %v)", probe, release)
			next := s.Out(at, tcp, ep(backend(0), 4001), d, syn)
			if probe < 0 {
				p.G.Expect(next).To(BeDropped(), "at T − ε the slot is still held")
				p.G.Expect(s.Reply(at, first, ack)).To(BeForwardedTo(inside), "at T − ε the flow still translates (B13)")
				continue
			}
			p.G.Expect([]Outcome{first, next}).To(ShareOneSNATPort(), "at T the released slot is free for a new flow (B13)")
		}
	}}
}

func timerChecks() []Check {
	B10, B11, B12 := reference.B10, reference.B11, reference.B12
	return []Check{
		timerCheck(B10, "a FIN from inside at 10 s releases the flow at 250 s", 0,
			then(handshake, tp{10 * sec, out, fin | ack}), 250*sec),
		timerCheck(B10, "a FIN from outside at 10 s releases the flow at 250 s", 0,
			then(handshake, tp{10 * sec, in, fin | ack}), 250*sec),
		timerCheck(B10, "later packets (the other FIN at 100 s, an ACK at 249 s) do not restart the FIN timer", 0,
			then(handshake, tp{10 * sec, out, fin | ack}, tp{100 * sec, in, fin | ack}, tp{249 * sec, out, ack}), 250*sec),
		timerCheck(B11, "a RST from inside at 5 s releases the flow at 20 s", 0,
			then(handshake, tp{5 * sec, out, rst}), 20*sec),
		timerCheck(B11, "a RST from outside at 5 s releases the flow at 20 s", 0,
			then(handshake, tp{5 * sec, in, rst | ack}), 20*sec),
		timerCheck(B11, "a RST 10 s after a FIN shortens the FIN timer to RST + 15 s", 0,
			then(handshake, tp{10 * sec, out, fin | ack}, tp{20 * sec, in, rst}), 35*sec),
		timerCheck(B11, "a RST late after a FIN does not lengthen the FIN timer", 0,
			then(handshake, tp{10 * sec, out, fin | ack}, tp{240 * sec, in, rst}), 250*sec),
		timerCheck(B11, "a FIN after a RST does not lengthen the RST timer", 0,
			then(handshake, tp{10 * sec, out, rst}, tp{12 * sec, in, fin | ack}), 25*sec),
		timerCheck(B11, "a later RST does not move the RST timer", 0,
			then(handshake, tp{10 * sec, out, rst}, tp{20 * sec, in, rst}), 25*sec),
		timerCheck(B12, "a TCP flow idle for the default 4 minutes is released", 0,
			handshake, 4*minute+2*time.Millisecond),
		timerCheck(B12, "an inbound packet restarts the idle timer", 0,
			then(handshake, tp{3 * minute, in, ack}), 7*minute),
		timerCheck(B12, "an outbound packet restarts the idle timer", 0,
			then(handshake, tp{2 * minute, out, ack}), 6*minute),
		timerCheck(B12, "an outbound rule's idle timeout of 120 minutes applies", 120*minute,
			then(handshake, tp{time.Hour, out, ack}), 3*time.Hour),
		timerCheck(B12, "a FIN ends the idle timer: idle 30 minutes, FIN at 1 minute, released at 5 minutes", 30*minute,
			then(handshake, tp{minute, out, fin | ack}), 5*minute),
		timerCheck(reference.B13, "a RST flow whose release time is T translates at T − ε and its slot is free at T", 0,
			then(handshake, tp{5 * sec, out, rst}), 20*sec),
		timerCheck(reference.B13, "an idle flow whose release time is T translates at T − ε and its slot is free at T", 0,
			then(handshake, tp{30 * sec, in, ack}), 30*sec+4*minute),
		{ID: B12, Title: "a dropped inbound packet does not restart a UDP mapping's idle timer",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				o := s.Out(0, udp, ep(backend(0), 5000), server(0, 53), 0)
				p.G.Expect(o).To(BeForwarded())
				p.G.Expect(s.In(3*minute, udp, server(0, 99), o.SNAT(), 0)).To(BeDropped())
				p.G.Expect(s.In(4*minute-p.Epsilon(), udp, server(0, 53), o.SNAT(), 0)).To(BeForwardedTo(ep(backend(0), 5000)))
				s = p.Open(config(1, 1, 0))
				o = s.Out(0, udp, ep(backend(0), 5000), server(0, 53), 0)
				p.G.Expect(s.In(3*minute, udp, server(0, 99), o.SNAT(), 0)).To(BeDropped())
				p.G.Expect(s.In(4*minute, udp, server(0, 53), o.SNAT(), 0)).To(BeDropped(), "the mapping idled out at 4 minutes")
			}},
		{ID: B12, Title: "a UDP mapping idle for 4 minutes is released; a reply at 4 min − ε still comes back",
			Run: func(p *Probe) {
				for _, at := range []time.Duration{4*minute - p.Epsilon(), 4 * minute} {
					s := p.Open(config(1, 1, 0))
					o := s.Out(0, udp, ep(backend(0), 5000), server(0, 53), 0)
					r := s.In(at, udp, server(0, 53), o.SNAT(), 0)
					if at < 4*minute {
						p.G.Expect(r).To(BeForwardedTo(ep(backend(0), 5000)))
					} else {
						p.G.Expect(r).To(BeDropped())
					}
				}
			}},
	}
}

// idleBoundsChecks are id's checks that idle timeouts of 4 to 120 whole
// minutes are accepted and others rejected (B12, G5); what names the
// setting in the titles.
func idleBoundsChecks(id reference.Behavior, what string) []Check {
	var cs []Check
	for _, tc := range []struct {
		d  time.Duration
		ok bool
	}{
		{4 * minute, true}, {17 * minute, true}, {120 * minute, true},
		{3 * minute, false}, {121 * minute, false}, {4*minute + 30*sec, false},
	} {
		verb := "is rejected"
		if tc.ok {
			verb = "is accepted"
		}
		cs = append(cs, Check{ID: id, Title: fmt.Sprintf("%s of %v %s (4–120 whole minutes)", what, tc.d, verb),
			Run: func(p *Probe) {
				c := config(1, 1, 0)
				c.IdleTimeout = tc.d
				_, err := p.TryOpen(c)
				if tc.ok {
					p.G.Expect(err).NotTo(HaveOccurred())
				} else {
					p.G.Expect(err).To(BeRejectedConfig(""))
				}
			}})
	}
	return cs
}

func expiryChecks() []Check {
	// establish opens flow 10.0.0.1:1000 → D through the handshake and a
	// never-established one from :2000 → server 2; it returns the first.
	establish := func(p *Probe, s *Session) Outcome {
		o := s.Out(0, tcp, ep(backend(0), 1000), server(0, 443), syn)
		p.G.Expect(s.Reply(time.Millisecond, o, syn|ack)).To(BeForwarded())
		p.G.Expect(s.Out(2*time.Millisecond, tcp, ep(backend(0), 1000), server(0, 443), ack)).To(BeForwarded())
		p.G.Expect(s.Out(3*time.Millisecond, tcp, ep(backend(0), 2000), server(1, 443), syn)).To(BeForwarded())
		return o
	}
	T := 4*minute + 2*time.Millisecond
	return append(idleBoundsChecks(reference.B12, "an idle timeout"),
		Check{ID: reference.B14, Title: "idle expiry is silent: nothing is sent at expiry and a later packet of the flow is dropped",
			Run: func(p *Probe) {
				s := p.Open(config(1, 1, 0))
				o := establish(p, s)
				p.G.Expect(s.Wait(T - p.Epsilon())).To(BeEmpty())
				p.G.Expect(s.Wait(T+4*minute)).To(BeEmpty(), "no packet at expiry")
				p.G.Expect(s.Reply(T+5*minute, o, ack)).To(BeDropped())
			}},
		Check{ID: reference.B14, Title: "with tcpResetOnIdle an established flow that idles out gets a RST to both endpoints, and its later packets are answered with a RST; a never-established one idles out silently",
			Needs: CapResetOnIdle,
			Run: func(p *Probe) {
				c := config(1, 1, 0)
				c.TCPResetOnIdle = true
				s := p.Open(c)
				o := establish(p, s)
				p.G.Expect(s.Wait(T-p.Epsilon())).To(BeEmpty(), "nothing before expiry")
				emitted := s.Wait(T)
				p.G.Expect(emitted).To(HaveLen(2), "one RST to each endpoint of the established flow")
				// The never-established flow idles out 1 ms later: silently.
				p.G.Expect(s.Wait(T+time.Millisecond+p.Epsilon())).To(BeEmpty(), "no RST for the never-established flow when it idles out")
				p.G.Expect(emitted).To(ContainElement(SatisfyAll(
					HaveField("Dir", in), HaveField("Tuple.Dst", ep(backend(0), 1000)), HaveField("Flags", WithTransform(func(f reference.TCPFlags) bool { return f.Has(rst) }, BeTrue())))))
				p.G.Expect(emitted).To(ContainElement(SatisfyAll(
					HaveField("Dir", out), HaveField("Tuple.Src", o.SNAT()), HaveField("Tuple.Dst", server(0, 443)), HaveField("Flags", WithTransform(func(f reference.TCPFlags) bool { return f.Has(rst) }, BeTrue())))))
				p.G.Expect(s.Out(5*minute, tcp, ep(backend(0), 1000), server(0, 443), ack|psh)).To(BeAnsweredWithRST())
				p.G.Expect(s.Reply(5*minute, o, ack)).To(BeAnsweredWithRST())
			}},
	)
}

// establishAll answers every forwarded flow of burst with a SYN-ACK from
// its server and the client's ACK, all at Origin+at: the flows are
// established, as a stateful NAT needs them to be before it translates
// their later packets.
func establishAll(p *Probe, s *Session, at time.Duration, burst []Outcome) {
	for _, o := range burst {
		p.G.Expect(o).To(BeForwarded())
		p.G.Expect(s.Reply(at, o, syn|ack)).To(BeForwardedTo(o.Sent.Tuple.Src))
		p.G.Expect(s.Out(at, tcp, o.Sent.Tuple.Src, o.Sent.Tuple.Dst, ack)).To(BeForwarded())
	}
}
