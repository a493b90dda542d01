package linuxnft

import (
	"fmt"
	"strings"

	"github.com/ti-mo/conntrack"
)

// A counter that can tell why the device dropped a packet: one of its
// rules' named counters (rules.go) or one of conntrack's per-namespace
// statistics, summed over the CPUs.
type dropCounter uint8

const (
	dropRuleInvalid dropCounter = iota
	dropRuleUnsolicited
	dropRuleLocal
	dropRuleUntranslated
	dropCTInsertFailed
	dropCTDrop
	dropCTEarlyDrop
	dropCTInvalid
	dropCTError
	nDropCounters
)

// dropReasons name each counter as a Delivery's Dropped says it, in the
// order they are reported when several move at once.
var dropReasons = [nDropCounters]string{
	dropRuleInvalid:      "ct state invalid (rule counter invalid, L11)",
	dropRuleUnsolicited:  "no flow for this inbound packet (rule counter unsolicited, B8/L8)",
	dropRuleLocal:        "no flow for this inbound packet to a frontend IP (rule counter unsolicited-local, B8/L8)",
	dropRuleUntranslated: "it would have left with a non-frontend source (rule counter untranslated)",
	dropCTInsertFailed:   "conntrack insert_failed: no unique SNAT tuple found (exhaustion, B9/L4)",
	dropCTDrop:           "conntrack drop",
	dropCTEarlyDrop:      "conntrack early_drop",
	dropCTInvalid:        "conntrack invalid",
	dropCTError:          "conntrack error",
}

// The reasons of the drop counters a caller of Drops may need by name.
var (
	// ExhaustionReason is conntrack's insert_failed: no free SNAT tuple.
	ExhaustionReason = dropReasons[dropCTInsertFailed]
	// InvalidReason is the invalid rule's (L11).
	InvalidReason = dropReasons[dropRuleInvalid]
	// UnsolicitedReason and LocalReason are the unsolicited rules' (B8,
	// L8), forwarded and local.
	UnsolicitedReason = dropReasons[dropRuleUnsolicited]
	LocalReason       = dropReasons[dropRuleLocal]
)

// dropCounts are the device's drop counters at one moment.
type dropCounts [nDropCounters]uint64

// readDrops reads the drop counters of the device.
func (n *NAT) readDrops() (dropCounts, error) {
	var c dropCounts
	rules, err := readCounters(n.nft)
	if err != nil {
		return c, err
	}
	c[dropRuleInvalid] = rules[cntInvalid]
	c[dropRuleUnsolicited] = rules[cntUnsolicited]
	c[dropRuleLocal] = rules[cntLocal]
	c[dropRuleUntranslated] = rules[cntUntranslated]
	stats, err := n.ct.Stats()
	if err != nil {
		return c, fmt.Errorf("conntrack statistics: %w", err)
	}
	c.addStats(stats)
	return c, nil
}

func (c *dropCounts) addStats(stats []conntrack.Stats) {
	for _, s := range stats {
		c[dropCTInsertFailed] += uint64(s.InsertFailed)
		c[dropCTDrop] += uint64(s.Drop)
		c[dropCTEarlyDrop] += uint64(s.EarlyDrop)
		c[dropCTInvalid] += uint64(s.Invalid)
		c[dropCTError] += uint64(s.Error)
	}
}

// since names the counters that moved from before to c, joined by "; ";
// empty when none did. conntrack's invalid statistic is left out when the
// invalid rule counted the packet, and its drop statistic when
// insert_failed moved (the same drop counted twice).
func (c dropCounts) since(before dropCounts) string {
	var why []string
	for i := range nDropCounters {
		if c[i] == before[i] {
			continue
		}
		if i == dropCTInvalid && c[dropRuleInvalid] != before[dropRuleInvalid] ||
			i == dropCTDrop && c[dropCTInsertFailed] != before[dropCTInsertFailed] {
			continue
		}
		why = append(why, dropReasons[i])
	}
	return strings.Join(why, "; ")
}
