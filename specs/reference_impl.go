package specs

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// Reference returns the reference engine as an implementation under test:
// in-process, virtual time, every capability.
func Reference() Impl { return referenceImpl("reference", nil, nil) }

// Engine returns the reference engine running profile p, named
// "reference" for azure-lb and "reference-"+p.Name otherwise. A check
// written for azure-lb configures it as a user would configure such a
// device from an azure-lb outbound rule: settings the profile does not
// have (an idle timeout on linux and rfc, ports per instance on a shared
// inventory) are left out, so that the checks that need them show how the
// device differs. It lacks the capabilities its profile has no setting
// for (tcpResetOnIdle, pool changes, a protocol rule, a strict mode).
func Engine(p reference.Profile) Impl {
	if p.Name == "" || p.Name == reference.NameAzureLB {
		im := Reference()
		im.Profile = p
		return im
	}
	caps := AllCapabilities &^ (CapResetOnIdle | CapPoolChange)
	switch p.Name {
	case reference.NameAzureNATGW:
		caps &^= CapProtocolRule | CapStrict
	case reference.NameRFC:
		caps &^= CapProtocolRule
	}
	name := "reference-" + p.Name
	return Impl{
		Name: name, Reference: true, Caps: caps, Profile: p, Known: known[p.Name],
		Open: func(_ context.Context, cfg reference.Config) (NAT, error) {
			if cfg.Profile.Timers != reference.TimersHold {
				cfg.IdleTimeout = 0
			}
			if cfg.Profile.Quota == reference.QuotaShared {
				cfg.PortsPerInstance = 0
			}
			cfg.Observer = nil
			e, err := reference.New(cfg)
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", name, err)
			}
			return &inProcess{e: e}, nil
		},
	}
}

// referenceImpl is a reference engine whose profile is modified by mod
// and whose configuration is modified by conf (each nil for none): the
// reference itself, or a mutant that differs from it by a parameter.
func referenceImpl(name string, mod func(*reference.Profile), conf func(*reference.Config)) Impl {
	return Impl{
		Name: name, Reference: true, Caps: AllCapabilities,
		Open: func(_ context.Context, cfg reference.Config) (NAT, error) {
			if mod != nil {
				if cfg.Profile.Name == "" {
					cfg.Profile = reference.AzureLB()
				}
				mod(&cfg.Profile)
			}
			if conf != nil {
				conf(&cfg)
			}
			cfg.Observer = nil
			e, err := reference.New(cfg)
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", name, err)
			}
			return &inProcess{e: e}, nil
		},
	}
}

// engine is what an in-process NAT in virtual time offers: the reference
// engine and the model of internal/snatmodel both do.
type engine interface {
	Process(p reference.Packet, emit []reference.Packet) (reference.Verdict, []reference.Packet, error)
	Advance(t time.Time, emit []reference.Packet) ([]reference.Packet, error)
	SetPool(t time.Time, backends []netip.Addr, poolSize int) error
	Plan() reference.Plan
}

// inProcess adapts an in-process engine to NAT: verdicts become
// deliveries.
type inProcess struct {
	e    engine
	emit []reference.Packet
}

var _ NAT = (*inProcess)(nil)

func (n *inProcess) Send(_ context.Context, p reference.Packet) (Delivery, error) {
	v, emit, err := n.e.Process(p, n.emit[:0])
	n.emit = emit
	if err != nil {
		return Delivery{}, fmt.Errorf("send %v: %w", p.Tuple, err)
	}
	var d Delivery
	if len(emit) > 0 {
		d.Emitted = append([]reference.Packet(nil), emit...)
	}
	switch v.Action {
	case reference.Translated:
		d.Forwarded = true
		d.Packet = p
		d.Packet.Tuple = v.Tuple
	case reference.Hairpinned:
		d.Forwarded = true
		d.Packet = p
		d.Packet.Dir, d.Packet.Tuple = reference.Inbound, v.Tuple
	}
	return d, nil
}

func (n *inProcess) Wait(_ context.Context, t time.Time) ([]reference.Packet, error) {
	emit, err := n.e.Advance(t, n.emit[:0])
	n.emit = emit
	if err != nil {
		return nil, fmt.Errorf("wait until %v: %w", t, err)
	}
	return append([]reference.Packet(nil), emit...), nil
}

func (n *inProcess) SetPool(_ context.Context, t time.Time, backends []netip.Addr, poolSize int) error {
	if err := n.e.SetPool(t, backends, poolSize); err != nil {
		return fmt.Errorf("set pool: %w", err)
	}
	return nil
}

func (n *inProcess) Plan() reference.Plan { return n.e.Plan() }

func (n *inProcess) Close() error { return nil }

// known are, per profile, the azure-lb behaviours its NAT is documented to
// do otherwise (SEMANTICS.md "Known differences", and the profile's own
// items that say so): the deviations the azure-lb checks show on it.
var known = map[string]map[reference.Behavior]string{}
