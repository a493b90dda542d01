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
	if v.Action == reference.Translated {
		d.Forwarded = true
		d.Packet = p
		d.Packet.Tuple = v.Tuple
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
