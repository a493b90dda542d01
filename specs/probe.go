package specs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/onsi/gomega"

	"github.com/natcheck/natcheck/reference"
)

// StepKind says what a transcript step records.
type StepKind uint8

// Step kinds.
const (
	// StepSend: a packet was sent; Delivery says what came out.
	StepSend StepKind = iota + 1
	// StepWait: time passed; Emitted holds what the NAT sent meanwhile.
	StepWait
	// StepNote: a configuration, a pool change or a remark; Note says it.
	StepNote
)

// Step is one entry of a transcript: what the check did at a time since
// Origin and what the NAT answered.
type Step struct {
	At       time.Duration
	Kind     StepKind
	Sent     reference.Packet
	Delivery Delivery
	Emitted  []reference.Packet
	Note     string
}

// String formats the step as one or more lines: "+10s out tcp
// 10.0.0.1:1000->198.51.100.1:443 S => tcp 203.0.113.1:1024->… S".
func (s Step) String() string {
	at := "+" + s.At.String()
	switch s.Kind {
	case StepSend:
		side := "out"
		if s.Sent.Dir == reference.Inbound {
			side = "in "
		}
		line := fmt.Sprintf("%s %s %s", at, side, pktString(s.Sent))
		if s.Sent.Fragment {
			line += " (fragment)"
		}
		if s.Delivery.Forwarded {
			line += " => " + s.Delivery.Packet.Tuple.String()
		} else {
			line += " => nothing"
			if s.Delivery.Dropped != "" {
				line += " (dropped: " + s.Delivery.Dropped + ")"
			}
		}
		for _, e := range s.Delivery.Emitted {
			line += "\n" + strings.Repeat(" ", len(at)) + " NAT sent " + e.Dir.String() + " " + pktString(e)
		}
		return line
	case StepWait:
		line := at + " wait"
		if len(s.Emitted) == 0 {
			return line + ": nothing sent"
		}
		for _, e := range s.Emitted {
			line += "\n" + strings.Repeat(" ", len(at)) + " NAT sent " + e.Dir.String() + " " + pktString(e)
		}
		return line
	}
	return at + " " + s.Note
}

func pktString(p reference.Packet) string {
	s := p.Tuple.String()
	if p.Tuple.Proto == reference.TCP {
		s += " " + p.Flags.String()
	}
	if p.Embedded != nil {
		s += " quoting " + p.Embedded.String()
	}
	return s
}

// Transcript is the evidence of one check run: every packet sent and
// observed, with its time, in order.
type Transcript []Step

// Format renders the transcript, one step a line, keeping the first head
// and the last tail steps of a long one (bulk flow openings) and saying how
// many were left out.
func (t Transcript) Format(head, tail int) string {
	var b strings.Builder
	for i, s := range t {
		if len(t) > head+tail && i == head {
			fmt.Fprintf(&b, "… %d steps left out …\n", len(t)-head-tail)
		}
		if len(t) > head+tail && i >= head && i < len(t)-tail {
			continue
		}
		b.WriteString(s.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// String renders the transcript with the first 12 and the last 40 steps.
func (t Transcript) String() string { return t.Format(12, 40) }

// checkFailure is the panic value that stops a check at its first failed
// assertion (the fail handler of the Gomega a Probe carries).
type checkFailure struct{ msg string }

// harnessFailure stops a check whose NAT returned an error: the NAT could
// not be driven, which is not a verdict on a behaviour.
type harnessFailure struct{ err error }

// notRun stops a check whose NAT cannot be configured as it asks
// (ErrUnsupported): the check is not checked, msg says why ("lacks …").
type notRun struct{ msg string }

// Probe is what a check runs with: the implementation, a Gomega whose
// failures stop the check, and the transcript every session writes to.
type Probe struct {
	// G is the Gomega to assert with; a failure ends the check.
	G gomega.Gomega

	ctx        context.Context
	impl       Impl
	transcript Transcript
	open       []NAT
}

func newProbe(ctx context.Context, impl Impl) *Probe {
	p := &Probe{ctx: ctx, impl: impl}
	p.G = gomega.NewGomega(func(msg string, _ ...int) { panic(checkFailure{msg}) })
	return p
}

// Epsilon is the offset of boundary probes: a release at T is checked at
// T − Epsilon and at T (B13). 1 ms in virtual time.
func (p *Probe) Epsilon() time.Duration { return p.impl.epsilon() }

// Profile returns the profile of the implementation under test, with its
// numbers (a copy: changing it changes nothing).
func (p *Probe) Profile() reference.Profile { return p.impl.profile() }

// OpenTweaked starts a NAT for cfg with the implementation's profile
// changed by tweak (a filtering behaviour, say); the check fails if the
// configuration is rejected.
func (p *Probe) OpenTweaked(cfg reference.Config, tweak func(*reference.Profile)) *Session {
	cfg.Profile = p.impl.profile()
	tweak(&cfg.Profile)
	return p.Open(cfg)
}

// Notef records a remark in the transcript.
func (p *Probe) Notef(at time.Duration, format string, args ...any) {
	p.transcript = append(p.transcript, Step{At: at, Kind: StepNote, Note: fmt.Sprintf(format, args...)})
}

// Open starts a NAT for cfg; the check fails if the configuration is
// rejected.
func (p *Probe) Open(cfg reference.Config) *Session {
	nat, err := p.TryOpen(cfg)
	if err != nil {
		panic(checkFailure{fmt.Sprintf("configuration %s rejected: %v", describe(cfg), err)})
	}
	return nat
}

// TryOpen starts a NAT for cfg and returns the error of a rejected
// configuration. A configuration error is returned; any other error stops
// the check as a harness failure.
func (p *Probe) TryOpen(cfg reference.Config) (*Session, error) {
	if cfg.Profile.Name == "" {
		// The zero Profile stays for an azure-lb implementation: it means
		// azure-lb to every NAT that knows only that profile.
		cfg.Profile = p.impl.Profile
	}
	if p.impl.OneAtATime {
		if err := p.settle(); err != nil {
			panic(harnessFailure{err})
		}
		p.close()
	}
	nat, err := p.impl.Open(p.ctx, cfg)
	if err != nil {
		p.Notef(0, "configure %s: rejected: %v", describe(cfg), err)
		switch {
		case errors.Is(err, ErrUnsupported):
			// A NAT natcheck cannot configure so (a third-party device's
			// configuration is its own): nothing is known.
			panic(notRun{"lacks the configuration: " + err.Error()})
		case !errors.Is(err, reference.ErrConfig):
			panic(harnessFailure{err})
		}
		return nil, err
	}
	p.open = append(p.open, nat)
	p.Notef(0, "configure %s", describe(cfg))
	return &Session{p: p, nat: nat}, nil
}

// settle asks every open NAT that can tell (a Settler) whether what it
// was judged on still holds.
func (p *Probe) settle() error {
	for _, n := range p.open {
		if st, ok := n.(Settler); ok {
			if err := st.Settle(p.ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Probe) close() {
	for _, n := range p.open {
		n.Close()
	}
	p.open = nil
}

func describe(c reference.Config) string {
	s := fmt.Sprintf("%d frontend IP(s), pool %d (%d backends)", len(c.Frontends), max(c.PoolSize, len(c.Backends)), len(c.Backends))
	if c.PortsPerInstance != 0 {
		s += fmt.Sprintf(", %d ports per instance", c.PortsPerInstance)
	} else {
		s += ", default allocation"
	}
	if c.IdleTimeout != 0 {
		s += ", idle " + c.IdleTimeout.String()
	}
	if c.TCPResetOnIdle {
		s += ", tcpResetOnIdle"
	}
	if c.Protocols != reference.AllProtocols {
		s += ", protocol " + c.Protocols.String()
	}
	if c.Strict {
		s += ", strict"
	}
	return s
}

// Session drives one open NAT and records what it does.
type Session struct {
	p   *Probe
	nat NAT
}

// Outcome is one sent packet and what came out of the NAT for it.
type Outcome struct {
	Sent reference.Packet
	Delivery
}

// SNAT is the SNAT endpoint a forwarded outbound packet left with (the
// zero AddrPort otherwise).
func (o Outcome) SNAT() netip.AddrPort {
	if !o.Forwarded || o.Sent.Dir != reference.Outbound {
		return netip.AddrPort{}
	}
	return o.Packet.Tuple.Src
}

// String describes the outcome for failure messages.
func (o Outcome) String() string {
	s := Step{Kind: StepSend, Sent: o.Sent, Delivery: o.Delivery}
	return strings.TrimPrefix(s.String(), "+0s ")
}

// Plan is the allocation the NAT runs with now.
func (s *Session) Plan() reference.Plan { return s.nat.Plan() }

// Send sends one packet and records it.
func (s *Session) Send(p reference.Packet) Outcome {
	d, err := s.nat.Send(s.p.ctx, p)
	if err != nil {
		panic(harnessFailure{err})
	}
	s.p.transcript = append(s.p.transcript, Step{At: p.Time.Sub(Origin), Kind: StepSend, Sent: p, Delivery: d})
	return Outcome{Sent: p, Delivery: d}
}

// Out sends a packet from inside (src is a backend's endpoint) at Origin+at.
func (s *Session) Out(at time.Duration, proto reference.Proto, src, dst netip.AddrPort, flags reference.TCPFlags) Outcome {
	return s.Send(reference.Packet{Time: Origin.Add(at), Dir: reference.Outbound, Tuple: reference.Tuple{Proto: proto, Src: src, Dst: dst}, Flags: flags})
}

// In sends a packet from outside (dst is a SNAT endpoint) at Origin+at.
func (s *Session) In(at time.Duration, proto reference.Proto, src, dst netip.AddrPort, flags reference.TCPFlags) Outcome {
	return s.Send(reference.Packet{Time: Origin.Add(at), Dir: reference.Inbound, Tuple: reference.Tuple{Proto: proto, Src: src, Dst: dst}, Flags: flags})
}

// Reply sends the server's answer to the flow of o (an outbound outcome
// that was forwarded) at Origin+at.
func (s *Session) Reply(at time.Duration, o Outcome, flags reference.TCPFlags) Outcome {
	return s.In(at, o.Sent.Tuple.Proto, o.Sent.Tuple.Dst, o.SNAT(), flags)
}

// Fill opens n flows of proto from inside, source ports base, base+1, …,
// to dst, all at Origin+at (TCP with SYN).
func (s *Session) Fill(at time.Duration, proto reference.Proto, inside netip.Addr, base, n int, dst netip.AddrPort) []Outcome {
	flags := reference.TCPFlags(0)
	if proto == reference.TCP {
		flags = reference.SYN
	}
	out := make([]Outcome, n)
	for i := range n {
		out[i] = s.Out(at, proto, netip.AddrPortFrom(inside, uint16(base+i)), dst, flags)
	}
	return out
}

// FillFrom opens one flow of proto from each of inside's source ports, in
// order, to dst, all at Origin+at (TCP with SYN).
func (s *Session) FillFrom(at time.Duration, proto reference.Proto, inside netip.Addr, ports []uint16, dst netip.AddrPort) []Outcome {
	flags := reference.TCPFlags(0)
	if proto == reference.TCP {
		flags = reference.SYN
	}
	out := make([]Outcome, len(ports))
	for i, port := range ports {
		out[i] = s.Out(at, proto, netip.AddrPortFrom(inside, port), dst, flags)
	}
	return out
}

// Wait lets time pass until Origin+at and returns what the NAT sent.
func (s *Session) Wait(at time.Duration) []reference.Packet {
	emit, err := s.nat.Wait(s.p.ctx, Origin.Add(at))
	if err != nil {
		panic(harnessFailure{err})
	}
	s.p.transcript = append(s.p.transcript, Step{At: at, Kind: StepWait, Emitted: emit})
	return emit
}

// SetPool changes the pool at Origin+at.
func (s *Session) SetPool(at time.Duration, backends []netip.Addr, poolSize int) {
	s.p.Notef(at, "pool change: %d backends, pool %d", len(backends), max(poolSize, len(backends)))
	if err := s.nat.SetPool(s.p.ctx, Origin.Add(at), backends, poolSize); err != nil {
		panic(harnessFailure{err})
	}
}
