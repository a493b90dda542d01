package specs

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/natcheck/natcheck/internal/fault"
	"github.com/natcheck/natcheck/reference"
)

// Reference returns the reference engine as an implementation under test:
// in-process, virtual time, every capability.
func Reference() Impl { return referenceImpl("reference", 0, nil) }

// referenceImpl is a reference engine with faults switched on and its
// profile modified by mod (nil for none): the un-mutated reference or a
// mutant.
func referenceImpl(name string, faults fault.Set, mod func(*reference.Profile)) Impl {
	return Impl{
		Name: name, Reference: true, Caps: AllCapabilities,
		Open: func(_ context.Context, cfg reference.Config) (NAT, error) {
			if mod != nil {
				if cfg.Profile.Name == "" {
					cfg.Profile = reference.AzureLB()
				}
				mod(&cfg.Profile)
			}
			cfg.Faults = faults
			cfg.Observer = nil
			e, err := reference.New(cfg)
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", name, err)
			}
			return &refNAT{e: e}, nil
		},
	}
}

// refNAT adapts a reference engine to NAT: verdicts become deliveries.
type refNAT struct {
	e    *reference.Engine
	emit []reference.Packet
}

var _ NAT = (*refNAT)(nil)

func (n *refNAT) Send(_ context.Context, p reference.Packet) (Delivery, error) {
	v, emit, err := n.e.Process(p, n.emit[:0])
	n.emit = emit
	if err != nil {
		return Delivery{}, fmt.Errorf("send %v: %w", p.Tuple, err)
	}
	var d Delivery
	if len(emit) > 0 {
		d.Emitted = append([]reference.Packet(nil), emit...)
	}
	if v.Action == reference.Translated {
		d.Forwarded = true
		d.Packet = p
		d.Packet.Tuple = v.Tuple
	}
	return d, nil
}

func (n *refNAT) Wait(_ context.Context, t time.Time) ([]reference.Packet, error) {
	emit, err := n.e.Advance(t, n.emit[:0])
	n.emit = emit
	if err != nil {
		return nil, fmt.Errorf("wait until %v: %w", t, err)
	}
	return append([]reference.Packet(nil), emit...), nil
}

func (n *refNAT) SetPool(_ context.Context, t time.Time, backends []netip.Addr, poolSize int) error {
	if err := n.e.SetPool(t, backends, poolSize); err != nil {
		return fmt.Errorf("set pool: %w", err)
	}
	return nil
}

func (n *refNAT) Plan() reference.Plan { return n.e.Plan() }

func (n *refNAT) Close() error { return nil }
