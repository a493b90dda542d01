package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// natcheckBin is the natcheck binary TestMain builds: CLI tests run it as a
// user would, in a process of its own.
var natcheckBin string

func TestMain(m *testing.M) {
	noNetfilterNetlinkChild()
	dir, err := os.MkdirTemp("", "natcheck-cli-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	natcheckBin = filepath.Join(dir, "natcheck")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	build := exec.Command(gobin, "build", "-o", natcheckBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build natcheck:", err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what a run of the binary left: its outputs and exit code.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs the natcheck binary with args, in this package's folder.
func run(t *testing.T, args ...string) result {
	t.Helper()
	return runWith(t, nil, args...)
}

// runOut runs it and returns what it printed (standard output, then
// standard error) and its exit code.
func runOut(t *testing.T, args ...string) (string, int) {
	t.Helper()
	r := run(t, args...)
	return r.stdout + r.stderr, r.code
}

// runWith runs it with standard output sent to stdout when not nil.
func runWith(t *testing.T, stdout *os.File, args ...string) result {
	t.Helper()
	cmd := exec.Command(natcheckBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdout != nil {
		cmd.Stdout = stdout
	}
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("natcheck %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

const (
	vpn       = "../../captures/public/ndpi__anyconnect-vpn.pcap"
	truncated = "../../captures/public/joincap__unexpected_eof_on_second_packet.pcap"
)

func TestPlanRejectsExactlyWhereB2B4Do(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"plan", "--pool-size", "10", "--ports-per-instance", "6400"}, exitOK, "largest pool this allocation admits: 10"},
		{[]string{"plan", "--pool-size", "10", "--ports-per-instance", "6408"}, exitUsage, "at most 6400 per instance (B4)"},
		{[]string{"plan", "--pool-size", "1", "--ports-per-instance", "12"}, exitUsage, "multiple of 8"},
		{[]string{"plan", "--pool-size", "1", "--ports-per-instance", "7"}, exitUsage, "want a multiple of 8 (ports are handed out in blocks of 8) (B2)"},
		{[]string{"plan", "--pool-size", "1", "--ports-per-instance", "64000"}, exitOK, "64000"},
		{[]string{"plan", "--pool-size", "1", "--ports-per-instance", "64008"}, exitUsage, "want 8 to 64000"},
		{[]string{"plan", "--pool-size", "50"}, exitOK, "1024 ports per IP"},
		{[]string{"plan", "--pool-size", "51"}, exitOK, "512 ports per IP"},
		{[]string{"plan", "--pool-size", "1000"}, exitOK, "32 ports per IP"},
		{[]string{"plan", "--pool-size", "1001"}, exitUsage, "(B3)"},
		{[]string{"plan", "--pool-size", "0"}, exitUsage, "--pool-size 0: want 1 or more"},
		{[]string{"plan", "--pool-size", "-1"}, exitUsage, "--pool-size -1: want 1 or more"},
		{[]string{"plan", "--pool-size", "101", "--frontend-ips", "3"}, exitOK, "768 SNAT ports"},
		{[]string{"plan", "--frontend", "2001:db8::1"}, exitUsage, "--frontend 2001:db8::1: not an IPv4 address"},
		{[]string{"plan", "--frontend", "garbage"}, exitUsage, "--frontend garbage: not an IPv4 address"},
	} {
		r := run(t, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.want) {
			t.Errorf("natcheck %v: %s\nwant exit %d and %q", tc.args, r, tc.code, tc.want)
		}
	}
}

func TestDemoShowsExhaustion(t *testing.T) {
	r := run(t, "demo")
	for _, want := range []string{"B9: instance 0 exhausted", "translated via 203.0.113.1:1536", "0 refused"} {
		if r.code != exitOK || !strings.Contains(r.stdout, want) {
			t.Errorf("natcheck demo: output lacks %q:\n%s", want, r)
		}
	}
}

func TestReplayCommand(t *testing.T) {
	dir := t.TempDir()
	out, ev, plot := dir+"/out.pcapng", dir+"/ev.jsonl", dir+"/usage.png"
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"replay", vpn}, exitOK, []string{"backends [10.0.0.227], detected", "never out of ports", "idle timeout 4 min (B12)"}},
		{[]string{"replay", "--ports-per-instance", "8", "--fail-on", "exhaustion", vpn}, exitFailed,
			[]string{"EXHAUSTED: 8 new flows refused (B9), first at packet 348", "--fail-on exhaustion: 8 new flows refused"}},
		{[]string{"replay", "--ports-per-instance", "8", "--json", vpn}, exitOK, []string{`"refused": 8`, `"backends_how"`, `"status": "complete"`}},
		{[]string{"replay", "-w", out, "--events", ev, "--plot", plot, vpn}, exitOK, []string{"translated"}},
		{[]string{"replay", truncated, "--backends", "10.0.0.1"}, exitInput,
			[]string{"PARTIAL REPORT", "1 packet from", "packet 2 at offset", "truncated"}},
		{[]string{"replay", "--ports-per-instance", "12", vpn}, exitUsage, []string{"multiple of 8"}},
		{[]string{"replay", "--fail-on", "sometimes", vpn}, exitUsage, []string{"want exhaustion and/or drop"}},
		{[]string{"replay"}, exitUsage, []string{"requires at least 1 arg", "Run 'natcheck replay --help' for usage."}},
	} {
		r := run(t, tc.args...)
		for _, w := range tc.want {
			if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, w) {
				t.Errorf("natcheck %v: %s\nwant exit %d and output with %q", tc.args, r, tc.code, w)
				break
			}
		}
	}
	for _, f := range []struct{ path, magic string }{{out, "\x0a\x0d\x0d\x0a"}, {plot, "\x89PNG"}, {ev, `{"file":"ndpi__anyconnect-vpn.pcap","packet":1,`}} {
		b, err := os.ReadFile(f.path)
		if err != nil || !strings.HasPrefix(string(b), f.magic) {
			t.Errorf("%s: %d bytes, err %v; want a file starting %q", f.path, len(b), err, f.magic)
		}
	}
}

// TestEveryCommandHasHelpWithExample: --help of every command shows an
// example, and the examples name files that exist.
func TestEveryCommandHasHelpWithExample(t *testing.T) {
	for _, c := range newRootCmd().Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		r := run(t, c.Name(), "--help")
		if r.code != exitOK || !strings.Contains(r.stdout, "Examples:") || !strings.Contains(r.stdout, "natcheck "+c.Name()) {
			t.Errorf("natcheck %s --help: no example:\n%s", c.Name(), r)
		}
		for _, f := range strings.Fields(c.Example) {
			if strings.HasPrefix(f, "captures/") && !strings.Contains(f, "*") {
				if _, err := os.Stat(filepath.Join("../..", f)); err != nil {
					t.Errorf("natcheck %s --help: its example names %s, which does not exist", c.Name(), f)
				}
			}
		}
	}
}

func TestRegressCommand(t *testing.T) {
	ok := "../../captures/expected/sll2-tls.json"
	r := run(t, "regress", ok, "../../captures/expected/vlan-qinq.json")
	if r.code != exitOK || strings.Count(r.stdout, "as expected") != 2 {
		t.Errorf("natcheck regress: %s", r)
	}
	// A changed expectation: one verdict line edited.
	b, err := os.ReadFile(ok)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("../../captures/public/zeek__openjdk-zeek.org-sll2.pcap")
	changed := strings.Replace(string(b), "ok: 1 flow,", "ok: 2 flows,", 1)
	changed = strings.Replace(changed, `"../public/zeek__openjdk-zeek.org-sll2.pcap"`, `"`+abs+`"`, 1)
	p := filepath.Join(t.TempDir(), "changed.json")
	if err := os.WriteFile(p, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, "regress", p)
	if r.code != exitFailed || !strings.Contains(r.stdout, "CHANGED (1)") || !strings.Contains(r.stdout, "verdict 1: expected") {
		t.Errorf("natcheck regress (changed): %s", r)
	}
}

// TestVerifyExitCodes: verify exits 0 when everything conforms, 1 when a
// check fails, 1 when a check was not run (the implementation lacks a
// capability) unless --allow-unchecked, and never reads "deviates" for a
// check not run.
func TestVerifyExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"verify", "--behaviors", "B11"}, exitOK, "conforms: 6 checks"},
		{[]string{"verify", "--impl", "mutant:rst-hold-14s", "--behaviors", "B11"}, exitFailed, "did not conform"},
		{[]string{"verify", "--impl", "mutant:rst-hold-14s", "--behaviors", "B1"}, exitFailed, "1 check not checked (lacks large-allocation); --allow-unchecked accepts that"},
		{[]string{"verify", "--impl", "mutant:rst-hold-14s", "--behaviors", "B1", "--allow-unchecked"}, exitOK, "not checked (lacks large-allocation): 1 of 3 checks"},
	} {
		out, code := runOut(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) || strings.Contains(out, "deviates") {
			t.Errorf("natcheck %v: exit %d, want %d and output with %q (and no \"deviates\"):\n%s", tc.args, code, tc.code, tc.want, out)
		}
	}
}
