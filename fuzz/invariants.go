package fuzz

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// shadowKey names a flow the way the outbound lookup does: UDP mappings
// are per destination IP (B7), so their remote port is zero.
type shadowKey struct {
	proto          reference.Proto
	inside, remote netip.AddrPort
}

// slotKey names what one SNAT port may carry once: per destination IP:port
// for TCP (B6), per destination IP for UDP (B7).
type slotKey struct {
	proto        reference.Proto
	snat, remote netip.AddrPort
}

type shadowFlow struct {
	inst          int
	snat          netip.AddrPort
	remote        netip.AddrPort
	lastSeen      time.Time
	fixed         bool
	fixedDeadline time.Time
	rst           bool
}

func keyPort(proto reference.Proto, a netip.AddrPort) netip.AddrPort {
	if proto == reference.UDP {
		return netip.AddrPortFrom(a.Addr(), 0)
	}
	return a
}

// shadow follows the engine through its events and verdicts and checks
// the invariants that must hold after every operation.
type shadow struct {
	idle     time.Duration
	plan     reference.Plan
	backends []netip.Addr // instance i's inside address
	flows    map[shadowKey]*shadowFlow
	slots    map[slotKey]shadowKey
	now      time.Time
	errs     []string
	log      strings.Builder // every event and verdict, for determinism
}

func (s *shadow) fail(format string, args ...any) {
	if len(s.errs) < 5 {
		s.errs = append(s.errs, fmt.Sprintf(format, args...))
	}
}

func (s *shadow) deadline(f *shadowFlow) time.Time {
	if f.fixed {
		return f.fixedDeadline
	}
	return f.lastSeen.Add(s.idle)
}

func (s *shadow) inAllocation(inst int, a netip.AddrPort) bool {
	if inst < 0 || inst >= len(s.plan.Instances) {
		return false
	}
	for _, r := range s.plan.Instances[inst].Ranges {
		if r.IP == a.Addr() && a.Port() >= r.First && a.Port() <= r.Last {
			return true
		}
	}
	return false
}

func (s *shadow) observe(ev reference.Event) {
	fmt.Fprintln(&s.log, ev)
	k := shadowKey{ev.Proto, ev.Inside, keyPort(ev.Proto, ev.Remote)}
	switch ev.Kind {
	case reference.MappingCreated, reference.MappingReused:
		if ev.Instance < 0 || ev.Instance >= len(s.backends) || s.backends[ev.Instance] != ev.Inside.Addr() {
			s.fail("B5: flow of %v recorded on instance %d", ev.Inside, ev.Instance)
		}
		if !s.inAllocation(ev.Instance, ev.SNAT) {
			s.fail("B5: instance %d got SNAT %v outside its allocation", ev.Instance, ev.SNAT)
		}
		sk := slotKey{ev.Proto, ev.SNAT, keyPort(ev.Proto, ev.Remote)}
		if other, ok := s.slots[sk]; ok {
			s.fail("B6/B7: %v already carries %v toward %v; new flow %v", ev.SNAT, other.inside, ev.Remote, ev.Inside)
		}
		if _, ok := s.flows[k]; ok {
			s.fail("flow %v created twice", k)
		}
		s.slots[sk] = k
		s.flows[k] = &shadowFlow{inst: ev.Instance, snat: ev.SNAT, remote: ev.Remote, lastSeen: ev.Time}
	case reference.Released:
		f, ok := s.flows[k]
		if !ok {
			s.fail("release of unknown flow %v", k)
			return
		}
		if ev.Release == reference.ReleaseReclaimed {
			if !ev.Time.Equal(s.now) {
				s.fail("B16: reclaim at %v, not at the pool change %v", ev.Time, s.now)
			}
		} else if want := s.deadline(f); !ev.Time.Equal(want) {
			s.fail("B10-B13: %v released (%v) at +%v, want +%v", k, ev.Release, ev.Time.Sub(T0), want.Sub(T0))
		} else if wantReason := map[bool]reference.ReleaseReason{false: reference.ReleaseIdle, true: reference.ReleaseFIN}[f.fixed]; f.rst && ev.Release != reference.ReleaseRST || !f.rst && ev.Release != wantReason {
			s.fail("release reason %v for %v, want fixed=%v rst=%v", ev.Release, k, f.fixed, f.rst)
		}
		delete(s.flows, k)
		delete(s.slots, slotKey{ev.Proto, f.snat, keyPort(ev.Proto, f.remote)})
	}
}

// checkInUse: no instance uses more SNAT ports of a protocol than its
// allocation holds (B5, counted from the shadow's own flows).
func (s *shadow) checkInUse(op int) {
	type ik struct {
		inst  int
		proto reference.Proto
	}
	ports := map[ik]map[netip.AddrPort]bool{}
	for k, f := range s.flows {
		x := ik{f.inst, k.proto}
		if ports[x] == nil {
			ports[x] = map[netip.AddrPort]bool{}
		}
		ports[x][f.snat] = true
	}
	for x, ps := range ports {
		if x.inst < 0 || x.inst >= len(s.plan.Instances) || len(ps) > s.plan.Instances[x.inst].Ports {
			s.fail("op %d: instance %d uses %d %v ports, more than its allocation", op, x.inst, len(ps), x.proto)
		}
	}
}

// touch applies B10–B12 to a translated packet.
func (s *shadow) touch(f *shadowFlow, p reference.Packet) {
	if p.Tuple.Proto == reference.TCP && p.Flags.Has(reference.RST) {
		if d := p.Time.Add(15 * time.Second); !f.fixed || d.Before(f.fixedDeadline) {
			f.fixed, f.fixedDeadline, f.rst = true, d, true
		}
	}
	if p.Tuple.Proto == reference.TCP && p.Flags.Has(reference.FIN) && !f.fixed {
		f.fixed, f.fixedDeadline = true, p.Time.Add(240*time.Second)
	}
	f.lastSeen = p.Time
}

// System is what the invariant checker drives: the reference engine, or
// the model of internal/snatmodel (faithful, or with a fault switched on,
// for the checker's own negative control). It reports its flows to the
// configuration's Observer (MappingCreated, MappingReused, Released).
type System interface {
	Process(p reference.Packet, emit []reference.Packet) (reference.Verdict, []reference.Packet, error)
	Advance(t time.Time, emit []reference.Packet) ([]reference.Packet, error)
	SetPool(t time.Time, backends []netip.Addr, poolSize int) error
	Lookup(out reference.Tuple) (netip.AddrPort, bool)
	Plan() reference.Plan
	Flows() int
}

// Opener builds a System for a configuration.
type Opener func(reference.Config) (System, error)

// Engine opens the reference engine.
func Engine(cfg reference.Config) (System, error) { return reference.New(cfg) }

// ErrInvariant is matched by every invariant violation CheckInvariants
// reports.
var ErrInvariant = errors.New("invariant violated")

// CheckInvariants runs sc through a fresh engine and checks, after every
// operation: no SNAT port used by two instances or outside the instance's
// allocation (B5); no two live TCP flows on one SNAT port to the same
// destination IP:port (B6); at most one UDP mapping per destination IP per
// SNAT port (B7); ports in use never above the allocation; every release
// exactly when B10–B13 say, and none late; and that a second run of the
// same scenario gives the same events and verdicts (determinism). It
// returns the run's log and an error wrapping ErrInvariant.
func CheckInvariants(sc Scenario) (string, error) { return CheckInvariantsOf(sc, Engine) }

// CheckInvariantsOf is CheckInvariants on the system open builds.
func CheckInvariantsOf(sc Scenario, open Opener) (string, error) {
	first, err := runShadow(sc, open)
	if err != nil {
		return first, err
	}
	second, err := runShadow(sc, open)
	if err != nil {
		return second, err
	}
	if first != second {
		return first, fmt.Errorf("%w: determinism: two runs of the same scenario differ", ErrInvariant)
	}
	return first, nil
}

func runShadow(sc Scenario, open Opener) (string, error) {
	s := &shadow{flows: map[shadowKey]*shadowFlow{}, slots: map[slotKey]shadowKey{}, backends: sc.Backends}
	cfg := sc.Config
	cfg.Backends = append([]netip.Addr(nil), cfg.Backends...)
	cfg.Observer = s.observe
	e, err := open(cfg)
	if err != nil {
		return "", fmt.Errorf("scenario config: %w", err)
	}
	s.idle = cfg.IdleTimeout
	if s.idle == 0 {
		s.idle = 4 * time.Minute
	}
	s.plan = e.Plan()
	var emit []reference.Packet
	for i, op := range sc.Ops {
		s.now = op.Time
		switch op.Kind {
		case OpAdvance:
			emit, err = e.Advance(op.Time, emit[:0])
		case OpResize:
			// A pool change keeps the instances' order (B16); one the
			// configuration refuses changes nothing.
			if emit, err = e.Advance(op.Time, emit[:0]); err != nil {
				break
			}
			if err = e.SetPool(op.Time, sc.Backends[:op.Pool], 0); errors.Is(err, reference.ErrConfig) {
				fmt.Fprintf(&s.log, "op %d pool of %d refused: %v\n", i, op.Pool, err)
				err = nil
			}
			s.plan = e.Plan()
		default:
			var v reference.Verdict
			p := sc.Resolve(op, e.Lookup)
			v, emit, err = e.Process(p, emit[:0])
			fmt.Fprintf(&s.log, "op %d %v %v %v -> %v %v %v %v\n", i, p.Dir, p.Tuple, p.Flags, v.Action, v.Reason, v.Tuple, emit)
			if err == nil && v.Action == reference.Translated {
				var f *shadowFlow
				if p.Dir == reference.Outbound {
					f = s.flows[shadowKey{p.Tuple.Proto, p.Tuple.Src, keyPort(p.Tuple.Proto, p.Tuple.Dst)}]
				} else if k, ok := s.slots[slotKey{p.Tuple.Proto, p.Tuple.Dst, keyPort(p.Tuple.Proto, p.Tuple.Src)}]; ok {
					f = s.flows[k]
				}
				if f == nil {
					s.fail("op %d: translated %v with no flow in the shadow", i, p.Tuple)
				} else {
					s.touch(f, p)
				}
			}
		}
		if err != nil {
			return s.log.String(), fmt.Errorf("op %d: %w", i, err)
		}
		for k, f := range s.flows {
			if d := s.deadline(f); !d.After(op.Time) {
				s.fail("op %d at +%v: flow %v still live, due at +%v", i, op.Time.Sub(T0), k, d.Sub(T0))
			}
		}
		if e.Flows() != len(s.flows) {
			s.fail("op %d: engine has %d flows, shadow %d", i, e.Flows(), len(s.flows))
		}
		s.checkInUse(i)
		if en, ok := e.(*reference.Engine); ok {
			for _, st := range en.Stats() {
				if st.InUse > st.Allocated {
					s.fail("op %d: instance %d uses %d %v ports of %d", i, st.Instance, st.InUse, st.Proto, st.Allocated)
				}
			}
		}
		if len(s.errs) > 0 {
			return s.log.String(), fmt.Errorf("%w: op %d at +%v: %s", ErrInvariant, i, op.Time.Sub(T0), strings.Join(s.errs, "; "))
		}
	}
	return s.log.String(), nil
}
