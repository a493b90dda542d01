package specs

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/natcheck/natcheck/internal/snatmodel"
	"github.com/natcheck/natcheck/reference"
)

// Mutant is a NAT broken on purpose (negative control): the checks of
// Breaks must not all pass against it.
type Mutant struct {
	Impl
	// Breaks are the items of SEMANTICS.md the mutation violates.
	Breaks []reference.Behavior
	// What says what the mutant does wrong.
	What string
}

// Mutants returns the negative-control NATs, at least one per item that
// a check through the NAT interface can see. The reference engine has no
// test hooks, so each mutant is built outside it, in one of four ways:
//   - another number: the reference engine with a modified Profile (a
//     14 s RST hold, blocks of 4, first port 1025, …);
//   - another configuration: the reference engine opened with a setting
//     forced (strict mode always on, tcpResetOnIdle forced, every
//     protocol carried);
//   - another packet: the reference engine behind a NAT wrapper that
//     changes what it is sent (fragments passed as whole packets);
//   - another rule: the model of internal/snatmodel (written from
//     SEMANTICS.md, sharing no logic with the engine) with one of its
//     faults switched on (a second flow to a destination on the same
//     port, UDP keyed by the full 5-tuple, ports borrowed, …).
//
// Names are "mutant:" plus the parameter's, the setting's or the fault's
// name.
func Mutants() []Mutant {
	type B = reference.Behavior
	// The 64,000-flow checks (B1, B4, B9) take most of a run's time; a
	// mutant that breaks none of those items declares it cannot run them,
	// which keeps the negative control at a few seconds.
	mutant := func(im Impl, what string, breaks []B) Mutant {
		if !slices.ContainsFunc(breaks, func(b B) bool { return b == reference.B1 || b == reference.B4 || b == reference.B9 }) {
			im.Caps &^= CapLargeAllocation
		}
		return Mutant{Impl: im, Breaks: breaks, What: what}
	}
	prof := func(name, what string, breaks []B, mod func(*reference.Profile)) Mutant {
		return mutant(referenceImpl("mutant:"+name, mod, nil), what, breaks)
	}
	conf := func(name, what string, breaks []B, mod func(*reference.Config)) Mutant {
		return mutant(referenceImpl("mutant:"+name, nil, mod), what, breaks)
	}
	wrap := func(name, what string, breaks []B, w func(NAT) NAT) Mutant {
		im := Reference()
		im.Name = "mutant:" + name
		open := im.Open
		im.Open = func(ctx context.Context, cfg reference.Config) (NAT, error) {
			n, err := open(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return w(n), nil
		}
		return mutant(im, what, breaks)
	}
	model := func(f snatmodel.Fault, what string, breaks ...B) Mutant {
		return mutant(modelImpl("mutant:"+f.String(), f), what, breaks)
	}
	return []Mutant{
		prof("ports-per-ip-63992", "63,992 SNAT ports per frontend IP", []B{reference.B1},
			func(p *reference.Profile) { p.PortsPerIP = 63992 }),
		prof("blocks-of-4", "ports handed out in blocks of 4", []B{reference.B2},
			func(p *reference.Profile) { p.BlockSize = 4 }),
		prof("shifted-tiers", "default table shifted by one instance (51 → 1,024)", []B{reference.B3},
			func(p *reference.Profile) {
				p.Tiers = append([]reference.Tier(nil), p.Tiers...)
				for i := range p.Tiers {
					p.Tiers[i].MaxPool++
				}
			}),
		prof("no-1024-cap", "an instance's default total is not capped at 1,024", []B{reference.B3},
			func(p *reference.Profile) { p.MaxInstancePorts = 64000 }),
		model(snatmodel.SkipCapacityCheck, "manual allocation beyond IPs × 64,000 accepted", reference.B4),
		model(snatmodel.BorrowPorts, "an exhausted instance borrows another instance's port", reference.B5, reference.B9),
		model(snatmodel.TCPSameDestination, "a new TCP flow to a destination already reached takes the same SNAT port", reference.B6),
		model(snatmodel.NoPortReuse, "a SNAT port never carries flows to two destinations", reference.B6, reference.B7),
		model(snatmodel.UDPFullTuple, "UDP mappings keyed by the full 5-tuple", reference.B7),
		model(snatmodel.UDPFullCone, "a UDP mapping takes replies from any port of its destination IP", reference.B8),
		model(snatmodel.FirstIPOnly, "exhaustion while another frontend IP still holds the instance's ports", reference.B9),
		prof("fin-hold-250s", "FIN holds the flow 250 s", []B{reference.B10},
			func(p *reference.Profile) { p.FINHold = 250 * time.Second }),
		model(snatmodel.FINRestart, "the FIN timer restarts on every later packet", reference.B10),
		prof("rst-hold-14s", "RST holds the flow 14 s", []B{reference.B11},
			func(p *reference.Profile) { p.RSTHold = 14 * time.Second }),
		model(snatmodel.RSTLengthensFIN, "a RST after a FIN moves the release later", reference.B11),
		model(snatmodel.InboundNoRefresh, "inbound packets do not restart the idle timer", reference.B12),
		model(snatmodel.DroppedRefresh, "a dropped inbound UDP packet restarts the idle timer", reference.B12),
		prof("idle-default-5min", "default idle timeout 5 minutes", []B{reference.B12},
			func(p *reference.Profile) { p.IdleDefault = 5 * time.Minute }),
		model(snatmodel.LateRelease, "a flow is released just after its release time T", reference.B13, reference.C4),
		conf("no-reset-on-idle", "tcpResetOnIdle ignored", []B{reference.B14},
			func(c *reference.Config) { c.TCPResetOnIdle = false }),
		conf("noisy-expiry", "RSTs at idle expiry with tcpResetOnIdle off", []B{reference.B14},
			func(c *reference.Config) { c.TCPResetOnIdle = true }),
		wrap("translate-fragments", "IP fragments translated", []B{reference.B15},
			func(n NAT) NAT { return unfragmented{n} }),
		conf("ignore-protocol-rule", "an outbound rule limited to one protocol carries both", []B{reference.B15},
			func(c *reference.Config) { c.Protocols = reference.AllProtocols }),
		model(snatmodel.NoReclaim, "pool growth takes no ports back", reference.B16),
		model(snatmodel.ReclaimedFlowsSurvive, "flows on reclaimed ports keep being translated", reference.B16),
		prof("first-port-1025", "SNAT ports 1025–65024", []B{reference.C1},
			func(p *reference.Profile) { p.FirstPort = 1025 }),
		model(snatmodel.ReversePlacement, "instances placed in reverse configuration order", reference.C2),
		model(snatmodel.HighestPortFirst, "port choice starts at the instance's highest port", reference.C3),
		conf("strict-always", "mid-stream TCP packets dropped with strict mode off", []B{reference.C5},
			func(c *reference.Config) { c.Strict = true }),
		model(snatmodel.ResetUnestablished, "tcpResetOnIdle also resets flows that never saw a packet inbound", reference.B14, reference.C6),
		model(snatmodel.ShortMemory, "a flow reset at idle expiry is remembered for half an idle timeout", reference.C7),
	}
}

// modelImpl is the model of internal/snatmodel with faults switched on
// (none for the faithful model), as an implementation under test. It
// counts as a reference (C items run on it).
func modelImpl(name string, faults snatmodel.Fault) Impl {
	return Impl{
		Name: name, Reference: true, Caps: AllCapabilities,
		Open: func(_ context.Context, cfg reference.Config) (NAT, error) {
			cfg.Observer = nil
			m, err := snatmodel.NewMutant(cfg, faults)
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", name, err)
			}
			return &inProcess{e: m}, nil
		},
	}
}

// unfragmented passes every packet on as a whole one: its NAT translates
// fragments (breaks B15).
type unfragmented struct{ NAT }

func (n unfragmented) Send(ctx context.Context, p reference.Packet) (Delivery, error) {
	p.Fragment = false
	return n.NAT.Send(ctx, p)
}
