package regress

import (
	"fmt"
	"slices"
	"strings"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay"
)

// Difference is one way an outcome differs from its expectation: the
// field, what was expected and what came out, the packet it is about when
// there is one, and the behaviour of SEMANTICS.md that the field shows.
type Difference struct {
	// Packet is the input packet number the difference is about, or 0.
	Packet int64 `json:"packet,omitempty"`
	// Field names what differs: "counts.translated", "drops.exhausted",
	// "instance 0 tcp 203.0.113.1: releases.rst", "verdict 1",
	// "events", "outside_view", ...
	Field    string `json:"field"`
	Expected string `json:"expected"`
	Got      string `json:"got"`
	Behavior string `json:"behavior,omitempty"`
}

// String is the difference as one readable line: "packet 348:
// drops.exhausted: expected 7, got 8 (B9)".
func (d Difference) String() string {
	var b strings.Builder
	if d.Packet > 0 {
		fmt.Fprintf(&b, "packet %d: ", d.Packet)
	}
	fmt.Fprintf(&b, "%s: expected %s, got %s", d.Field, d.Expected, d.Got)
	if d.Behavior != "" {
		fmt.Fprintf(&b, " (%s)", d.Behavior)
	}
	return b.String()
}

// The digest fields; Check explains them with their first differing record.
const (
	fieldEvents  = "events"
	fieldOutside = "outside_view"
)

// cites are the behaviour IDs a profile's fields show, for the lines of
// Compare.
type cites struct {
	exhausted, reset, protocols, allocation, reuse, atEnd string
	fin, rst, idle                                        string
	drops                                                 map[string]string
}

// citesFor returns the IDs of profile name (empty: azure-lb): drops as the
// engine's verdicts cite them (reference.Profile.Cites), the rest from
// SEMANTICS.md's items for the same thing.
func citesFor(name string) cites {
	p, err := reference.ProfileByName(name)
	if err != nil {
		p = reference.AzureLB()
	}
	c := cites{drops: map[string]string{}}
	for r := reference.DropExhausted; int(r) < reference.NumDropReasons; r++ {
		if b := p.Cites(r); b != reference.NoBehavior {
			c.drops[r.String()] = b.String()
		}
	}
	switch p.Name {
	case reference.NameLinux:
		c.exhausted, c.reset, c.protocols, c.allocation, c.reuse, c.atEnd = "L4", "", "L10", "L1", "L3", "L5/L7"
		c.fin, c.rst, c.idle = "L5", "L6", "L5/L7"
	case reference.NameAzureNATGW:
		c.exhausted, c.reset, c.protocols, c.allocation, c.reuse, c.atEnd = "G3", "G6", "G8", "G1", "G3", "G5"
		c.fin, c.rst, c.idle = "G4", "G4", "G4/G5"
	case reference.NameRFC:
		c.exhausted, c.reset, c.protocols, c.allocation, c.reuse, c.atEnd = "R3", "", "R6", "R3", "R1", "R4/R5"
		c.fin, c.rst, c.idle = "R5", "R5", "R4/R5"
	default:
		c.exhausted, c.reset, c.protocols, c.allocation, c.reuse, c.atEnd = "B9", "B14", "B15", "B3/B4", "B6/B7", "C9"
		c.fin, c.rst, c.idle = "B10", "B11", "B12"
		c.drops["released"] = "B14/B16"
		c.drops["no-instance"] = "B5"
	}
	return c
}

// Compare lists how got differs from want, field by field, in a fixed
// order: backends, counts, drops, instance rows, drained releases,
// verdicts, events, outside view. profile (natcheck replay's --profile,
// empty for azure-lb) decides the behaviour IDs the lines cite.
func Compare(profile string, want, got Outcome) []Difference {
	c := citesFor(profile)
	var d []Difference
	add := func(packet int64, field string, w, g any, behavior string) {
		d = append(d, Difference{Packet: packet, Field: field, Expected: fmt.Sprint(w), Got: fmt.Sprint(g), Behavior: behavior})
	}
	if !slices.Equal(want.Backends, got.Backends) {
		add(0, "backends", want.Backends, got.Backends, "")
	}
	wc, gc := want.Counts, got.Counts
	for _, f := range []struct {
		name, behavior string
		w, g           int64
	}{
		{"packets", "", wc.Packets, gc.Packets}, {"ipv6", "", wc.IPv6, gc.IPv6}, {"non_ip", "", wc.NonIP, gc.NonIP},
		{"cut", "", wc.Cut, gc.Cut}, {"tcp", "", wc.TCP, gc.TCP}, {"udp", "", wc.UDP, gc.UDP}, {"icmp", c.protocols, wc.ICMP, gc.ICMP},
		{"other_protocols", c.protocols, wc.Other, gc.Other}, {"fragments", c.protocols, wc.Fragments, gc.Fragments},
		{"outbound", "", wc.Outbound, gc.Outbound}, {"replies", "", wc.Replies, gc.Replies},
		{"not_through_nat", "", wc.NotThroughNAT, gc.NotThroughNAT}, {"replies_without_flow", "C8", wc.RepliesNoFlow, gc.RepliesNoFlow},
		{"translated", "", wc.Translated, gc.Translated}, {"dropped", "", wc.Dropped, gc.Dropped}, {"reset", c.reset, wc.Reset, gc.Reset},
		{"emitted", c.reset, wc.Emitted, gc.Emitted}, {"written", "", wc.Written, gc.Written},
	} {
		if f.w != f.g {
			add(0, "counts."+f.name, f.w, f.g, f.behavior)
		}
	}
	for _, r := range unionKeys(want.Drops, got.Drops) {
		if want.Drops[r] != got.Drops[r] {
			add(0, "drops."+r, want.Drops[r], got.Drops[r], c.drops[r])
		}
	}
	d = append(d, compareInstances(c, want.Instances, got.Instances)...)
	d = append(d, compareReleases(c, "drained", want.Drained, got.Drained)...)
	for i := range max(len(want.Verdicts), len(got.Verdicts)) {
		w, g := "(none)", "(none)"
		if i < len(want.Verdicts) {
			w = want.Verdicts[i]
		}
		if i < len(got.Verdicts) {
			g = got.Verdicts[i]
		}
		if w != g {
			d = append(d, Difference{Field: fmt.Sprintf("verdict %d", i+1), Expected: fmt.Sprintf("%q", w), Got: fmt.Sprintf("%q", g), Behavior: c.exhausted})
		}
	}
	if !want.Events.Equal(got.Events) {
		d = append(d, Difference{Field: fieldEvents, Expected: want.Events.short(), Got: got.Events.short()})
	}
	if !want.Outside.Equal(got.Outside) {
		d = append(d, Difference{Field: fieldOutside, Expected: want.Outside.short(), Got: got.Outside.short()})
	}
	return d
}

// rowKey names a report row.
func rowKey(r InstanceOutcome) string {
	k := fmt.Sprintf("instance %d %s", r.Instance, r.Proto)
	if r.Frontend.IsValid() {
		k += " " + r.Frontend.String()
	}
	return k
}

// compareInstances compares the report rows, matched by instance,
// protocol and frontend IP.
func compareInstances(c cites, want, got []InstanceOutcome) []Difference {
	var d []Difference
	gotBy := map[string]InstanceOutcome{}
	for _, r := range got {
		gotBy[rowKey(r)] = r
	}
	seen := map[string]bool{}
	for _, w := range want {
		k := rowKey(w)
		seen[k] = true
		g, ok := gotBy[k]
		if !ok {
			d = append(d, Difference{Field: k, Expected: "a row", Got: "none (no flow and no refusal)"})
			continue
		}
		var first int64
		if w.FirstExhausted != g.FirstExhausted {
			first = min(nonZero(w.FirstExhausted), nonZero(g.FirstExhausted))
		}
		for _, f := range []struct {
			name, behavior string
			w, g           any
			packet         int64
		}{
			{"inside", "", w.Inside, g.Inside, 0},
			{"allocated", c.allocation, w.Allocated, g.Allocated, 0},
			{"peak_in_use", c.reuse, w.Peak, g.Peak, 0},
			{"in_use_at_end", c.atEnd, w.InUse, g.InUse, 0},
			{"flows", "", w.Flows, g.Flows, 0},
			{"exhausted", c.exhausted, w.Exhausted, g.Exhausted, first},
			{"first_exhausted_packet", c.exhausted, w.FirstExhausted, g.FirstExhausted, first},
		} {
			if f.w != f.g {
				d = append(d, Difference{Packet: f.packet, Field: k + ": " + f.name, Expected: fmt.Sprint(f.w), Got: fmt.Sprint(f.g), Behavior: f.behavior})
			}
		}
		wr, gr := w.Releases, g.Releases
		d = append(d, compareReleases(c, k+": releases", &wr, &gr)...)
		d = append(d, compareReleases(c, k+": drained_releases", w.DrainedReleases, g.DrainedReleases)...)
	}
	for _, g := range got {
		if k := rowKey(g); !seen[k] {
			d = append(d, Difference{Field: k, Expected: "none", Got: fmt.Sprintf("a row (%d flows, %d refused)", g.Flows, g.Exhausted)})
		}
	}
	return d
}

// compareReleases compares release counts reason by reason; nil counts as
// zero.
func compareReleases(c cites, field string, want, got *replay.ReleaseCount) []Difference {
	var w, g replay.ReleaseCount
	if want != nil {
		w = *want
	}
	if got != nil {
		g = *got
	}
	var d []Difference
	for _, f := range []struct {
		name, behavior string
		w, g           uint64
	}{
		{"fin", c.fin, w.FIN, g.FIN}, {"rst", c.rst, w.RST, g.RST}, {"idle", c.idle, w.Idle, g.Idle}, {"reclaimed", "B16", w.Reclaimed, g.Reclaimed},
	} {
		if f.w != f.g {
			d = append(d, Difference{Field: field + "." + f.name, Expected: fmt.Sprint(f.w), Got: fmt.Sprint(f.g), Behavior: f.behavior})
		}
	}
	return d
}

func nonZero(p int64) int64 {
	if p == 0 {
		return 1<<63 - 1
	}
	return p
}

func unionKeys(a, b map[string]uint64) []string {
	var ks []string
	for k := range a {
		ks = append(ks, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}
