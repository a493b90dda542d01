package profilecheck

import (
	"fmt"
	"time"

	"github.com/natcheck/natcheck/internal/linuxmodel"
	"github.com/natcheck/natcheck/internal/natgwmodel"
	"github.com/natcheck/natcheck/internal/rfcmodel"
	"github.com/natcheck/natcheck/reference"
)

// profileModel is a profile's slow model seen from the comparison: it
// checks the engine's verdict and emitted packets for one packet, and
// lets time pass.
type profileModel interface {
	check(p reference.Packet, v reference.Verdict, emit []reference.Packet) error
	advance(t time.Time) error
	flows() int
	deadlines() []time.Time
}

type linuxCheck struct{ m *linuxmodel.Model }

func (l linuxCheck) check(p reference.Packet, v reference.Verdict, emit []reference.Packet) error {
	if len(emit) > 0 {
		return fmt.Errorf("linux sends no packets of its own; the engine sent %v", emit)
	}
	return l.m.Check(p, v)
}
func (l linuxCheck) advance(t time.Time) error { return l.m.Advance(t) }
func (l linuxCheck) flows() int                { return l.m.Flows() }
func (l linuxCheck) deadlines() []time.Time    { return l.m.Deadlines() }

type natgwCheck struct{ m *natgwmodel.Model }

func (g natgwCheck) check(p reference.Packet, v reference.Verdict, emit []reference.Packet) error {
	return g.m.Check(p, v, emit)
}
func (g natgwCheck) advance(t time.Time) error { return g.m.Advance(t) }
func (g natgwCheck) flows() int                { return g.m.Flows() }
func (g natgwCheck) deadlines() []time.Time    { return g.m.Deadlines() }

// rfcCheck compares exactly: the rfc profile chooses nothing at random.
type rfcCheck struct{ m *rfcmodel.Model }

func (r rfcCheck) check(p reference.Packet, v reference.Verdict, emit []reference.Packet) error {
	want, err := r.m.Process(p)
	if err != nil {
		return err
	}
	if len(emit) > 0 {
		return fmt.Errorf("rfc sends no packets of its own; the engine sent %v", emit)
	}
	if v.Action != want.Action || v.Reason != want.Reason || v.Behavior != want.Behavior || v.Instance != want.Instance ||
		v.NewFlow != want.NewFlow || ((v.Action == reference.Translated || v.Action == reference.Hairpinned) && v.Tuple != want.Tuple) ||
		(v.Embedded == nil) != (want.Embedded == nil) || (v.Embedded != nil && *v.Embedded != *want.Embedded) {
		return fmt.Errorf("engine %s, model %s", v, want)
	}
	return nil
}
func (r rfcCheck) advance(t time.Time) error { return r.m.Advance(t) }
func (r rfcCheck) flows() int                { return r.m.Flows() }
func (r rfcCheck) deadlines() []time.Time    { return r.m.Deadlines() }

func newProfileModel(cfg reference.Config, e *reference.Engine) (profileModel, error) {
	switch cfg.Profile.Name {
	case reference.NameLinux:
		m, err := linuxmodel.New(cfg, linuxmodel.RulesFromPlan(e.Plan()))
		return linuxCheck{m}, err
	case reference.NameAzureNATGW:
		m, err := natgwmodel.New(cfg)
		return natgwCheck{m}, err
	case reference.NameRFC:
		m, err := rfcmodel.New(cfg)
		return rfcCheck{m}, err
	}
	return nil, fmt.Errorf("no model of profile %q", cfg.Profile.Name)
}

// Compare runs the engine of profile p and the profile's slow
// model (internal/linuxmodel, natgwmodel or rfcmodel) on the operations
// data decodes to (Run), and returns the first disagreement: a
// verdict, an emitted packet or a number of live flows the model does not
// allow. Every input decodes; the same input gives the same run.
func Compare(p reference.Profile, data []byte) error {
	var m profileModel
	return Run(p, data, nil, func(cfg reference.Config, e *reference.Engine) (Hooks, error) {
		var err error
		m, err = newProfileModel(cfg, e)
		return Hooks{
			Deadlines: func() []time.Time { return m.deadlines() },
			Packet: func(pk reference.Packet, v reference.Verdict, emit []reference.Packet) error {
				if err := m.check(pk, v, emit); err != nil {
					return err
				}
				if e.Flows() != m.flows() {
					return fmt.Errorf("the engine has %d flows, the model %d", e.Flows(), m.flows())
				}
				return nil
			},
			Advance: func(t time.Time, emit []reference.Packet) error {
				if err := m.advance(t); err != nil {
					return err
				}
				if len(emit) > 0 {
					return fmt.Errorf("the engine sent %v", emit)
				}
				if e.Flows() != m.flows() {
					return fmt.Errorf("the engine has %d flows, the model %d", e.Flows(), m.flows())
				}
				return nil
			},
		}, err
	})
}
