// Package regress is natcheck's regression suite over recorded captures:
// each expectation file names a capture, the replay configuration to run
// it with, and the outcome it must give (counts, drops by reason, the
// verdict line of every instance). A team records its own captures and
// expectations the same way; `natcheck regress` runs them and says, for
// each, what changed.
package regress

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay"
)

// Setup is the replay configuration of an expectation, as natcheck
// replay's flags name it.
type Setup struct {
	Frontends        []netip.Addr `json:"frontends"`
	Backends         string       `json:"backends,omitempty"` // empty: detection
	PortsPerInstance int          `json:"ports_per_instance,omitempty"`
	PoolSize         int          `json:"pool_size,omitempty"`
	IdleTimeout      string       `json:"idle_timeout,omitempty"` // a Go duration, e.g. "4m"
	Protocol         string       `json:"protocol,omitempty"`
	Strict           bool         `json:"strict,omitempty"`
	TCPResetOnIdle   bool         `json:"tcp_reset_on_idle,omitempty"`
}

// Outcome is what a replay must give: stable across runs and machines.
type Outcome struct {
	Backends []netip.Addr      `json:"backends"`
	Counts   replay.Counts     `json:"counts"`
	Drops    map[string]uint64 `json:"drops"`
	Verdicts []string          `json:"verdicts"`
}

// Expectation is one expectation file.
type Expectation struct {
	// Capture is the capture's path, relative to the expectation file.
	Capture string  `json:"capture"`
	Setup   Setup   `json:"setup"`
	Outcome Outcome `json:"outcome"`

	path string
}

// ErrMismatch is matched by the error of a capture whose outcome differs
// from its expectation.
var ErrMismatch = errors.New("outcome differs from expectation")

// Load reads an expectation file.
func Load(path string) (*Expectation, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load expectation: %w", err)
	}
	var e Expectation
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("load expectation %s: %w", path, err)
	}
	if e.Capture == "" {
		return nil, fmt.Errorf("load expectation %s: no capture named", path)
	}
	e.path = path
	return &e, nil
}

// CapturePath is the capture's path: Capture itself if absolute, else
// relative to the expectation file.
func (e *Expectation) CapturePath() string {
	if filepath.IsAbs(e.Capture) {
		return e.Capture
	}
	return filepath.Join(filepath.Dir(e.path), e.Capture)
}

// Run replays the capture with the expectation's setup and returns what
// came out.
func (e *Expectation) Run() (Outcome, error) {
	s := e.Setup
	specs, err := replay.ParseBackends(s.Backends)
	if err != nil {
		return Outcome{}, fmt.Errorf("regress %s: %w", e.path, err)
	}
	protos, err := reference.ParseProtocols(s.Protocol)
	if err != nil {
		return Outcome{}, fmt.Errorf("regress %s: %w", e.path, err)
	}
	var idle time.Duration
	if s.IdleTimeout != "" {
		if idle, err = time.ParseDuration(s.IdleTimeout); err != nil {
			return Outcome{}, fmt.Errorf("regress %s: idle timeout: %w", e.path, err)
		}
	}
	cfg := replay.Config{Engine: reference.Config{Frontends: s.Frontends, PortsPerInstance: s.PortsPerInstance, IdleTimeout: idle,
		Protocols: protos, Strict: s.Strict, TCPResetOnIdle: s.TCPResetOnIdle}, Backends: specs, PoolSize: s.PoolSize, Workers: 1}
	res, err := replay.Run([]string{e.CapturePath()}, cfg)
	if err != nil {
		return Outcome{}, fmt.Errorf("regress %s: %w", e.path, err)
	}
	return Outcome{Backends: res.Backends, Counts: res.Counts, Drops: res.Drops, Verdicts: res.Verdicts()}, nil
}

// Check runs the expectation and returns the differences from it, one
// line each, and an error wrapping ErrMismatch if there are any.
func (e *Expectation) Check() ([]string, error) {
	got, err := e.Run()
	if err != nil {
		return nil, err
	}
	diff := Diff(e.Outcome, got)
	if len(diff) > 0 {
		return diff, fmt.Errorf("regress %s: %w (%d differences)", e.path, ErrMismatch, len(diff))
	}
	return nil, nil
}

// Update runs the expectation and writes what came out as its outcome.
func (e *Expectation) Update() error {
	got, err := e.Run()
	if err != nil {
		return err
	}
	return e.Record(got)
}

// Record writes got as the expectation's outcome, to its file. Its errors
// are those of writing the file (a caller tells them apart from Run's).
func (e *Expectation) Record(got Outcome) error {
	e.Outcome = got
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("update %s: %w", e.path, err)
	}
	if err := os.WriteFile(e.path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("update %s: %w", e.path, err)
	}
	return nil
}

// Diff lists how got differs from want, field by field.
func Diff(want, got Outcome) []string {
	var d []string
	if !slices.Equal(want.Backends, got.Backends) {
		d = append(d, fmt.Sprintf("backends: want %v, got %v", want.Backends, got.Backends))
	}
	wc, gc := want.Counts, got.Counts
	for _, f := range []struct {
		name string
		w, g int64
	}{
		{"packets", wc.Packets, gc.Packets}, {"ipv6", wc.IPv6, gc.IPv6}, {"non-ip", wc.NonIP, gc.NonIP}, {"cut", wc.Cut, gc.Cut},
		{"tcp", wc.TCP, gc.TCP}, {"udp", wc.UDP, gc.UDP}, {"icmp", wc.ICMP, gc.ICMP}, {"other", wc.Other, gc.Other},
		{"fragments", wc.Fragments, gc.Fragments}, {"outbound", wc.Outbound, gc.Outbound}, {"replies", wc.Replies, gc.Replies},
		{"not through the NAT", wc.NotThroughNAT, gc.NotThroughNAT}, {"replies without flow", wc.RepliesNoFlow, gc.RepliesNoFlow},
		{"translated", wc.Translated, gc.Translated}, {"dropped", wc.Dropped, gc.Dropped}, {"reset", wc.Reset, gc.Reset},
		{"emitted", wc.Emitted, gc.Emitted},
	} {
		if f.w != f.g {
			d = append(d, fmt.Sprintf("%s: want %d, got %d", f.name, f.w, f.g))
		}
	}
	reasons := map[string]bool{}
	for r := range want.Drops {
		reasons[r] = true
	}
	for r := range got.Drops {
		reasons[r] = true
	}
	var rs []string
	for r := range reasons {
		rs = append(rs, r)
	}
	slices.Sort(rs)
	for _, r := range rs {
		if want.Drops[r] != got.Drops[r] {
			d = append(d, fmt.Sprintf("drops %s: want %d, got %d", r, want.Drops[r], got.Drops[r]))
		}
	}
	for i := range max(len(want.Verdicts), len(got.Verdicts)) {
		var w, g string
		if i < len(want.Verdicts) {
			w = want.Verdicts[i]
		}
		if i < len(got.Verdicts) {
			g = got.Verdicts[i]
		}
		if w != g {
			d = append(d, fmt.Sprintf("verdict %d: want %q, got %q", i+1, w, g))
		}
	}
	return d
}
