package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// Shard is one of Count parts of a job, 0 ≤ Index < Count: of a replay's
// instances (Config.Shard: instance i belongs to shard i mod Count), or of
// a regression corpus (natcheck regress --shard).
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// ParseShard parses "i/n", 0 ≤ i < n.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("shard %q: want i/n with 0 ≤ i < n (e.g. 0/4)", s)
	}
	return Shard{Index: i, Count: n}, nil
}

// String returns "i/n".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Owns reports whether instance inst belongs to the shard.
func (s Shard) Owns(inst int) bool { return inst%s.Count == s.Index }

// check says whether a replay can be split this way: the instances of a
// profile that shares one inventory among them take each other's ports,
// so no machine could replay some of them alone.
func (s *Shard) check(p reference.Profile) error {
	if s == nil {
		return nil
	}
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return &reference.ConfigError{Field: "shard", Value: s.String(), Reason: "want i/n with 0 ≤ i < n"}
	}
	if p.Quota != reference.QuotaPerInstance {
		return &reference.ConfigError{Field: "shard", Value: s.String(), Behavior: reference.B5,
			Reason: fmt.Sprintf("profile %s shares one port inventory among its instances, so instances on different machines would take each other's ports: replay it on one machine", p.Name)}
	}
	return nil
}

// ErrMerge is matched by the error of results that are not the shards of
// one replay.
var ErrMerge = errors.New("results do not merge")

// MergeResults joins the results of the n shards of one replay into the
// result of the replay unsharded: its JSON (WriteJSON) is the same, byte
// for byte (samples, for the plot, are not merged). Every shard 0 … n-1
// must be there once, all of one replay: the same files, configuration,
// instances and records.
//
// Every shard reads every record, so the counts of what the records are
// (packets, protocols, directions, unreadable records) are each shard's
// alike; the counts of what the NAT did, the drops, the instance rows and
// the releases after the end are each its own instances', and add up. The
// one drop counted by the reading itself, a record whose headers cannot
// be read (counted as cut and dropped as malformed), is in every shard
// and counted once.
func MergeResults(parts []*Result) (*Result, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("merge: %w: no result", ErrMerge)
	}
	n := 0
	byIndex := map[int]*Result{}
	for k, p := range parts {
		if p.Shard == nil {
			return nil, fmt.Errorf("merge: %w: result %d is not a shard (replay with --shard i/n)", ErrMerge, k+1)
		}
		if n == 0 {
			n = p.Shard.Count
		}
		if p.Shard.Count != n {
			return nil, fmt.Errorf("merge: %w: result %d is shard %s, result 1 one of %d", ErrMerge, k+1, p.Shard, n)
		}
		if byIndex[p.Shard.Index] != nil {
			return nil, fmt.Errorf("merge: %w: shard %s given twice", ErrMerge, p.Shard)
		}
		byIndex[p.Shard.Index] = p
	}
	for i := range n {
		if byIndex[i] == nil {
			return nil, fmt.Errorf("merge: %w: shard %d/%d missing", ErrMerge, i, n)
		}
	}
	first := byIndex[0]
	out := *first
	out.Shard, out.Samples = nil, nil
	out.Drops = map[string]uint64{}
	out.Instances, out.Drained = nil, nil
	c := &out.Counts
	c.RepliesNoFlow, c.Translated, c.Dropped, c.Reset, c.Emitted, c.Written = 0, 0, 0, 0, 0, 0
	for i := range n {
		p := byIndex[i]
		if err := sameReplay(first, p); err != nil {
			return nil, fmt.Errorf("merge: %w: shard %s: %w", ErrMerge, p.Shard, err)
		}
		pc := p.Counts
		c.RepliesNoFlow += pc.RepliesNoFlow
		c.Translated += pc.Translated
		c.Dropped += pc.Dropped
		c.Reset += pc.Reset
		c.Emitted += pc.Emitted
		c.Written += pc.Written
		for r, v := range p.Drops {
			out.Drops[r] += v
		}
		out.Instances = append(out.Instances, p.Instances...)
		if d := p.Drained; d != nil {
			if out.Drained == nil {
				out.Drained = &DrainSummary{Until: d.Until}
			}
			if d.Until.After(out.Drained.Until) {
				out.Drained.Until = d.Until
			}
			out.Drained.Releases.add(d.Releases)
		}
	}
	if cut := uint64(c.Cut); cut > 0 {
		mal := reference.DropMalformed.String()
		out.Drops[mal] -= uint64(n-1) * cut
	}
	// Each instance's rows come from the one shard that owns it, in
	// order: sorted by instance, they are the unsharded replay's.
	slices.SortStableFunc(out.Instances, func(a, b InstanceReport) int { return a.Instance - b.Instance })
	return &out, nil
}

// sameReplay reports how shard p is not of the same replay as shard q.
func sameReplay(q, p *Result) error {
	for _, f := range []struct {
		name string
		a, b any
	}{
		{"files", q.Files, p.Files}, {"backends", q.Backends, p.Backends}, {"configuration", q.Config, p.Config},
		{"allocation plan", q.Plan, p.Plan}, {"start", q.Start, p.Start}, {"end", q.End, p.End},
		{"records", [12]int64{q.Counts.Packets, q.Counts.IPv6, q.Counts.NonIP, q.Counts.Cut, q.Counts.TCP, q.Counts.UDP,
			q.Counts.ICMP, q.Counts.Other, q.Counts.Fragments, q.Counts.Outbound, q.Counts.Replies, q.Counts.NotThroughNAT},
			[12]int64{p.Counts.Packets, p.Counts.IPv6, p.Counts.NonIP, p.Counts.Cut, p.Counts.TCP, p.Counts.UDP,
				p.Counts.ICMP, p.Counts.Other, p.Counts.Fragments, p.Counts.Outbound, p.Counts.Replies, p.Counts.NotThroughNAT}},
		{"drain", q.Drained != nil, p.Drained != nil},
	} {
		if !reflect.DeepEqual(f.a, f.b) {
			return fmt.Errorf("its %s differ from shard %s's: %v, %v", f.name, q.Shard, f.b, f.a)
		}
	}
	return nil
}

// ReadJSON reads a result WriteJSON wrote (natcheck merge reads the
// shards' reports with it): everything WriteJSON writes that is not
// derived from the rest (durations in seconds, verdicts). It is
// WriteJSON's inverse: TestShardedReplayMerges checks the round trip byte
// for byte.
func ReadJSON(name string, r io.Reader) (*Result, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read replay report %s: %w", name, err)
	}
	var doc jsonReport
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("read replay report %s: %w", name, err)
	}
	if doc.Schema != ReportSchema {
		return nil, fmt.Errorf("read replay report %s: schema %q, want %q", name, doc.Schema, ReportSchema)
	}
	c := doc.Config
	res := &Result{Files: doc.Files, Backends: doc.Backends, BackendsHow: doc.BackendsHow, Shard: doc.Shard,
		Config: ConfigSummary{Profile: c.Profile, Frontends: c.Frontends, PoolSize: c.PoolSize, PortsPerInstance: c.PortsPerInstance,
			IdleTimeout: time.Duration(math.Round(c.IdleSeconds * 1e9)), TCPResetOnIdle: c.TCPResetOnIdle, Protocols: c.Protocols, Strict: c.Strict},
		Counts: doc.Counts, Drops: map[string]uint64{}}
	if doc.Status == "partial" {
		res.Partial = doc.Error
	}
	if doc.Start != nil {
		res.Start, res.End = *doc.Start, *doc.End
	}
	if d := doc.Drained; d != nil {
		res.Drained = &DrainSummary{Until: d.Until, Releases: d.Releases}
	}
	pl := doc.Plan
	res.Plan = reference.Plan{Profile: pl.Profile, PoolSize: pl.PoolSize, Manual: pl.Allocation == "outbound-rule", TierPorts: pl.TierPorts,
		PerInstance: pl.PerInstance, MaxPool: pl.MaxPool}
	for _, ip := range pl.Instances {
		p := reference.InstancePlan{Index: ip.Index, Ports: ip.Ports}
		if ip.Inside != nil {
			p.Inside = *ip.Inside
		}
		for _, rg := range ip.Ranges {
			p.Ranges = append(p.Ranges, reference.PortRange{IP: rg.IP, First: rg.First, Last: rg.Last})
		}
		res.Plan.Instances = append(res.Plan.Instances, p)
	}
	for _, f := range pl.Frontends {
		res.Plan.Frontends = append(res.Plan.Frontends, reference.FrontendPlan{IP: f.IP, Allocated: f.Allocated, Free: f.Free})
	}
	for _, d := range doc.Drops {
		res.Drops[d.Reason] = d.Packets
	}
	for _, ji := range doc.Instances {
		ir := ji.InstanceReport
		if m := ji.FirstExhaustion; m != nil {
			ir.FirstExhaustion = &Mark{File: m.File, Packet: m.Packet, Time: m.Time}
		}
		res.Instances = append(res.Instances, ir)
	}
	return res, nil
}
