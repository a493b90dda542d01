package snatmodel

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// ErrMismatch is matched by every difference a Twin reports.
var ErrMismatch = errors.New("engine and model differ")

// Mismatch is one difference between the engine and the model: what was
// done, and what each answered.
type Mismatch struct {
	Op            string
	Engine, Model string
}

func (e *Mismatch) Error() string {
	return fmt.Sprintf("%s:\n engine %s\n model  %s", e.Op, e.Engine, e.Model)
}

// Is makes errors.Is(err, ErrMismatch) true.
func (e *Mismatch) Is(target error) bool { return target == ErrMismatch }

// Twin runs the reference engine and the model side by side on the same
// calls and compares, after each one, everything both can be asked: the
// verdict, the packets the NAT sent, the flows created, reused, picked
// up, reset and released (their events, as a set per call), the number
// of live flows and, after construction and every pool change, the
// allocation plan and any configuration error.
type Twin struct {
	Engine *reference.Engine
	Model  *Model
	// Observe, if set, sees every event of the engine (for tests that
	// measure what their traffic reached).
	Observe reference.Observer
	ev      [2][]flowEvent
}

// flowEvent is what a Twin compares of an event: everything but the
// fields of drops and pool changes.
type flowEvent struct {
	kind                 reference.EventKind
	behavior             reference.Behavior
	time                 int64
	inst                 int
	proto                reference.Proto
	inside, remote, snat netip.AddrPort
	release              reference.ReleaseReason
}

func (e flowEvent) String() string {
	return fmt.Sprintf("%v %v +%d inst=%d %v %v->%v snat=%v release=%v",
		e.kind, e.behavior, e.time, e.inst, e.proto, e.inside, e.remote, e.snat, e.release)
}

// sortEvents orders events by their text: events at one instant come in
// no particular order on either side.
func sortEvents(evs []flowEvent) {
	slices.SortFunc(evs, func(a, b flowEvent) int { return strings.Compare(a.String(), b.String()) })
}

// NewTwin builds the engine and the model (with faults) for cfg. When
// both reject cfg for the same behaviour it returns the engine's error;
// when they disagree, or their plans differ, a *Mismatch.
func NewTwin(cfg reference.Config, faults Fault) (*Twin, error) {
	t := &Twin{}
	ec, mc := cfg, cfg
	ec.Observer = func(ev reference.Event) {
		t.ev[0] = t.record(t.ev[0], ev)
		if t.Observe != nil {
			t.Observe(ev)
		}
	}
	mc.Observer = func(ev reference.Event) { t.ev[1] = t.record(t.ev[1], ev) }
	e, eerr := reference.New(ec)
	m, merr := NewMutant(mc, faults)
	if err := sameError(func() string { return "New" }, eerr, merr); err != nil || eerr != nil {
		return nil, err
	}
	t.Engine, t.Model = e, m
	if err := t.samePlan(func() string { return "New" }); err != nil {
		return nil, err
	}
	return t, nil
}

// record keeps the events both sides report; drops and configuration
// events are the verdicts' and the plans' business.
func (t *Twin) record(evs []flowEvent, ev reference.Event) []flowEvent {
	switch ev.Kind {
	case reference.MappingCreated, reference.MappingReused, reference.PickedUp, reference.Released, reference.ResetSent:
		return append(evs, flowEvent{ev.Kind, ev.Behavior, ev.Time.UnixNano(), ev.Instance, ev.Proto, ev.Inside, ev.Remote, ev.SNAT, ev.Release})
	}
	return evs
}

func behaviorOf(err error) reference.Behavior {
	var ce *reference.ConfigError
	if errors.As(err, &ce) {
		return ce.Behavior
	}
	return reference.NoBehavior
}

func sameError(op func() string, eerr, merr error) error {
	if (eerr == nil) != (merr == nil) || behaviorOf(eerr) != behaviorOf(merr) ||
		errors.Is(eerr, reference.ErrConfig) != errors.Is(merr, reference.ErrConfig) ||
		errors.Is(eerr, reference.ErrTimeWentBackwards) != errors.Is(merr, reference.ErrTimeWentBackwards) {
		return &Mismatch{Op: op(), Engine: fmt.Sprintf("error %v", eerr), Model: fmt.Sprintf("error %v", merr)}
	}
	return eerr
}

func (t *Twin) samePlan(op func() string) error {
	ep, mp := fmt.Sprintf("%+v", t.Engine.Plan()), fmt.Sprintf("%+v", t.Model.Plan())
	if ep != mp {
		return &Mismatch{Op: op() + ": plan", Engine: ep, Model: mp}
	}
	return nil
}

func packets(ps []reference.Packet) string {
	if len(ps) == 0 {
		return "[]"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p.Time.UnixNano(), " ", p.Dir, " ", p.Tuple, " ", p.Flags)
	}
	slices.Sort(s)
	return fmt.Sprint(s)
}

// settle compares what both sent, their events and their flows after op,
// and forgets the events.
func (t *Twin) settle(op func() string, eemit, memit []reference.Packet) error {
	defer func() { t.ev[0], t.ev[1] = t.ev[0][:0], t.ev[1][:0] }()
	if a, b := packets(eemit), packets(memit); a != b {
		return &Mismatch{Op: op() + ": packets sent", Engine: a, Model: b}
	}
	if len(t.ev[0]) > 1 || len(t.ev[1]) > 1 {
		sortEvents(t.ev[0])
		sortEvents(t.ev[1])
	}
	if !slices.Equal(t.ev[0], t.ev[1]) {
		return &Mismatch{Op: op() + ": events", Engine: fmt.Sprint(t.ev[0]), Model: fmt.Sprint(t.ev[1])}
	}
	if a, b := t.Engine.Flows(), t.Model.Flows(); a != b {
		return &Mismatch{Op: op() + ": live flows", Engine: fmt.Sprint(a), Model: fmt.Sprint(b)}
	}
	return nil
}

// Process sends p to both and returns the engine's verdict and the packets
// it sent, and the first difference (or both sides' error, when both
// refuse the call alike).
func (t *Twin) Process(p reference.Packet) (reference.Verdict, []reference.Packet, error) {
	op := func() string {
		return fmt.Sprintf("Process(+%d %v %v %v frag=%v)", p.Time.UnixNano(), p.Dir, p.Tuple, p.Flags, p.Fragment)
	}
	ev, eemit, eerr := t.Engine.Process(p, nil)
	mv, memit, merr := t.Model.Process(p, nil)
	if err := sameError(op, eerr, merr); err != nil {
		return ev, eemit, err
	}
	if ev != mv {
		return ev, eemit, &Mismatch{Op: op(), Engine: fmt.Sprintf("%+v", ev), Model: fmt.Sprintf("%+v", mv)}
	}
	return ev, eemit, t.settle(op, eemit, memit)
}

// Advance lets time pass to at on both and returns the packets the engine
// sent meanwhile.
func (t *Twin) Advance(at time.Time) ([]reference.Packet, error) {
	op := func() string { return fmt.Sprintf("Advance(+%d)", at.UnixNano()) }
	eemit, eerr := t.Engine.Advance(at, nil)
	memit, merr := t.Model.Advance(at, nil)
	if err := sameError(op, eerr, merr); err != nil {
		return eemit, err
	}
	return eemit, t.settle(op, eemit, memit)
}

// SetPool lets time pass to at, then changes the pool of both (B16). It
// returns both sides' error when both refuse the change alike.
func (t *Twin) SetPool(at time.Time, backends []netip.Addr, poolSize int) error {
	if _, err := t.Advance(at); err != nil {
		return err
	}
	op := func() string {
		return fmt.Sprintf("SetPool(+%d, %d backends, pool %d)", at.UnixNano(), len(backends), poolSize)
	}
	eerr := t.Engine.SetPool(at, backends, poolSize)
	merr := t.Model.SetPool(at, backends, poolSize)
	if err := sameError(op, eerr, merr); err != nil {
		return err
	}
	if err := t.settle(op, nil, nil); err != nil {
		return err
	}
	return t.samePlan(op)
}

// Lookup returns the engine's SNAT endpoint for outbound tuple out, and a
// *Mismatch when the model's differs.
func (t *Twin) Lookup(out reference.Tuple) (netip.AddrPort, bool, error) {
	ea, eok := t.Engine.Lookup(out)
	ma, mok := t.Model.Lookup(out)
	if ea != ma || eok != mok {
		return ea, eok, &Mismatch{Op: fmt.Sprintf("Lookup(%v)", out), Engine: fmt.Sprint(ea, eok), Model: fmt.Sprint(ma, mok)}
	}
	return ea, eok, nil
}
