// Package fault names the deliberate faults ("mutations") that natcheck's
// own negative-control tests switch on in the reference engine, to prove
// that the conformance specs of package specs can fail: each mutation
// breaks one documented behaviour (or convention) of SEMANTICS.md, and the
// specs of that behaviour must then report it.
//
// The package is internal: only natcheck's packages can import it, so no
// user of the reference engine can turn a fault on by accident. In every
// real use the set is zero. Mutations that are only a different parameter
// (a 14 s RST hold, a first port of 1025, blocks of 4, …) are not faults:
// the specs build them as modified reference.Profile values.
package fault

import "strings"

// Set is a set of mutations. The zero Set is the correct engine. It is a
// comparable value; testing for a mutation costs one AND.
type Set uint32

// The mutations, one bit each. The comment names the behaviour of
// SEMANTICS.md that each one breaks.
const (
	// TCPSameDestination lets a second TCP flow to the same destination
	// IP:port take the same SNAT port as the first (breaks B6).
	TCPSameDestination Set = 1 << iota
	// NoPortReuse never lets two flows share a SNAT port, even toward
	// different destinations (breaks B6 and B7).
	NoPortReuse
	// UDPFullTuple keys UDP mappings by the full 5-tuple instead of
	// (inside endpoint, destination IP) (breaks B7).
	UDPFullTuple
	// UDPFullCone lets any remote endpoint send through a UDP mapping
	// (endpoint-independent filtering; breaks B8).
	UDPFullCone
	// BorrowPorts lets an instance with no suitable port take one of
	// another instance's ports (breaks B5 and B9).
	BorrowPorts
	// FirstIPOnly makes an instance whose blocks span two frontend IPs use
	// only those on the first: it is exhausted while the other IP still
	// holds its ports (breaks B9).
	FirstIPOnly
	// SkipCapacityCheck accepts a manual allocation that exceeds frontend
	// IPs × ports per IP (breaks B4).
	SkipCapacityCheck
	// FINRestart restarts the FIN timer on every later packet of the flow
	// (breaks B10).
	FINRestart
	// RSTLengthensFIN lets a RST after a FIN move the release time later
	// than the FIN's (breaks B11).
	RSTLengthensFIN
	// InboundNoRefresh: inbound packets do not restart the idle timer
	// (breaks B12).
	InboundNoRefresh
	// DroppedRefresh: an inbound UDP packet dropped as unsolicited still
	// restarts the mapping's idle timer (breaks B12).
	DroppedRefresh
	// LateRelease releases a flow one nanosecond after its release time,
	// so a packet at exactly T still finds it (breaks B13 and C4).
	LateRelease
	// NoResetOnIdle ignores tcpResetOnIdle: expiry is always silent
	// (breaks B14).
	NoResetOnIdle
	// NoisyExpiry sends the RSTs of tcpResetOnIdle even when it is off
	// (breaks B14).
	NoisyExpiry
	// TranslateFragments translates IP fragments as whole packets (breaks
	// B15).
	TranslateFragments
	// IgnoreProtocolRule carries both TCP and UDP whatever the outbound
	// rule's protocol (breaks B15).
	IgnoreProtocolRule
	// NoReclaim: pool growth under the default table does not take ports
	// back from existing instances (breaks B16).
	NoReclaim
	// ReclaimedFlowsSurvive keeps translating the flows on reclaimed ports
	// after pool growth (breaks B16).
	ReclaimedFlowsSurvive
	// ReversePlacement places instances on the blocks in reverse
	// configuration order (breaks C2).
	ReversePlacement
	// HighestBlockFirst makes port choice start at the instance's highest
	// block (breaks C3).
	HighestBlockFirst
	// StrictAlways drops a TCP packet with no flow unless it is a SYN even
	// when strict mode is off (breaks C5).
	StrictAlways

	end
)

var names = [...]string{
	"tcp-same-destination", "no-port-reuse", "udp-full-tuple", "udp-full-cone",
	"borrow-ports", "first-ip-only", "skip-capacity-check", "fin-restart",
	"rst-lengthens-fin", "inbound-no-refresh", "dropped-refresh", "late-release",
	"no-reset-on-idle", "noisy-expiry", "translate-fragments", "ignore-protocol-rule",
	"no-reclaim", "reclaimed-flows-survive", "reverse-placement", "highest-block-first",
	"strict-always",
}

// Has reports whether every mutation of m is in s.
func (s Set) Has(m Set) bool { return s&m == m && m != 0 }

// All returns every mutation, one per element, in declaration order.
func All() []Set {
	out := make([]Set, 0, len(names))
	for m := Set(1); m < end; m <<= 1 {
		out = append(out, m)
	}
	return out
}

// String returns the mutations' names joined by "+", "tcp-same-destination"
// for instance, or "none" for the zero Set.
func (s Set) String() string {
	if s == 0 {
		return "none"
	}
	var parts []string
	for i, m := 0, Set(1); m < end; i, m = i+1, m<<1 {
		if s&m != 0 {
			parts = append(parts, names[i])
		}
	}
	if s&^(end-1) != 0 {
		parts = append(parts, "unknown")
	}
	return strings.Join(parts, "+")
}
