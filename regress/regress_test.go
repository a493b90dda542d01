package regress

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBundledExpectations: every recorded capture of the repository still
// gives the outcome recorded beside it.
func TestBundledExpectations(t *testing.T) {
	paths, _ := filepath.Glob("../captures/expected/*.json")
	if len(paths) < 5 {
		t.Fatalf("found %d expectation files, want the bundled ones", len(paths))
	}
	for _, p := range paths {
		e, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if diff, err := e.Check(); err != nil {
			t.Errorf("%s: %v\n%s", p, err, strings.Join(diff, "\n"))
		}
	}
}

// TestChangedOutcomeIsReported: an expectation whose outcome differs in a
// count, a drop reason and a verdict line is reported with one line each.
func TestChangedOutcomeIsReported(t *testing.T) {
	e, err := Load("../captures/expected/anyconnect-8-ports.json")
	if err != nil {
		t.Fatal(err)
	}
	e.Outcome.Counts.Translated++
	e.Outcome.Drops["exhausted"] = 7
	e.Outcome.Verdicts[0] = strings.Replace(e.Outcome.Verdicts[0], "packet 348", "packet 347", 1)
	dir := t.TempDir()
	abs, _ := filepath.Abs("../captures/public/ndpi__anyconnect-vpn.pcap")
	e.Capture = abs
	b, _ := json.Marshal(e)
	p := filepath.Join(dir, "changed.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e2, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	diff, err := e2.Check()
	if !errors.Is(err, ErrMismatch) || len(diff) != 3 {
		t.Fatalf("Check = %v, %q; want ErrMismatch and 3 differences", err, diff)
	}
	for i, want := range []string{"translated: want 413, got 412", "drops exhausted: want 7, got 8", "verdict 1: want"} {
		if !strings.HasPrefix(diff[i], want) {
			t.Errorf("difference %d = %q, want it to start %q", i, diff[i], want)
		}
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
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Load(%s) = %v, want an error naming the file", name, err)
		}
	}
}
