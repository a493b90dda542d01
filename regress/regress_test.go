package regress

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// corpus returns the bundled expectation files.
func corpus(t *testing.T) []string {
	t.Helper()
	paths, _ := filepath.Glob("../captures/expected/*.json")
	if len(paths) < 8 {
		t.Fatalf("found %d expectation files, want the bundled ones", len(paths))
	}
	return paths
}

// TestBundledExpectations: every recorded capture of the repository still
// gives the outcome recorded beside it, digests included.
func TestBundledExpectations(t *testing.T) {
	for _, p := range corpus(t) {
		e, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if diff, err := e.Check(); err != nil {
			t.Errorf("%s: %v", p, err)
			for _, d := range diff {
				t.Errorf("  %s", d)
			}
		}
	}
}

// copyExpectation writes e, with its capture made absolute, into a new
// file of a temporary folder and loads it back.
func copyExpectation(t *testing.T, e *Expectation) *Expectation {
	t.Helper()
	abs, err := filepath.Abs(e.CapturePath())
	if err != nil {
		t.Fatal(err)
	}
	c := *e
	c.Capture = abs
	if e.Device != nil {
		d := *e.Device
		if d.Recording, err = filepath.Abs(e.RecordingPath()); err != nil {
			t.Fatal(err)
		}
		d.Differences = slices.Clone(d.Differences)
		c.Device = &d
	}
	b, _ := json.MarshalIndent(&c, "", "  ")
	p := filepath.Join(t.TempDir(), filepath.Base(e.path))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e2, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return e2
}

func mustLoad(t *testing.T, p string) *Expectation {
	t.Helper()
	e, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestAlteredGoldenIsReported: altering any part of a golden (a count, a
// drop reason, a release count, the ports in use at the end, a verdict
// line, a digest) makes Check fail with one readable line per change,
// naming the field, the expected and the got values and the behaviour.
func TestAlteredGoldenIsReported(t *testing.T) {
	e := mustLoad(t, "../captures/expected/anyconnect-8-ports.json")
	o := &e.Outcome
	o.Counts.Translated++
	o.Drops["exhausted"] = 7
	o.Instances[0].Releases.RST = 2
	o.Instances[1].InUse = 7
	o.Instances[1].FirstExhausted = 347
	o.Verdicts[0] = strings.Replace(o.Verdicts[0], "packet 348", "packet 347", 1)
	e2 := copyExpectation(t, e)
	diff, err := e2.Check()
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("Check = %v, want ErrMismatch", err)
	}
	var lines []string
	for _, d := range diff {
		lines = append(lines, d.String())
	}
	want := []string{
		"counts.translated: expected 413, got 412",
		"drops.exhausted: expected 7, got 8 (B9)",
		"instance 0 tcp 203.0.113.1: releases.rst: expected 2, got 1 (B11)",
		"instance 0 udp 203.0.113.1: in_use_at_end: expected 7, got 8 (C9)",
		"packet 347: instance 0 udp 203.0.113.1: first_exhausted_packet: expected 347, got 348 (B9)",
		`verdict 1: expected "instance 0 (10.0.0.227): EXHAUSTED: 8 new flows refused (B9), first at packet 347`,
	}
	if len(lines) != len(want) {
		t.Fatalf("Check gave %d differences, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("difference %d = %q, want it to start %q", i+1, lines[i], w)
		}
	}
}

// TestChangedBehaviourIsShownAtItsFirstPacket: an expectation recorded
// with 8 ports per instance, checked against a run with 16 (a NAT that
// refuses later), names packet 348 — the first UDP flow that was refused
// and is now translated — in the events and in the outside view, with the
// new record and its behaviour.
func TestChangedBehaviourIsShownAtItsFirstPacket(t *testing.T) {
	e := mustLoad(t, "../captures/expected/anyconnect-8-ports.json")
	e.Setup.PortsPerInstance = 16
	diff, err := copyExpectation(t, e).Check()
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("Check = %v, want ErrMismatch", err)
	}
	found := map[string]Difference{}
	for _, d := range diff {
		found[strings.Fields(d.Field)[0]] = d
	}
	ev, ok := found["events"]
	if !ok || ev.Packet != 348 || ev.Behavior != "B7" || !strings.Contains(ev.Got, `"kind":"mapping-created"`) ||
		!strings.HasPrefix(ev.Expected, "a record of fingerprint ") {
		t.Errorf("events difference = %+v, want packet 348, B7, a mapping created where the expectation has another record", ev)
	}
	out, ok := found["outside"]
	if !ok || out.Packet != 348 || out.Behavior != "B7" || !strings.Contains(out.Got, "udp 203.0.113.1:1032 > ") ||
		!strings.Contains(out.Got, "(inserted)") {
		t.Errorf("outside view difference = %+v, want packet 348 inserted, from SNAT port 1032, B7", out)
	}
	t.Logf("%s\n%s", ev, out)
}

// TestOnlyUpdateWritesGoldens: Check and Run leave an expectation file
// as it is, even when the outcome differs; Update rewrites it.
func TestOnlyUpdateWritesGoldens(t *testing.T) {
	e := mustLoad(t, "../captures/expected/sll2-tls.json")
	e.Outcome.Counts.Translated = 1
	e2 := copyExpectation(t, e)
	before, _ := os.ReadFile(e2.path)
	if _, err := e2.Check(); !errors.Is(err, ErrMismatch) {
		t.Fatalf("Check = %v, want ErrMismatch", err)
	}
	if _, err := e2.Run(); err != nil {
		t.Fatal(err)
	}
	rep := RunCorpus([]string{e2.path}, nil, false, nil)
	if rep.Summary.Changed != 1 {
		t.Fatalf("RunCorpus summary = %+v, want 1 changed", rep.Summary)
	}
	if after, _ := os.ReadFile(e2.path); !bytes.Equal(before, after) {
		t.Fatal("Check, Run or RunCorpus changed the expectation file")
	}
	if rep := RunCorpus([]string{e2.path}, nil, true, nil); rep.Summary.Recorded != 1 {
		t.Fatalf("RunCorpus(update) summary = %+v, want 1 recorded", rep.Summary)
	}
	if diff, err := mustLoad(t, e2.path).Check(); err != nil {
		t.Fatalf("after update: %v %v", err, diff)
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown-field.json": `{"capture": "x.pcap", "setup": {"frontends": ["203.0.113.1"], "port_per_instance": 8}}`,
		"no-capture.json":    `{"setup": {"frontends": ["203.0.113.1"]}}`,
		"garbage.json":       `{"capture": `,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), name) || !errors.Is(err, ErrExpectation) {
			t.Errorf("Load(%s) = %v, want an ErrExpectation naming the file", name, err)
		}
	}
}

func TestFirstDifference(t *testing.T) {
	dig := func(fps ...uint32) *Digest {
		g := &digester{all: fps}
		return g.digest()
	}
	for _, tc := range []struct {
		name      string
		want, got *Digest
		i         int64
		what      string
		ok        bool
	}{
		{"same", dig(1, 2, 3), dig(1, 2, 3), 0, "", false},
		{"differs", dig(1, 2, 3, 4), dig(1, 2, 9, 4), 2, "differs", true},
		{"inserted", dig(1, 2, 3), dig(1, 2, 9, 3), 2, "inserted", true},
		{"missing", dig(1, 2, 3), dig(1, 3), 1, "missing", true},
		{"extra at the end", dig(1, 2), dig(1, 2, 3), 2, "extra", true},
		{"ended early", dig(1, 2, 3), dig(1, 2), 2, "missing", true},
		{"no golden", nil, dig(1), 0, "", false},
	} {
		i, what, ok := firstDifference(tc.want, tc.got)
		if i != tc.i || what != tc.what || ok != tc.ok {
			t.Errorf("%s: firstDifference = %d, %q, %v; want %d, %q, %v", tc.name, i, what, ok, tc.i, tc.what, tc.ok)
		}
	}
	// Past maxFingerprints records, a fingerprint stands for a run of them.
	many := make([]uint32, 3*maxFingerprints+5)
	for i := range many {
		many[i] = uint32(i)
	}
	d := dig(many...)
	if d.PerFingerprint != 4 || len(d.fingerprints()) != (len(many)+3)/4 {
		t.Fatalf("digest of %d records: %d per fingerprint, %d fingerprints", len(many), d.PerFingerprint, len(d.fingerprints()))
	}
	changed := slices.Clone(many)
	changed[9001]++
	if i, what, _ := firstDifference(d, dig(changed...)); i != 9000 || what != "differs" {
		t.Errorf("a change of record 9001 of %d: firstDifference = %d, %q; want the run from 9000", len(many), i, what)
	}
}

// TestDifferencesCiteTheProfile: a changed golden of another profile is
// reported with that profile's items, not azure-lb's: a drop and a
// release count altered in a linux, an azure-natgw and an rfc scenario's
// golden.
func TestDifferencesCiteTheProfile(t *testing.T) {
	for _, tc := range []struct {
		file, drop, release string
	}{
		{"scenario-linux-udp-timeouts.json", "(L4)", "(L5/L7)"},
		{"scenario-azure-natgw-holds.json", "(G3)", "(G4/G5)"},
		{"scenario-rfc-udp-timer.json", "(R3)", "(R4/R5)"},
		{"scenario-azure-lb-idle-4m.json", "(B9)", "(B12)"},
	} {
		e := mustLoad(t, "../captures/expected/"+tc.file)
		e.Outcome.Drops["exhausted"]++
		e.Outcome.Instances[0].Releases.Idle++
		diff, err := copyExpectation(t, e).Check()
		if !errors.Is(err, ErrMismatch) {
			t.Fatalf("%s: Check = %v, want ErrMismatch", tc.file, err)
		}
		var lines []string
		for _, d := range diff {
			lines = append(lines, d.String())
		}
		all := strings.Join(lines, "\n")
		if !strings.Contains(all, "drops.exhausted: expected") || !strings.Contains(all, "drops.exhausted") ||
			!strings.Contains(lines[0], tc.drop) || !strings.Contains(all, "releases.idle: expected") || !strings.Contains(all, tc.release) {
			t.Errorf("%s: differences\n%s\nwant drops.exhausted citing %s and releases.idle citing %s", tc.file, all, tc.drop, tc.release)
		}
	}
}
