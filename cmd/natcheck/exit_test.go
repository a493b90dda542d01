package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// exitCase is one row of TestExitCodes: a command line and what it must
// give.
type exitCase struct {
	name string
	args []string
	// stdoutFull sends standard output to /dev/full.
	stdoutFull bool
	code       int
	want       string // in stderr
}

// TestExitCodes: every command, every code of the README's table. Write
// errors are exit 4 whatever wrote: -w, --events, standard output
// (including --json); never 0, 2 or 3.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-folder")
	badExp := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badExp, []byte(`{"capture": "x.pcap", "setup": {"frontends": ["203.0.113.1"], "backends": "10.0.0.1", "ports_per_instance": 12}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	notJSON := filepath.Join(dir, "garbage.json")
	if err := os.WriteFile(notJSON, []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	inputCopy := filepath.Join(dir, "in.pcap")
	b, err := os.ReadFile(vpn)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inputCopy, b, 0o644); err != nil {
		t.Fatal(err)
	}
	view := filepath.Join(dir, "view.pcapng")
	if r := run(t, "replay", "-w", view, vpn); r.code != exitOK {
		t.Fatalf("natcheck replay -w: %s", r)
	}
	cases := []exitCase{
		// 0
		{"plan", []string{"plan", "--pool-size", "60"}, false, exitOK, ""},
		{"replay", []string{"replay", vpn}, false, exitOK, ""},
		{"verify", []string{"verify", "--behaviors", "B2"}, false, exitOK, ""},
		{"regress", []string{"regress", "../../captures/expected/vlan-qinq.json"}, false, exitOK, ""},
		{"explain", []string{"explain", "B9"}, false, exitOK, ""},
		{"demo", []string{"demo"}, false, exitOK, ""},
		{"diff", []string{"diff", view, view}, false, exitOK, ""},
		{"version", []string{"version"}, false, exitOK, ""},
		{"--version", []string{"--version"}, false, exitOK, ""},
		// 1
		{"replay --fail-on", []string{"replay", "--ports-per-instance", "8", "--fail-on", "exhaustion", vpn}, false, exitFailed, "--fail-on exhaustion: 8 new flows refused"},
		{"verify on a mutant", []string{"verify", "--behaviors", "B11", "--impl", "mutant:rst-hold-14s"}, false, exitFailed, "did not conform"},
		// 2
		{"unknown flag", []string{"replay", "--bogus", vpn}, false, exitUsage, "Run 'natcheck replay --help' for usage."},
		{"unknown command", []string{"replya"}, false, exitUsage, "Run 'natcheck --help' for usage."},
		{"missing argument", []string{"replay"}, false, exitUsage, "requires at least 1 arg"},
		{"extra argument", []string{"plan", "x"}, false, exitUsage, "Run 'natcheck plan --help' for usage."},
		{"B2", []string{"replay", "--ports-per-instance", "12", vpn}, false, exitUsage, "(B2)"},
		{"B12", []string{"replay", "--idle-timeout", "90s", vpn}, false, exitUsage, "idle timeout 1 min 30 s: want whole 1 min steps from 4 min to 2 h (B12)"},
		{"--pool-size -1", []string{"replay", "--pool-size", "-1", vpn}, false, exitUsage, "--pool-size -1"},
		{"--workers -1", []string{"replay", "--workers", "-1", vpn}, false, exitUsage, "--workers -1: want 0 (one per CPU) to 64"},
		{"--workers 100", []string{"replay", "--workers", "100", vpn}, false, exitUsage, "--workers 100"},
		{"--reorder-window -1s", []string{"replay", "--reorder-window", "-1s", vpn}, false, exitUsage, "--reorder-window -1 s: want 0 or more"},
		{"frontend = backend", []string{"replay", "--frontend", "10.0.0.227", "--backends", "10.0.0.227", vpn}, false, exitUsage, "is also a frontend IP"},
		{"frontend = detected backend", []string{"replay", "--frontend", "10.0.0.227", vpn}, false, exitUsage, "is also a frontend IP"},
		{"duplicate backends", []string{"replay", "--backends", "10.0.0.227,10.0.0.227", vpn}, false, exitUsage, "backends 10.0.0.227: already listed"},
		{"backend inside an earlier prefix", []string{"replay", "--backends", "10.0.0.0/24,10.0.0.227", vpn}, false, exitUsage, "already listed (as 10.0.0.0/24)"},
		{"bad backend", []string{"replay", "--backends", "garbage", vpn}, false, exitUsage, "backends garbage: not an IPv4 address or prefix"},
		{"-w names the input", []string{"replay", "-w", inputCopy, inputCopy}, false, exitUsage, "is also an input"},
		{"-w and --events one file", []string{"replay", "-w", dir + "/a", "--events", dir + "/a", vpn}, false, exitUsage, "also named by -w"},
		{"--plot .txt", []string{"replay", "--plot", dir + "/x.txt", vpn}, false, exitUsage, "want a .png, .svg or .pdf file"},
		{"explain unknown", []string{"explain", "X1"}, false, exitUsage, "not a behaviour ID"},
		{"verify --impl unknown", []string{"verify", "--impl", "bogus"}, false, exitUsage, "implementation \"bogus\""},
		{"verify --behaviors unknown", []string{"verify", "--behaviors", "Z9"}, false, exitUsage, "Z9"},
		// 3
		{"replay: missing capture", []string{"replay", "--backends", "10.0.0.1", dir + "/missing.pcap"}, false, exitInput, "missing.pcap"},
		{"replay: damaged capture", []string{"replay", "--backends", "10.0.0.1", truncated}, false, exitInput, "packet 2 at offset 248"},
		{"regress: missing expectation", []string{"regress", dir + "/none.json"}, false, exitInput, "could not be run"},
		{"regress: not an expectation", []string{"regress", notJSON}, false, exitInput, "could not be run"},
		{"regress: an expectation whose configuration the documents reject", []string{"regress", badExp}, false, exitInput, "could not be run"},
		{"diff: a view that is none", []string{"diff", notJSON, view}, false, exitInput, "garbage.json"},
		{"merge: not a report", []string{"merge", notJSON}, false, exitInput, "not a JSON report"},
		{"merge > /dev/full", []string{"merge", notJSON}, true, exitInput, "not a JSON report"},
		{"gen into a missing folder", []string{"gen", "azure-lb-rst-15s", "-o", missing + "/x.pcap"}, false, exitOutput, "no such file or directory"},
		// 4
		{"-w into a missing folder", []string{"replay", "-w", missing + "/out.pcapng", vpn}, false, exitOutput, "folder " + missing + " does not exist"},
		{"--events into a missing folder", []string{"replay", "--events", missing + "/ev.jsonl", vpn}, false, exitOutput, "does not exist"},
		{"--plot into a missing folder", []string{"replay", "--plot", missing + "/p.png", vpn}, false, exitOutput, "does not exist"},
		{"outputs checked before any input is read", []string{"replay", "--plot", missing + "/p.png", dir + "/missing.pcap"}, false, exitOutput, "does not exist"},
		{"--plot extension checked before any input is read", []string{"replay", "--plot", dir + "/p.gif", dir + "/missing.pcap"}, false, exitUsage, "want a .png"},
		{"verify --markdown into a missing folder", []string{"verify", "--behaviors", "B2", "--markdown", missing + "/m.md"}, false, exitOutput, "does not exist"},
		{"-w /dev/full", []string{"replay", "-w", "/dev/full", vpn}, false, exitOutput, "no space left on device"},
		{"--events /dev/full", []string{"replay", "--events", "/dev/full", vpn}, false, exitOutput, "no space left on device"},
		{"--plot /dev/full.png", []string{"replay", "--plot", "/dev/full", vpn}, false, exitUsage, "want a .png"},
		{"replay > /dev/full", []string{"replay", vpn}, true, exitOutput, "no space left on device"},
		{"replay --json > /dev/full", []string{"replay", "--json", vpn}, true, exitOutput, "no space left on device"},
		{"plan > /dev/full", []string{"plan"}, true, exitOutput, "no space left on device"},
		{"verify > /dev/full", []string{"verify", "--behaviors", "B2"}, true, exitOutput, "no space left on device"},
		{"regress > /dev/full", []string{"regress", "../../captures/expected/vlan-qinq.json"}, true, exitOutput, "no space left on device"},
		{"explain > /dev/full", []string{"explain", "B9"}, true, exitOutput, "no space left on device"},
		{"demo > /dev/full", []string{"demo"}, true, exitOutput, "no space left on device"},
		{"diff > /dev/full", []string{"diff", view, view}, true, exitOutput, "no space left on device"},
		{"version > /dev/full", []string{"version"}, true, exitOutput, "no space left on device"},
		{"--help > /dev/full", []string{"replay", "--help"}, true, exitOutput, "no space left on device"},
	}
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	seen := map[int]bool{}
	for _, tc := range cases {
		var r result
		if tc.stdoutFull {
			r = runWith(t, full, tc.args...)
		} else {
			r = run(t, tc.args...)
		}
		seen[tc.code] = true
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: natcheck %v: %s\nwant exit %d and stderr with %q", tc.name, tc.args, r, tc.code, tc.want)
		}
		if tc.code == exitUsage && strings.Contains(r.stdout, "{") {
			t.Errorf("%s: a usage error printed a report:\n%s", tc.name, r.stdout)
		}
	}
	for _, row := range exitCodes {
		if !seen[row.Code] && row.Code != exitInterrupted {
			t.Errorf("exit code %d (%s) has no test", row.Code, row.Meaning)
		}
	}
}

// TestREADMEExitCodeTable: the README's table is exitCodes, row for row.
func TestREADMEExitCodeTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\| `(\\d+)` \\| (.*) \\|$").FindAllStringSubmatch(string(b), -1)
	if len(rows) != len(exitCodes) {
		t.Fatalf("README has %d exit code rows, want %d (one per exitCodes entry)", len(rows), len(exitCodes))
	}
	for i, row := range rows {
		code, _ := strconv.Atoi(row[1])
		if code != exitCodes[i].Code || row[2] != exitCodes[i].Meaning {
			t.Errorf("README exit code row %d = %s %q, want %d %q", i, row[1], row[2], exitCodes[i].Code, exitCodes[i].Meaning)
		}
	}
}

// TestNoReportForUnreadableInput: a capture that cannot be read at all
// gives an error and no report, not an empty report (or JSON document) a
// parser would take for a result.
func TestNoReportForUnreadableInput(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"replay", "--backends", "10.0.0.1", dir + "/missing.pcap"},
		{"replay", "--backends", "10.0.0.1", "--json", dir + "/missing.pcap"},
		{"replay", "--backends", "10.0.0.1", "--json", dir},
	} {
		r := run(t, args...)
		if r.code != exitInput || r.stdout != "" {
			t.Errorf("natcheck %v: %s\nwant exit 3 and nothing on standard output", args, r)
		}
	}
}

// TestVersionAndCompletion: --version, and shell completion offering the
// values of --protocol, --impl and --behaviors and the IDs of explain.
func TestVersionAndCompletion(t *testing.T) {
	r := run(t, "--version")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "natcheck ") || !strings.Contains(r.stdout, "(profile azure-lb)") {
		t.Errorf("natcheck --version: %s", r)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "replay", "--protocol", ""}, []string{"all", "tcp", "udp"}},
		{[]string{"__complete", "replay", "--fail-on", ""}, []string{"exhaustion", "drop"}},
		{[]string{"__complete", "verify", "--impl", ""}, []string{"reference\t", "mutant:rst-hold-14s\t"}},
		{[]string{"__complete", "verify", "--impl", "reference,"}, []string{"reference,mutant:udp-full-tuple\t"}},
		{[]string{"__complete", "verify", "--behaviors", ""}, []string{"B9\texhaustion", "C5\tmid-stream pick-up"}},
		{[]string{"__complete", "explain", ""}, []string{"B11\tRST: released 15 s later", "linux"}},
		{[]string{"__complete", "replay", "--profile", ""}, []string{"azure-lb", "azure-natgw", "rfc", "linux"}},
	} {
		r := run(t, tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("natcheck %q: completion lacks %q:\n%s", tc.args, w, r)
			}
		}
	}
	r = run(t, "completion", "bash")
	if r.code != exitOK || !strings.Contains(r.stdout, "__start_natcheck") {
		t.Errorf("natcheck completion bash: %s", r)
	}
}

// TestErrorTextsFreeOfGoInternals: messages a user reads name the flag
// and value as typed, with durations and counts in words.
func TestErrorTextsFreeOfGoInternals(t *testing.T) {
	for _, args := range [][]string{
		{"plan", "--frontend", "garbage"},
		{"replay", "--backends", "10.0.0.300", vpn},
		{"replay", "--idle-timeout", "90s", vpn},
		{"replay", "--backends", "10.0.0.1", truncated},
	} {
		r := run(t, args...)
		for _, bad := range []string{"ParseAddr", "ParsePrefix", "1m0s", "m0s", "1 packets", "(s)", "unable to parse"} {
			if strings.Contains(r.stdout+r.stderr, bad) {
				t.Errorf("natcheck %v says %q:\n%s", args, bad, r)
			}
		}
	}
}
