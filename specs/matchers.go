package specs

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/onsi/gomega/types"

	"github.com/natcheck/natcheck/reference"
)

// property is a Gomega matcher for one property of SEMANTICS.md, on actual
// values of type T: desc completes "Expected …", and match returns whether
// the property holds and, when not, the evidence.
type property[T any] struct {
	desc  string
	match func(T) (bool, string)
	why   string
}

func (m *property[T]) Match(actual any) (bool, error) {
	v, ok := actual.(T)
	if !ok && actual != nil {
		var zero T
		return false, fmt.Errorf("matcher %q wants a %T, got %T", m.desc, zero, actual)
	}
	ok, m.why = m.match(v)
	return ok, nil
}

func (m *property[T]) FailureMessage(any) string {
	return "Expected " + m.desc + "\n" + m.why
}

func (m *property[T]) NegatedFailureMessage(any) string {
	return "Expected not " + m.desc + "\n" + m.why
}

func prop[T any](desc string, match func(T) (bool, string)) types.GomegaMatcher {
	return &property[T]{desc: desc, match: match}
}

// BeForwarded matches an Outcome whose packet went through the NAT.
func BeForwarded() types.GomegaMatcher {
	return prop("the packet to be forwarded", func(o Outcome) (bool, string) {
		return o.Forwarded, "got: " + o.String()
	})
}

// BeDropped matches an Outcome whose packet went nowhere: not forwarded,
// and not answered with a RST either.
func BeDropped() types.GomegaMatcher {
	return prop("the packet to be dropped (nothing comes out)", func(o Outcome) (bool, string) {
		return !o.Forwarded && !answeredWithRST(o), "got: " + o.String()
	})
}

func answeredWithRST(o Outcome) bool {
	for _, e := range o.Emitted {
		if e.Flags.Has(reference.RST) && e.Dir != o.Sent.Dir && e.Tuple.Dst == o.Sent.Tuple.Src {
			return true
		}
	}
	return false
}

// BeAnsweredWithRST matches an Outcome whose packet was not forwarded and
// whose sender got a RST from the NAT (B14).
func BeAnsweredWithRST() types.GomegaMatcher {
	return prop("the packet to be answered with a RST to its sender", func(o Outcome) (bool, string) {
		return !o.Forwarded && answeredWithRST(o), "got: " + o.String()
	})
}

// BeForwardedTo matches an inbound Outcome translated back to the inside
// endpoint, its source unchanged (B8).
func BeForwardedTo(inside netip.AddrPort) types.GomegaMatcher {
	return prop("the packet to be translated back to "+inside.String(), func(o Outcome) (bool, string) {
		return o.Forwarded && o.Packet.Tuple.Dst == inside && o.Packet.Tuple.Src == o.Sent.Tuple.Src, "got: " + o.String()
	})
}

// ranges returns instance i's SNAT port ranges of plan.
func ranges(plan reference.Plan, instance int) []reference.PortRange {
	if instance < 0 || instance >= len(plan.Instances) {
		return nil
	}
	return plan.Instances[instance].Ranges
}

func inRanges(rs []reference.PortRange, ap netip.AddrPort) bool {
	for _, r := range rs {
		if r.IP == ap.Addr() && ap.Port() >= r.First && ap.Port() <= r.Last {
			return true
		}
	}
	return false
}

// LieInAllocationOf matches forwarded outbound Outcomes (one, or a slice)
// whose SNAT endpoints all lie in backend instance's allocation in plan
// (B2–B5).
func LieInAllocationOf(plan reference.Plan, instance int) types.GomegaMatcher {
	rs := ranges(plan, instance)
	desc := fmt.Sprintf("every SNAT endpoint to lie in instance %d's allocation %v", instance, rs)
	check := func(os []Outcome) (bool, string) {
		for i, o := range os {
			if !o.Forwarded || !inRanges(rs, o.SNAT()) {
				return false, fmt.Sprintf("flow %d: %v", i+1, o)
			}
		}
		return true, ""
	}
	return anyOutcomes(desc, check)
}

// anyOutcomes builds a matcher that takes an Outcome or an []Outcome.
func anyOutcomes(desc string, check func([]Outcome) (bool, string)) types.GomegaMatcher {
	return &outcomesMatcher{property[[]Outcome]{desc: desc, match: check}}
}

type outcomesMatcher struct{ property[[]Outcome] }

func (m *outcomesMatcher) Match(actual any) (bool, error) {
	if o, ok := actual.(Outcome); ok {
		actual = []Outcome{o}
	}
	return m.property.Match(actual)
}

// ShareOneSNATPort matches outbound Outcomes that were all forwarded from
// one SNAT endpoint (B6, B7: flows to different destinations may share).
func ShareOneSNATPort() types.GomegaMatcher {
	return anyOutcomes("the flows to share one SNAT endpoint", func(os []Outcome) (bool, string) {
		for i, o := range os {
			if !o.Forwarded || o.SNAT() != os[0].SNAT() {
				return false, fmt.Sprintf("flow 1: %v\nflow %d: %v", os[0], i+1, o)
			}
		}
		return true, ""
	})
}

// UseDistinctSNATPorts matches outbound Outcomes that were all forwarded,
// no two from the same SNAT endpoint (B6, B7: flows to one destination
// never share).
func UseDistinctSNATPorts() types.GomegaMatcher {
	return anyOutcomes("the flows to use distinct SNAT endpoints", func(os []Outcome) (bool, string) {
		seen := map[netip.AddrPort]int{}
		for i, o := range os {
			if !o.Forwarded {
				return false, fmt.Sprintf("flow %d was not forwarded: %v", i+1, o)
			}
			if j, ok := seen[o.SNAT()]; ok {
				return false, fmt.Sprintf("flows %d and %d share %v:\n%v\n%v", j+1, i+1, o.SNAT(), os[j], o)
			}
			seen[o.SNAT()] = i
		}
		return true, ""
	})
}

// BeExhaustedAfter matches a burst of n+1 new flows (from Fill) of which
// the first n were forwarded and the last, the (n+1)-th, was dropped (B9).
func BeExhaustedAfter(n int) types.GomegaMatcher {
	return anyOutcomes(fmt.Sprintf("the first %d flows to be forwarded and flow %d to be dropped", n, n+1), func(os []Outcome) (bool, string) {
		if len(os) != n+1 {
			return false, fmt.Sprintf("the burst has %d flows, want %d", len(os), n+1)
		}
		for i, o := range os[:n] {
			if !o.Forwarded {
				return false, fmt.Sprintf("flow %d of %d failed: %v", i+1, n, o)
			}
		}
		if last := os[n]; last.Forwarded || answeredWithRST(last) {
			return false, fmt.Sprintf("flow %d went through: %v", n+1, last)
		}
		return true, ""
	})
}

// BeRejectedConfig matches the error of a configuration the NAT (or its
// allocation plan) rejects; mention, if not empty, must appear in it.
func BeRejectedConfig(mention string) types.GomegaMatcher {
	return prop("the configuration to be rejected"+cond(mention != "", " mentioning "+fmt.Sprintf("%q", mention)), func(err error) (bool, string) {
		if err == nil {
			return false, "it was accepted"
		}
		return strings.Contains(err.Error(), mention), "error: " + err.Error()
	})
}

func cond(b bool, s string) string {
	if b {
		return s
	}
	return ""
}
