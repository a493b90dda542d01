package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natcheck/natcheck/replay"
	"github.com/natcheck/natcheck/scenario"
)

// altered copies an expectation file of the repository into dir with its
// capture path made absolute and edit applied to its JSON text.
func altered(t *testing.T, dir, name string, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../captures/expected", name))
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(filepath.Join("../../captures/expected", e["capture"].(string)))
	s := strings.Replace(string(b), `"capture": "`+e["capture"].(string)+`"`, `"capture": "`+abs+`"`, 1)
	if edit != nil {
		s = edit(s)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRegressAlteredGolden: an altered golden makes natcheck regress exit 1
// with a line naming the capture, the packet, the field, expected and got
// and the behaviour; the file is left as it is; --update rewrites it and
// the next run passes.
func TestRegressAlteredGolden(t *testing.T) {
	dir := t.TempDir()
	p := altered(t, dir, "anyconnect-8-ports.json", func(s string) string {
		return strings.Replace(s, `"first_exhausted_packet": 348`, `"first_exhausted_packet": 349`, 1)
	})
	before, _ := os.ReadFile(p)
	out, code := runOut(t, "regress", p)
	want := "anyconnect-8-ports.json (" // the capture follows
	line := "packet 348: instance 0 udp 203.0.113.1: first_exhausted_packet: expected 349, got 348 (B9)"
	if code != exitFailed || !strings.Contains(out, want) || !strings.Contains(out, line) || !strings.Contains(out, "ndpi__anyconnect-vpn.pcap): ") {
		t.Fatalf("natcheck regress (altered): exit %d, output:\n%s\nwant exit 1 and %q", code, out, line)
	}
	if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
		t.Fatal("natcheck regress without --update changed the expectation file")
	}
	if out, code := runOut(t, "regress", "--update", p); code != exitOK || !strings.Contains(out, "recorded") {
		t.Fatalf("natcheck regress --update: exit %d\n%s", code, out)
	}
	if out, code := runOut(t, "regress", p); code != exitOK || !strings.Contains(out, "as expected") {
		t.Fatalf("natcheck regress after --update: exit %d\n%s", code, out)
	}
}

// TestRegressShardsMerge: the shards' JSON reports merge into the whole
// run's, byte for byte; JUnit and Markdown files are written; a shard
// given twice or a bad --shard is refused.
func TestRegressShardsMerge(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for _, n := range []string{"anyconnect-8-ports.json", "sll2-tls.json", "vlan-qinq.json", "fragments.json"} {
		paths = append(paths, altered(t, dir, n, nil))
	}
	whole, code := runOut(t, append([]string{"regress", "--json"}, paths...)...)
	if code != exitOK {
		t.Fatalf("natcheck regress --json: exit %d\n%s", code, whole)
	}
	var shards []string
	for i := range 3 {
		out, code := runOut(t, append([]string{"regress", "--json", "--shard", []string{"0/3", "1/3", "2/3"}[i]}, paths...)...)
		if code != exitOK {
			t.Fatalf("shard %d: exit %d\n%s", i, code, out)
		}
		f := filepath.Join(dir, []string{"s0.json", "s1.json", "s2.json"}[i])
		os.WriteFile(f, []byte(out), 0o644)
		shards = append(shards, f)
	}
	junit, md := filepath.Join(dir, "r.xml"), filepath.Join(dir, "r.md")
	merged, code := runOut(t, append([]string{"merge", "--junit", junit, "--markdown", md}, shards...)...)
	if code != exitOK || merged != whole {
		t.Fatalf("natcheck merge: exit %d\n%s\nwant the whole run's report:\n%s", code, merged, whole)
	}
	if x, _ := os.ReadFile(junit); strings.Count(string(x), "<testcase ") != 4 {
		t.Errorf("JUnit file has %d test cases, want 4:\n%s", strings.Count(string(x), "<testcase "), x)
	}
	if m, _ := os.ReadFile(md); !strings.Contains(string(m), "4 captures: 4 as expected") {
		t.Errorf("Markdown summary:\n%s", m)
	}
	if out, code := runOut(t, "merge", shards[0], shards[0], shards[1], shards[2]); code != exitInput || !strings.Contains(out, "given twice") {
		t.Errorf("natcheck merge with a shard twice: exit %d, %s", code, out)
	}
	if out, code := runOut(t, "merge", shards[0], shards[2]); code != exitInput || !strings.Contains(out, "shard 1/3 missing") {
		t.Errorf("natcheck merge without shard 1: exit %d, %s", code, out)
	}
	if out, code := runOut(t, "regress", "--shard", "3/3"); code != exitUsage || !strings.Contains(out, "0 ≤ i < n") {
		t.Errorf("natcheck regress --shard 3/3: exit %d, %s", code, out)
	}
}

// TestGenCommand: gen --list names the scenarios; gen writes a capture
// and its expectation, which regress then passes; it refuses to replace
// an expectation, and an unknown scenario is a usage error.
func TestGenCommand(t *testing.T) {
	out, code := runOut(t, "gen", "--list")
	if code != exitOK || !strings.Contains(out, "azure-lb-rst-15s") || !strings.Contains(out, "B11 B13 C4") {
		t.Fatalf("natcheck gen --list: exit %d\n%s", code, out)
	}
	dir := t.TempDir()
	pc, ex := filepath.Join(dir, "rst.pcap"), filepath.Join(dir, "rst.json")
	out, code = runOut(t, "gen", "azure-lb-rst-15s", "-o", pc, "--expectation", ex)
	if code != exitOK || !strings.Contains(out, "natcheck replay --frontend 203.0.113.1 --backends 10.0.0.1 --ports-per-instance 8 "+pc) {
		t.Fatalf("natcheck gen: exit %d\n%s", code, out)
	}
	if out, code := runOut(t, "regress", ex); code != exitOK || !strings.Contains(out, "as expected") {
		t.Fatalf("natcheck regress of a generated expectation: exit %d\n%s", code, out)
	}
	if out, code := runOut(t, "gen", "azure-lb-rst-15s", "-o", pc, "--expectation", ex); code != exitUsage || !strings.Contains(out, "exists") {
		t.Errorf("natcheck gen over an existing expectation: exit %d\n%s", code, out)
	}
	if out, code := runOut(t, "gen", "nope", "-o", pc); code != exitUsage || !strings.Contains(out, `no scenario "nope"`) {
		t.Errorf("natcheck gen nope: exit %d\n%s", code, out)
	}
}

// TestDiffCommand: two replays that place the instance differently are
// equivalent (exit 0); 8 against 16 ports differ (exit 1) at the first
// refused flow; a view against itself names its SNAT IP and endpoints and
// says it is identical; an unreadable view is bad input (exit 3).
func TestDiffCommand(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.pcapng"), filepath.Join(dir, "b.pcapng"), filepath.Join(dir, "c.pcapng")
	for _, args := range [][]string{
		{"replay", "--backends", "10.0.0.227", "--ports-per-instance", "8", "-w", a, vpn},
		{"replay", "--backends", "10.9.9.9,10.0.0.227", "--frontend", "192.0.2.1", "--ports-per-instance", "8", "-w", b, vpn},
		{"replay", "--backends", "10.0.0.227", "--ports-per-instance", "16", "-w", c, vpn},
	} {
		if out, code := runOut(t, args...); code != exitOK {
			t.Fatalf("natcheck %v: exit %d\n%s", args, code, out)
		}
	}
	if out, code := runOut(t, "diff", a, b); code != exitOK || !strings.Contains(out, "equivalent") || !strings.Contains(out, "tcp 203.0.113.1:1024 → 192.0.2.1:1032") {
		t.Errorf("natcheck diff (other placement): exit %d\n%s", code, out)
	}
	if out, code := runOut(t, "diff", a, c); code != exitFailed || !strings.Contains(out, "DIFFERENT: 16 differences") ||
		!strings.Contains(out, "only in B") || !strings.Contains(out, "2019-09-28T16:14:27.481295Z: udp 203.0.113.1:1032 > 75.75.75.75:53") {
		t.Errorf("natcheck diff (8 vs 16 ports): exit %d\n%s", code, out)
	}
	if out, code := runOut(t, "diff", a, a); code != exitOK || !strings.Contains(out, "packets, SNAT IPs [203.0.113.1]\nB = ") ||
		!strings.Contains(out, "11 SNAT endpoints, 0 of them renamed") || !strings.Contains(out, "equivalent: identical") {
		t.Errorf("natcheck diff of a view with itself: exit %d\n%s", code, out)
	}
	if out, code := runOut(t, "diff", a, vpn+".missing"); code != exitInput {
		t.Errorf("natcheck diff of a missing file: exit %d\n%s", code, out)
	}
}

// TestReplayShardCommand: natcheck replay --shard i/n --json for every i,
// merged, is the unsharded --json report; --shard with -w is refused.
func TestReplayShardCommand(t *testing.T) {
	dir := t.TempDir()
	args := []string{"replay", "--json", "--backends", "10.0.0.0/24", "--ports-per-instance", "16", "--tcp-reset-on-idle", vpn}
	whole, code := runOut(t, args...)
	if code != exitOK {
		t.Fatal(whole)
	}
	var parts []string
	for i, s := range []string{"0/3", "1/3", "2/3"} {
		out, code := runOut(t, append(args, "--shard", s)...)
		if code != exitOK || !strings.Contains(out, `"shard"`) {
			t.Fatalf("--shard %s: exit %d\n%s", s, code, out)
		}
		p := filepath.Join(dir, []string{"a", "b", "c"}[i]+".json")
		os.WriteFile(p, []byte(out), 0o644)
		parts = append(parts, p)
	}
	if merged, code := runOut(t, append([]string{"merge"}, parts...)...); code != exitOK || merged != whole {
		t.Errorf("natcheck merge of 3 replay shards: exit %d, equal to the whole report: %v\n%s", code, merged == whole, merged)
	}
	if out, code := runOut(t, "replay", "--shard", "0/2", "-w", filepath.Join(dir, "o.pcapng"), vpn); code != exitUsage || !strings.Contains(out, "one shard's instances only") {
		t.Errorf("--shard with -w: exit %d\n%s", code, out)
	}
}

// TestGenReplayCommandIsTheSetup: for every scenario, the natcheck replay
// command gen prints (its setup as flags: --profile, --seed, --filtering,
// …) gives the --json report and the events (which name every SNAT port)
// that the setup's configuration gives, the one its expectation file is
// checked with, byte for byte.
func TestGenReplayCommandIsTheSetup(t *testing.T) {
	dir := t.TempDir()
	for _, s := range scenario.All() {
		pc, ev := filepath.Join(dir, s.Name+".pcap"), filepath.Join(dir, s.Name+".jsonl")
		if out, code := runOut(t, "gen", s.Name, "-o", pc); code != exitOK {
			t.Fatalf("natcheck gen %s: exit %d\n%s", s.Name, code, out)
		}
		r := run(t, append(append([]string{"replay", "--json", "--events", ev}, s.Setup.Args()...), pc)...)
		if r.code != exitOK {
			t.Errorf("%s: natcheck replay %v: exit %d\n%s", s.Name, s.Setup.Args(), r.code, r.stderr)
			continue
		}
		cfg, err := s.Setup.Config()
		if err != nil {
			t.Fatal(err)
		}
		var want, wantEv bytes.Buffer
		cfg.Events = &wantEv
		res, err := replay.Run([]string{pc}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := replay.WriteJSON(&want, res); err != nil {
			t.Fatal(err)
		}
		gotEv, err := os.ReadFile(ev)
		if err != nil {
			t.Fatal(err)
		}
		if r.stdout != want.String() || !bytes.Equal(gotEv, wantEv.Bytes()) {
			t.Errorf("%s: natcheck replay %s gives another report or other events than the setup's configuration", s.Name, strings.Join(s.Setup.Args(), " "))
		}
	}
}
