package specs

import (
	"slices"
	"time"

	"github.com/natcheck/natcheck/internal/fault"
	"github.com/natcheck/natcheck/reference"
)

// Mutant is a reference engine broken on purpose (negative control): the
// checks of Breaks must not all pass against it.
type Mutant struct {
	Impl
	// Breaks are the items of SEMANTICS.md the mutation violates.
	Breaks []reference.Behavior
	// What says what the mutant does wrong.
	What string
}

// Mutants returns the negative-control engines: at least one per B item and
// one per C item, as fault bits of the engine (package internal/fault) or,
// where a mutation is only another number, as a modified profile. Their
// names are "mutant:" plus the fault's or parameter's name.
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
		return mutant(referenceImpl("mutant:"+name, 0, mod), what, breaks)
	}
	flt := func(f fault.Set, what string, breaks ...B) Mutant {
		return mutant(referenceImpl("mutant:"+f.String(), f, nil), what, breaks)
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
		flt(fault.SkipCapacityCheck, "manual allocation beyond IPs × 64,000 accepted", reference.B4),
		flt(fault.BorrowPorts, "an exhausted instance borrows another instance's port", reference.B5, reference.B9),
		flt(fault.TCPSameDestination, "a second TCP flow to the same destination takes the same SNAT port", reference.B6),
		flt(fault.NoPortReuse, "a SNAT port never carries flows to two destinations", reference.B6, reference.B7),
		flt(fault.UDPFullTuple, "UDP mappings keyed by the full 5-tuple", reference.B7),
		flt(fault.UDPFullCone, "any remote endpoint may send through a UDP mapping", reference.B8),
		flt(fault.FirstIPOnly, "exhaustion while another frontend IP still holds the instance's ports", reference.B9),
		prof("fin-hold-250s", "FIN holds the flow 250 s", []B{reference.B10},
			func(p *reference.Profile) { p.FINHold = 250 * time.Second }),
		flt(fault.FINRestart, "the FIN timer restarts on every later packet", reference.B10),
		prof("rst-hold-14s", "RST holds the flow 14 s", []B{reference.B11},
			func(p *reference.Profile) { p.RSTHold = 14 * time.Second }),
		flt(fault.RSTLengthensFIN, "a RST after a FIN moves the release later", reference.B11),
		flt(fault.InboundNoRefresh, "inbound packets do not restart the idle timer", reference.B12),
		flt(fault.DroppedRefresh, "a dropped inbound UDP packet restarts the idle timer", reference.B12),
		prof("idle-default-5min", "default idle timeout 5 minutes", []B{reference.B12},
			func(p *reference.Profile) { p.IdleDefault = 5 * time.Minute }),
		flt(fault.LateRelease, "a flow is released just after its release time T", reference.B13, reference.C4),
		flt(fault.NoResetOnIdle, "tcpResetOnIdle ignored", reference.B14),
		flt(fault.NoisyExpiry, "RSTs at idle expiry with tcpResetOnIdle off", reference.B14),
		flt(fault.TranslateFragments, "IP fragments translated", reference.B15),
		flt(fault.IgnoreProtocolRule, "an outbound rule limited to one protocol carries both", reference.B15),
		flt(fault.NoReclaim, "pool growth takes no ports back", reference.B16),
		flt(fault.ReclaimedFlowsSurvive, "flows on reclaimed ports keep being translated", reference.B16),
		prof("first-port-1025", "SNAT ports 1025–65024", []B{reference.C1},
			func(p *reference.Profile) { p.FirstPort = 1025 }),
		flt(fault.ReversePlacement, "instances placed in reverse configuration order", reference.C2),
		flt(fault.HighestBlockFirst, "port choice starts at the instance's highest block", reference.C3),
		flt(fault.StrictAlways, "mid-stream TCP packets dropped with strict mode off", reference.C5),
	}
}
