package regress

import (
	"fmt"
	"slices"
	"strings"

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

// dropBehavior is the behaviour a drop reason shows, as the report names
// it.
var dropBehavior = map[string]string{
	"exhausted": "B9", "unsolicited": "B8", "unsupported-protocol": "B15", "fragment": "B15",
	"released": "B14/B16", "not-syn": "C5", "no-instance": "B5",
}

// Compare lists how got differs from want, field by field, in a fixed
// order: backends, counts, drops, instance rows, drained releases,
// verdicts, events, outside view.
func Compare(want, got Outcome) []Difference {
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
		{"cut", "", wc.Cut, gc.Cut}, {"tcp", "", wc.TCP, gc.TCP}, {"udp", "", wc.UDP, gc.UDP}, {"icmp", "B15", wc.ICMP, gc.ICMP},
		{"other_protocols", "B15", wc.Other, gc.Other}, {"fragments", "B15", wc.Fragments, gc.Fragments},
		{"outbound", "", wc.Outbound, gc.Outbound}, {"replies", "", wc.Replies, gc.Replies},
		{"not_through_nat", "", wc.NotThroughNAT, gc.NotThroughNAT}, {"replies_without_flow", "C8", wc.RepliesNoFlow, gc.RepliesNoFlow},
		{"translated", "", wc.Translated, gc.Translated}, {"dropped", "", wc.Dropped, gc.Dropped}, {"reset", "B14", wc.Reset, gc.Reset},
		{"emitted", "B14", wc.Emitted, gc.Emitted}, {"written", "", wc.Written, gc.Written},
	} {
		if f.w != f.g {
			add(0, "counts."+f.name, f.w, f.g, f.behavior)
		}
	}
	for _, r := range unionKeys(want.Drops, got.Drops) {
		if want.Drops[r] != got.Drops[r] {
			add(0, "drops."+r, want.Drops[r], got.Drops[r], dropBehavior[r])
		}
	}
	d = append(d, compareInstances(want.Instances, got.Instances)...)
	d = append(d, compareReleases("drained", want.Drained, got.Drained)...)
	for i := range max(len(want.Verdicts), len(got.Verdicts)) {
		w, g := "(none)", "(none)"
		if i < len(want.Verdicts) {
			w = want.Verdicts[i]
		}
		if i < len(got.Verdicts) {
			g = got.Verdicts[i]
		}
		if w != g {
			d = append(d, Difference{Field: fmt.Sprintf("verdict %d", i+1), Expected: fmt.Sprintf("%q", w), Got: fmt.Sprintf("%q", g), Behavior: "B9"})
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
func compareInstances(want, got []InstanceOutcome) []Difference {
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
			{"allocated", "B3/B4", w.Allocated, g.Allocated, 0},
			{"peak_in_use", "B6/B7", w.Peak, g.Peak, 0},
			{"in_use_at_end", "C9", w.InUse, g.InUse, 0},
			{"flows", "", w.Flows, g.Flows, 0},
			{"exhausted", "B9", w.Exhausted, g.Exhausted, first},
			{"first_exhausted_packet", "B9", w.FirstExhausted, g.FirstExhausted, first},
		} {
			if f.w != f.g {
				d = append(d, Difference{Packet: f.packet, Field: k + ": " + f.name, Expected: fmt.Sprint(f.w), Got: fmt.Sprint(f.g), Behavior: f.behavior})
			}
		}
		wr, gr := w.Releases, g.Releases
		d = append(d, compareReleases(k+": releases", &wr, &gr)...)
		d = append(d, compareReleases(k+": drained_releases", w.DrainedReleases, g.DrainedReleases)...)
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
func compareReleases(field string, want, got *replay.ReleaseCount) []Difference {
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
		{"fin", "B10", w.FIN, g.FIN}, {"rst", "B11", w.RST, g.RST}, {"idle", "B12", w.Idle, g.Idle}, {"reclaimed", "B16", w.Reclaimed, g.Reclaimed},
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
