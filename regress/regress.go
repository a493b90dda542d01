// Package regress is natcheck's regression suite over recorded captures:
// each expectation file names a capture, the replay configuration to run
// it with, and the outcome it must give: counts, drops by reason, per
// instance and protocol the flows, releases by reason (FIN, RST, idle,
// reclaimed) and the ports in use at the end, the verdict line of every
// instance, and the events and the outside view as SHA-256 digests with a
// fingerprint per record, so that a change names its first differing
// packet or event. A team records its own captures and expectations the
// same way; `natcheck regress` runs them and says, for each, what changed.
// Only Record (natcheck regress --update) writes an expectation file.
package regress

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
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
	// Drain runs the clock on after the last record until every flow has
	// ended (natcheck replay --drain).
	Drain bool `json:"drain,omitempty"`
	ProfileSetup
}

// ProfileSetup is the profile of a setup and its own parameters, as
// natcheck replay's --profile flags name them; empty fields keep the
// profile's defaults, and a parameter of another profile is an error, as
// on the command line.
type ProfileSetup struct {
	// Profile is azure-lb (or empty), linux, azure-natgw or rfc.
	Profile string `json:"profile,omitempty"`
	// Seed seeds the random port choices of azure-natgw and linux (G2, L2);
	// 0 keeps the profile's (1, as --seed).
	Seed uint64 `json:"seed,omitempty"`
	// Filtering, UDPTimeout, TCPEstablished, TCPTransitory and
	// NoInboundRefresh are the rfc profile's (R2, R4, R5); the timeouts
	// are Go durations.
	Filtering        string `json:"filtering,omitempty"`
	UDPTimeout       string `json:"udp_timeout,omitempty"`
	TCPEstablished   string `json:"tcp_established_timeout,omitempty"`
	TCPTransitory    string `json:"tcp_transitory_timeout,omitempty"`
	NoInboundRefresh bool   `json:"no_inbound_refresh,omitempty"`
}

// args returns the natcheck replay flags of the profile setup.
func (s ProfileSetup) args() []string {
	var a []string
	if s.Profile != "" {
		a = append(a, "--profile", s.Profile)
	}
	if s.Seed != 0 {
		a = append(a, "--seed", strconv.FormatUint(s.Seed, 10))
	}
	for _, f := range []struct{ flag, v string }{
		{"--filtering", s.Filtering}, {"--udp-timeout", s.UDPTimeout},
		{"--tcp-established-timeout", s.TCPEstablished}, {"--tcp-transitory-timeout", s.TCPTransitory},
	} {
		if f.v != "" {
			a = append(a, f.flag, f.v)
		}
	}
	if s.NoInboundRefresh {
		a = append(a, "--inbound-refresh=false")
	}
	return a
}

// profile builds the profile: the named one's defaults with the
// parameters set.
func (s ProfileSetup) profile() (reference.Profile, error) {
	p, err := reference.ProfileByName(s.Profile)
	if err != nil {
		return p, err
	}
	rfcOnly := s.Filtering != "" || s.UDPTimeout != "" || s.TCPEstablished != "" || s.TCPTransitory != "" || s.NoInboundRefresh
	switch {
	case rfcOnly && p.Name != reference.NameRFC:
		return p, fmt.Errorf("profile %s: filtering, udp_timeout, tcp_*_timeout and no_inbound_refresh are the rfc profile's", p.Name)
	case s.Seed != 0 && p.Name != reference.NameAzureNATGW && p.Name != reference.NameLinux:
		return p, fmt.Errorf("profile %s: seed applies to azure-natgw or linux (its choices are not random)", p.Name)
	}
	if s.Seed != 0 {
		p.Seed = s.Seed
	}
	if s.Filtering != "" {
		if p.Filtering, err = reference.ParseFiltering(s.Filtering); err != nil {
			return p, err
		}
	}
	for _, d := range []struct {
		name, v string
		to      *time.Duration
	}{{"udp_timeout", s.UDPTimeout, &p.RFC.UDP}, {"tcp_established_timeout", s.TCPEstablished, &p.RFC.TCPEstablished},
		{"tcp_transitory_timeout", s.TCPTransitory, &p.RFC.TCPTransitory}} {
		if d.v == "" {
			continue
		}
		if *d.to, err = time.ParseDuration(d.v); err != nil {
			return p, fmt.Errorf("%s: %w", d.name, err)
		}
	}
	if s.NoInboundRefresh {
		p.RFC.InboundRefresh = false
	}
	return p, nil
}

// Args returns the natcheck replay flags that give this setup, in a fixed
// order.
func (s Setup) Args() []string {
	var a []string
	for _, f := range s.Frontends {
		a = append(a, "--frontend", f.String())
	}
	if s.Backends != "" {
		a = append(a, "--backends", s.Backends)
	}
	if s.PortsPerInstance != 0 {
		a = append(a, "--ports-per-instance", strconv.Itoa(s.PortsPerInstance))
	}
	if s.PoolSize != 0 {
		a = append(a, "--pool-size", strconv.Itoa(s.PoolSize))
	}
	if s.IdleTimeout != "" {
		a = append(a, "--idle-timeout", s.IdleTimeout)
	}
	if s.Protocol != "" {
		a = append(a, "--protocol", s.Protocol)
	}
	if s.Strict {
		a = append(a, "--strict")
	}
	if s.TCPResetOnIdle {
		a = append(a, "--tcp-reset-on-idle")
	}
	if s.Drain {
		a = append(a, "--drain")
	}
	return append(a, s.ProfileSetup.args()...)
}

// Config returns the replay configuration of the setup (one worker: the
// outcome is the same for any number).
func (s Setup) Config() (replay.Config, error) {
	specs, err := replay.ParseBackends(s.Backends)
	if err != nil {
		return replay.Config{}, err
	}
	protos, err := reference.ParseProtocols(s.Protocol)
	if err != nil {
		return replay.Config{}, err
	}
	var idle time.Duration
	if s.IdleTimeout != "" {
		if idle, err = time.ParseDuration(s.IdleTimeout); err != nil {
			return replay.Config{}, fmt.Errorf("idle timeout: %w", err)
		}
	}
	prof, err := s.profile()
	if err != nil {
		return replay.Config{}, err
	}
	return replay.Config{Engine: reference.Config{Profile: prof, Frontends: s.Frontends, PortsPerInstance: s.PortsPerInstance, IdleTimeout: idle,
		Protocols: protos, Strict: s.Strict, TCPResetOnIdle: s.TCPResetOnIdle}, Backends: specs, PoolSize: s.PoolSize, Workers: 1, Drain: s.Drain}, nil
}

// Outcome is what a replay must give: stable across runs and machines.
type Outcome struct {
	Backends []netip.Addr      `json:"backends"`
	Counts   replay.Counts     `json:"counts"`
	Drops    map[string]uint64 `json:"drops"`
	// Instances are the rows of the report: per instance, protocol and
	// frontend IP, the flows, releases and ports in use at the end.
	Instances []InstanceOutcome `json:"instances"`
	// Drained is what happened after the last record (Setup.Drain).
	Drained  *replay.ReleaseCount `json:"drained,omitempty"`
	Verdicts []string             `json:"verdicts"`
	// Events is the events file (natcheck replay --events), one record a
	// line; Outside is the outside view (-w), one record a packet.
	Events  *Digest `json:"events"`
	Outside *Digest `json:"outside_view"`
}

// InstanceOutcome is one row of the report: an instance's use of one
// protocol on one frontend IP. Releases and exhaustion are counted per
// instance and protocol, on its first frontend row.
type InstanceOutcome struct {
	Instance  int        `json:"instance"`
	Inside    netip.Addr `json:"inside"`
	Frontend  netip.Addr `json:"frontend,omitzero"`
	Proto     string     `json:"proto"`
	Allocated int        `json:"allocated"`
	Peak      int        `json:"peak_in_use"`
	InUse     int        `json:"in_use_at_end"`
	Flows     uint64     `json:"flows"`
	Exhausted uint64     `json:"exhausted"`
	// FirstExhausted is the packet number of the first refused flow.
	FirstExhausted  int64                `json:"first_exhausted_packet,omitempty"`
	Releases        replay.ReleaseCount  `json:"releases"`
	DrainedReleases *replay.ReleaseCount `json:"drained_releases,omitempty"`
}

// Expectation is one expectation file.
type Expectation struct {
	// Capture is the capture's path, relative to the expectation file.
	Capture string `json:"capture"`
	// Scenario names the natcheck gen scenario the capture was made by,
	// if it was generated.
	Scenario string  `json:"scenario,omitempty"`
	Setup    Setup   `json:"setup"`
	Outcome  Outcome `json:"outcome"`
	// Device, if set, is a live device's recording of the capture, and
	// how its outside view compares with the replay's.
	Device *Device `json:"device,omitempty"`

	path string
}

// ErrMismatch is matched by the error of a capture whose outcome differs
// from its expectation.
var ErrMismatch = errors.New("outcome differs from expectation")

// ErrExpectation is matched by the error of an expectation file that
// cannot be read or makes no sense (bad input, as opposed to a change).
var ErrExpectation = errors.New("bad expectation file")

// Load reads an expectation file.
func Load(path string) (*Expectation, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load expectation: %w: %w", ErrExpectation, err)
	}
	var e Expectation
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("load expectation %s: %w: %w", path, ErrExpectation, err)
	}
	if e.Capture == "" {
		return nil, fmt.Errorf("load expectation %s: %w: no capture named", path, ErrExpectation)
	}
	if e.Device != nil && e.Device.Recording == "" {
		return nil, fmt.Errorf("load expectation %s: %w: device: no recording named", path, ErrExpectation)
	}
	e.path = path
	return &e, nil
}

// New returns an expectation, not yet written, to be kept at path: it
// replays capture (relative to path's folder, or absolute) with setup.
// Record writes it with an outcome.
func New(path, capture, scenario string, setup Setup) *Expectation {
	return &Expectation{Capture: capture, Scenario: scenario, Setup: setup, path: path}
}

// Path is the expectation file's path, as given to Load.
func (e *Expectation) Path() string { return e.path }

// CapturePath is the capture's path: Capture itself if absolute, else
// relative to the expectation file.
func (e *Expectation) CapturePath() string { return e.relative(e.Capture) }

// relative returns p if absolute, else p relative to the expectation
// file's folder.
func (e *Expectation) relative(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(e.path), p)
}

// Run replays the capture with the expectation's setup and returns what
// came out. The events and the outside view are written to a temporary
// folder, read back for their digests, and removed.
func (e *Expectation) Run() (Outcome, error) {
	got, err := e.run()
	if err != nil {
		return Outcome{}, err
	}
	got.remove()
	return got.Outcome, nil
}

// run is Run keeping the outputs, for Check to find the first differing
// record in; the caller removes them.
func (e *Expectation) run() (*run, error) {
	cfg, err := e.Setup.Config()
	if err != nil {
		return nil, fmt.Errorf("regress %s: %w: %w", e.path, ErrExpectation, err)
	}
	dir, err := os.MkdirTemp("", "natcheck-regress-")
	if err != nil {
		return nil, fmt.Errorf("regress %s: %w", e.path, err)
	}
	r := &run{dir: dir, events: filepath.Join(dir, "events.jsonl"), outside: filepath.Join(dir, "outside.pcapng")}
	ev, err := os.Create(r.events)
	if err != nil {
		r.remove()
		return nil, fmt.Errorf("regress %s: %w", e.path, err)
	}
	cfg.Events, cfg.Output = ev, r.outside
	res, err := replay.Run([]string{e.CapturePath()}, cfg)
	if cerr := ev.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		r.remove()
		return nil, fmt.Errorf("regress %s: %w", e.path, err)
	}
	r.start = res.Start
	o := Outcome{Backends: res.Backends, Counts: res.Counts, Drops: res.Drops, Verdicts: res.Verdicts(),
		Instances: []InstanceOutcome{}}
	if res.Drained != nil {
		d := res.Drained.Releases
		o.Drained = &d
	}
	for _, ir := range res.Instances {
		io := InstanceOutcome{Instance: ir.Instance, Inside: ir.Inside, Frontend: ir.Frontend, Proto: ir.Proto,
			Allocated: ir.Allocated, Peak: ir.Peak, InUse: ir.InUse, Flows: ir.Flows, Exhausted: ir.ExhaustionDrops,
			Releases: ir.Releases, DrainedReleases: ir.DrainedReleases}
		if ir.FirstExhaustion != nil {
			io.FirstExhausted = ir.FirstExhaustion.Packet
		}
		o.Instances = append(o.Instances, io)
	}
	if o.Events, err = digestLines(r.events); err != nil {
		r.remove()
		return nil, fmt.Errorf("regress %s: %w", e.path, err)
	}
	if o.Outside, err = digestCapture(r.outside); err != nil {
		r.remove()
		return nil, fmt.Errorf("regress %s: %w", e.path, err)
	}
	r.Outcome = o
	return r, nil
}

// run is one replay of an expectation: its outcome and, until removed,
// its events and outside view.
type run struct {
	Outcome
	dir, events, outside string
	start                time.Time
}

func (r *run) remove() { os.RemoveAll(r.dir) }

// Check runs the expectation and returns the differences from it, and an
// error wrapping ErrMismatch if there are any. A digest that changed is
// reported with its first differing record, read from the new outputs.
func (e *Expectation) Check() ([]Difference, error) {
	got, err := e.run()
	if err != nil {
		return nil, err
	}
	defer got.remove()
	diff := Compare(e.Setup.Profile, e.Outcome, got.Outcome)
	for i, d := range diff {
		switch d.Field {
		case fieldEvents:
			diff[i] = explainEvents(d, e.Outcome.Events, got.Events, got.events)
		case fieldOutside:
			diff[i] = explainOutside(d, e.Outcome.Outside, got.Outside, got.outside, e.CapturePath(), got.start)
		}
	}
	if e.Device != nil {
		dev, err := e.compareDevice(got.outside)
		if err != nil {
			return nil, err
		}
		diff = append(diff, e.checkDevice(dev)...)
	}
	if len(diff) > 0 {
		return diff, fmt.Errorf("regress %s: %w (%d differences)", e.path, ErrMismatch, len(diff))
	}
	return nil, nil
}

// Update runs the expectation and writes what came out as its outcome.
// With a device recording, the device's differences are recorded too,
// each keeping its hand-written predicted_by when it is the same.
func (e *Expectation) Update() error {
	got, err := e.run()
	if err != nil {
		return err
	}
	defer got.remove()
	if e.Device != nil {
		dev, err := e.compareDevice(got.outside)
		if err != nil {
			return err
		}
		e.Device.Differences = e.updateDevice(dev)
	}
	return e.Record(got.Outcome)
}

// Record writes got as the expectation's outcome, to its file: the only
// way an expectation file changes. Its errors are those of writing.
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
