// Package modelnat puts the slow per-profile models (internal/linuxmodel,
// internal/natgwmodel, internal/rfcmodel) behind specs.NAT, so that a
// profile's conformance checks can run against its model: an
// implementation written apart from the engine, straight from
// SEMANTICS.md. That the checks pass on two independent implementations
// is evidence that they say what the document says; the engine's own
// differential tests compare it with the same models packet by packet.
package modelnat

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/natcheck/natcheck/internal/linuxmodel"
	"github.com/natcheck/natcheck/internal/natgwmodel"
	"github.com/natcheck/natcheck/internal/rfcmodel"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// model is what the three models have in common, seen from a NAT.
type model interface {
	process(p reference.Packet) (reference.Verdict, []reference.Packet, error)
	advance(t time.Time) error
}

type linux struct{ m *linuxmodel.Model }

func (l linux) process(p reference.Packet) (reference.Verdict, []reference.Packet, error) {
	v, err := l.m.Process(p)
	return v, nil, err
}
func (l linux) advance(t time.Time) error { return l.m.Advance(t) }

type natgw struct{ m *natgwmodel.Model }

func (g natgw) process(p reference.Packet) (reference.Verdict, []reference.Packet, error) {
	return g.m.Process(p)
}
func (g natgw) advance(t time.Time) error { return g.m.Advance(t) }

type rfc struct{ m *rfcmodel.Model }

func (r rfc) process(p reference.Packet) (reference.Verdict, []reference.Packet, error) {
	v, err := r.m.Process(p)
	return v, nil, err
}
func (r rfc) advance(t time.Time) error { return r.m.Advance(t) }

// Impl returns the model of profile (linux, azure-natgw or rfc) as an
// implementation under test, named "model-"+profile. It has every
// capability but pool changes and tcpResetOnIdle, and is not checked on
// the 50,000-flow checks (a model answers each question by a scan).
func Impl(profile reference.Profile) specs.Impl {
	return specs.Impl{
		Name: "model-" + profile.Name, Profile: profile,
		Caps: specs.AllCapabilities &^ (specs.CapPoolChange | specs.CapResetOnIdle | specs.CapLargeAllocation),
		Open: func(_ context.Context, cfg reference.Config) (specs.NAT, error) {
			return open(cfg)
		},
	}
}

func open(cfg reference.Config) (*nat, error) {
	n := &nat{}
	var err error
	switch cfg.Profile.Name {
	case reference.NameLinux:
		// The rules come from the azure-lb allocation plan, as natcheck's
		// built-in Linux device writes them (L1).
		lb := cfg
		lb.Profile = reference.AzureLB()
		n.plan, err = reference.PlanFor(lb)
		if err != nil {
			return nil, fmt.Errorf("model linux: %w", err)
		}
		n.plan.Profile = reference.NameLinux
		var m *linuxmodel.Model
		m, err = linuxmodel.New(cfg, linuxmodel.RulesFromPlan(n.plan))
		n.m = linux{m}
	case reference.NameAzureNATGW:
		var m *natgwmodel.Model
		m, err = natgwmodel.New(cfg)
		n.m = natgw{m}
		n.plan = sharedPlan(cfg, 1024, 65535)
	case reference.NameRFC:
		var m *rfcmodel.Model
		m, err = rfcmodel.New(cfg)
		n.m = rfc{m}
		n.plan = sharedPlan(cfg, 1, 65535)
	default:
		return nil, fmt.Errorf("model: no model of profile %q", cfg.Profile.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", cfg.Profile.Name, err)
	}
	return n, nil
}

// sharedPlan is the plan of a profile with one shared inventory: every
// instance may use every port of every public IP.
func sharedPlan(cfg reference.Config, first, last uint16) reference.Plan {
	pl := reference.Plan{Profile: cfg.Profile.Name, PoolSize: max(cfg.PoolSize, len(cfg.Backends))}
	var rs []reference.PortRange
	for _, f := range cfg.Frontends {
		rs = append(rs, reference.PortRange{IP: f, First: first, Last: last})
		pl.Frontends = append(pl.Frontends, reference.FrontendPlan{IP: f, Free: int(last-first) + 1})
	}
	for i, b := range cfg.Backends {
		pl.Instances = append(pl.Instances, reference.InstancePlan{Index: i, Inside: b, Ports: len(rs) * (int(last-first) + 1), Ranges: rs})
	}
	return pl
}

type nat struct {
	m    model
	plan reference.Plan
}

func (n *nat) Send(_ context.Context, p reference.Packet) (specs.Delivery, error) {
	v, emit, err := n.m.process(p)
	if err != nil {
		return specs.Delivery{}, fmt.Errorf("send %v: %w", p.Tuple, err)
	}
	d := specs.Delivery{Emitted: emit}
	switch v.Action {
	case reference.Translated:
		d.Forwarded, d.Packet = true, p
		d.Packet.Tuple, d.Packet.Embedded = v.Tuple, v.Embedded
	case reference.Hairpinned:
		d.Forwarded, d.Packet = true, p
		d.Packet.Dir, d.Packet.Tuple = reference.Inbound, v.Tuple
	}
	return d, nil
}

func (n *nat) Wait(_ context.Context, t time.Time) ([]reference.Packet, error) {
	return nil, n.m.advance(t)
}

func (n *nat) SetPool(context.Context, time.Time, []netip.Addr, int) error {
	return fmt.Errorf("set pool: %w", specs.ErrUnsupported)
}

func (n *nat) Plan() reference.Plan { return n.plan }

func (n *nat) Close() error { return nil }
