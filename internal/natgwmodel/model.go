// Package natgwmodel is a deliberately simple, slow model of the
// azure-natgw profile (SEMANTICS.md G1–G8), written from that document for
// differential tests of the reference engine's azure-natgw profile: flows
// in a slice, every question answered by a scan, time compared with
// time.Time. It shares no code with the engine, only its public types.
//
// The gateway picks a public IP and port at random (G2): [Model.Check]
// accepts any choice G3 and G4 allow and follows it; [Model.Process] makes
// its own (a seeded random draw, with its own generator), so the model can
// also stand alone as a NAT.
//
// The reading of G4 and G5 fixed here, where Azure's documents are terse:
// a FIN (either way) or a RST holds the flow until FIN + 65 s or RST + 16 s
// (a RST can only shorten the hold; packets are translated until then and
// do not restart it) and that is its hold-down; a SYN with no inbound
// answer closes the flow 30 s after the SYN (outbound retransmissions do
// not extend it); an idle UDP flow is released after 4 minutes and its
// (public IP, port, destination IP:port) stays unusable for 65 s more.
package natgwmodel

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/natcheck/natcheck/reference"
)

type flow struct {
	proto                reference.Proto
	inst                 int
	inside, remote, snat netip.AddrPort
	deadline             time.Time
	held                 bool // FIN or RST fixed the release time
	answered             bool // an inbound packet was translated
}

// hold is a (public endpoint, destination) kept from reuse (G4).
type hold struct {
	proto        reference.Proto
	snat, remote netip.AddrPort
	until        time.Time
}

// Model is one NAT gateway's state. Its zero value is not usable: call
// New.
type Model struct {
	prof     reference.Profile
	idle     time.Duration
	fronts   []netip.Addr
	backends []netip.Addr
	flows    []*flow
	holds    []hold
	now      time.Time
	seeded   bool
	rng      *rand.Rand // the model's own random choices (Process)
}

// New returns a model of cfg (its Profile the azure-natgw one).
func New(cfg reference.Config) (*Model, error) {
	if cfg.Profile.Name != reference.NameAzureNATGW {
		return nil, fmt.Errorf("natgwmodel: profile %q, want azure-natgw", cfg.Profile.Name)
	}
	if n := len(cfg.Frontends); n < 1 || n > 16 {
		return nil, &reference.ConfigError{Field: "frontends", Value: n, Behavior: reference.G1, Reason: "want 1 to 16 public IPs"}
	}
	if cfg.PortsPerInstance != 0 {
		return nil, &reference.ConfigError{Field: "ports per instance", Value: cfg.PortsPerInstance, Behavior: reference.G1, Reason: "a NAT gateway has no per-instance quota"}
	}
	idle := cfg.IdleTimeout
	if idle == 0 {
		idle = 4 * time.Minute
	}
	if idle < 4*time.Minute || idle > 120*time.Minute || idle%time.Minute != 0 {
		return nil, &reference.ConfigError{Field: "idle timeout", Value: idle, Behavior: reference.G5, Reason: "want 4 to 120 whole minutes"}
	}
	return &Model{prof: cfg.Profile, idle: idle, fronts: cfg.Frontends, backends: cfg.Backends,
		rng: rand.New(rand.NewPCG(cfg.Profile.Seed, 0x6e6174677721))}, nil
}

// Flows returns the number of live flows.
func (m *Model) Flows() int { return len(m.flows) }

// Deadlines returns every live flow's release time and every hold-down's
// end, earliest first.
func (m *Model) Deadlines() []time.Time {
	var ds []time.Time
	for _, f := range m.flows {
		ds = append(ds, f.deadline)
	}
	for _, h := range m.holds {
		ds = append(ds, h.until)
	}
	slices.SortFunc(ds, func(a, b time.Time) int { return a.Compare(b) })
	return ds
}

// Advance releases every flow due at or before t, in order of release
// time, starting a UDP flow's hold-down at its release.
func (m *Model) Advance(t time.Time) error {
	if m.seeded && t.Before(m.now) {
		return fmt.Errorf("natgwmodel: time %v before %v", t, m.now)
	}
	m.now, m.seeded = t, true
	for _, f := range m.flows {
		if !f.deadline.After(t) && f.proto == reference.UDP {
			m.holds = append(m.holds, hold{f.proto, f.snat, f.remote, f.deadline.Add(m.prof.Gateway.UDPHoldDown)})
		}
	}
	m.flows = slices.DeleteFunc(m.flows, func(f *flow) bool { return !f.deadline.After(t) })
	m.holds = slices.DeleteFunc(m.holds, func(h hold) bool { return !h.until.After(t) })
	return nil
}

// Process runs p through the model, which makes its own choices, and
// returns its verdict and the packets the gateway sent (G6 RSTs).
func (m *Model) Process(p reference.Packet) (reference.Verdict, []reference.Packet, error) {
	return m.step(p, nil)
}

// Check runs p through the model and reports whether got and gotEmit, the
// engine's verdict and packets, are what the profile allows; a random
// choice of the engine that G2–G4 allow is taken.
func (m *Model) Check(p reference.Packet, got reference.Verdict, gotEmit []reference.Packet) error {
	want, emit, err := m.step(p, &got)
	if err != nil {
		return err
	}
	ok := want.Action == got.Action && want.Reason == got.Reason && want.Behavior == got.Behavior &&
		want.Instance == got.Instance && want.NewFlow == got.NewFlow && (want.Action != reference.Translated || want.Tuple == got.Tuple)
	if !ok || !slices.Equal(emit, gotEmit) {
		return fmt.Errorf("natgwmodel: %v %v %v: engine %v %v, model %v %v", p.Dir, p.Tuple, p.Flags, got, gotEmit, want, emit)
	}
	return nil
}

func (m *Model) step(p reference.Packet, got *reference.Verdict) (reference.Verdict, []reference.Packet, error) {
	if err := m.Advance(p.Time); err != nil {
		return reference.Verdict{}, nil, err
	}
	tu := p.Tuple
	drop := func(r reference.DropReason, b reference.Behavior, inst int) (reference.Verdict, []reference.Packet, error) {
		return reference.Verdict{Action: reference.Dropped, Reason: r, Behavior: b, Instance: inst}, nil, nil
	}
	if p.Fragment || (tu.Proto != reference.TCP && tu.Proto != reference.UDP) {
		r := reference.DropUnsupported
		if p.Fragment {
			r = reference.DropFragment
		}
		return drop(r, reference.G8, -1)
	}
	// reset answers a TCP packet with no flow with a RST to its sender
	// (G6); a RST itself is never answered.
	reset := func(inst int) (reference.Verdict, []reference.Packet, error) {
		if p.Flags.Has(reference.RST) {
			return drop(reference.DropUnsolicited, reference.G6, inst)
		}
		back := reference.Inbound
		if p.Dir == reference.Inbound {
			back = reference.Outbound
		}
		rst := reference.Packet{Time: p.Time, Dir: back, Tuple: tu.Reverse(), Flags: reference.RST | reference.ACK}
		return reference.Verdict{Action: reference.Reset, Reason: reference.DropUnsolicited, Behavior: reference.G6, Instance: inst}, []reference.Packet{rst}, nil
	}
	if p.Dir == reference.Inbound {
		for _, f := range m.flows {
			if f.proto == tu.Proto && f.snat == tu.Dst && f.remote == tu.Src {
				m.touch(f, p, false)
				return reference.Verdict{Action: reference.Translated, Behavior: reference.G7, Instance: f.inst,
					Tuple: reference.Tuple{Proto: tu.Proto, Src: tu.Src, Dst: f.inside}}, nil, nil
			}
		}
		if tu.Proto == reference.TCP && slices.Contains(m.fronts, tu.Dst.Addr()) {
			return reset(-1)
		}
		return drop(reference.DropUnsolicited, reference.G7, -1)
	}
	for _, f := range m.flows {
		if f.proto == tu.Proto && f.inside == tu.Src && f.remote == tu.Dst {
			m.touch(f, p, true)
			return reference.Verdict{Action: reference.Translated, Behavior: reference.G3, Instance: f.inst,
				Tuple: reference.Tuple{Proto: tu.Proto, Src: f.snat, Dst: tu.Dst}}, nil, nil
		}
	}
	inst := slices.Index(m.backends, tu.Src.Addr())
	if inst < 0 {
		return drop(reference.DropNoInstance, reference.NoBehavior, -1)
	}
	if tu.Proto == reference.TCP && p.Flags&(reference.SYN|reference.ACK) != reference.SYN {
		return reset(inst)
	}
	snat, ok, err := m.choose(tu, got)
	if err != nil {
		return reference.Verdict{}, nil, err
	}
	if !ok {
		return drop(reference.DropExhausted, reference.G3, inst)
	}
	f := &flow{proto: tu.Proto, inst: inst, inside: tu.Src, remote: tu.Dst, snat: snat}
	if tu.Proto == reference.TCP {
		f.deadline, f.held = p.Time.Add(m.prof.Gateway.HalfOpen), false
	}
	m.flows = append(m.flows, f)
	m.touch(f, p, true)
	return reference.Verdict{Action: reference.Translated, Behavior: reference.G2, Instance: inst, NewFlow: true,
		Tuple: reference.Tuple{Proto: tu.Proto, Src: snat, Dst: tu.Dst}}, nil, nil
}

// touch applies a translated packet to f: G4's holds, the half-open
// close, G5's idle timers.
func (m *Model) touch(f *flow, p reference.Packet, out bool) {
	if !out {
		f.answered = true
	}
	if f.proto == reference.UDP {
		f.deadline = p.Time.Add(m.prof.Gateway.UDPIdle)
		return
	}
	if p.Flags.Has(reference.RST) {
		if d := p.Time.Add(m.prof.RSTHold); !f.held || d.Before(f.deadline) {
			f.deadline, f.held = d, true
		}
	}
	if p.Flags.Has(reference.FIN) && !f.held {
		f.deadline, f.held = p.Time.Add(m.prof.FINHold), true
	}
	if f.held || !f.answered {
		return // held by a FIN or RST, or half-open: the SYN's 30 s run on
	}
	f.deadline = p.Time.Add(m.idle)
}

// taken returns, for a new flow of proto to remote, the public endpoints
// G3 and G4 forbid (a live flow to remote, a hold-down for it) and how
// many live flows each public IP has to remote.
func (m *Model) taken(proto reference.Proto, remote netip.AddrPort) (map[netip.AddrPort]bool, map[netip.Addr]int) {
	no, per := map[netip.AddrPort]bool{}, map[netip.Addr]int{}
	for _, f := range m.flows {
		if f.proto == proto && f.remote == remote {
			no[f.snat] = true
			per[f.snat.Addr()]++
		}
	}
	for _, h := range m.holds {
		if h.proto == proto && h.remote == remote {
			no[h.snat] = true
		}
	}
	return no, per
}

// choose picks the public endpoint of a new flow (G1–G4): the model's own
// choice is a seeded random one; with got,
// the engine's choice must be suitable, and a refusal is right only when
// nothing is.
func (m *Model) choose(tu reference.Tuple, got *reference.Verdict) (netip.AddrPort, bool, error) {
	no, per := m.taken(tu.Proto, tu.Dst)
	last := int(m.prof.FirstPort) + m.prof.PortsPerIP - 1
	suitable := func(a netip.AddrPort) bool {
		return slices.Contains(m.fronts, a.Addr()) && int(a.Port()) >= int(m.prof.FirstPort) && int(a.Port()) <= last &&
			!no[a] && per[a.Addr()] < m.prof.Gateway.MaxPerDestination
	}
	first := func() (netip.AddrPort, bool) {
		for _, ip := range m.fronts {
			if per[ip] >= m.prof.Gateway.MaxPerDestination {
				continue
			}
			for port := int(m.prof.FirstPort); port <= last; port++ {
				if a := netip.AddrPortFrom(ip, uint16(port)); suitable(a) {
					return a, true
				}
			}
		}
		return netip.AddrPort{}, false
	}
	if got == nil {
		// The model's own choice, at random as G2 says: up to 64 random
		// draws, then the first suitable endpoint.
		for range 64 {
			ip := m.fronts[m.rng.IntN(len(m.fronts))]
			a := netip.AddrPortFrom(ip, uint16(int(m.prof.FirstPort)+m.rng.IntN(m.prof.PortsPerIP)))
			if suitable(a) {
				return a, true, nil
			}
		}
		a, ok := first()
		return a, ok, nil
	}
	if got.Action != reference.Translated {
		if a, ok := first(); ok {
			return netip.AddrPort{}, false, fmt.Errorf("natgwmodel: %v refused while %v was suitable (G3)", tu, a)
		}
		return netip.AddrPort{}, false, nil
	}
	if a := got.Tuple.Src; !suitable(a) {
		return netip.AddrPort{}, false, fmt.Errorf("natgwmodel: %v took %v, which G1, G3 or G4 forbid", tu, a)
	}
	return got.Tuple.Src, true, nil
}
