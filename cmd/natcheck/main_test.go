package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the CLI with args and returns its output and exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err != nil {
		out.WriteString(err.Error())
	}
	return out.String(), exitCode(err)
}

func TestPlanRejectsExactlyWhereB2B4Do(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"plan", "--pool-size", "10", "--ports-per-instance", "6400"}, exitOK, "largest pool this allocation admits: 10"},
		{[]string{"plan", "--pool-size", "10", "--ports-per-instance", "6408"}, exitUsage, "at most 6400 per instance (B4)"},
		{[]string{"plan", "--pool-size", "1", "--ports-per-instance", "12"}, exitUsage, "multiple of 8"},
		{[]string{"plan", "--pool-size", "1", "--ports-per-instance", "64000"}, exitOK, "64000"},
		{[]string{"plan", "--pool-size", "1", "--ports-per-instance", "64008"}, exitUsage, "want 8 to 64000"},
		{[]string{"plan", "--pool-size", "50"}, exitOK, "1024 ports per IP"},
		{[]string{"plan", "--pool-size", "51"}, exitOK, "512 ports per IP"},
		{[]string{"plan", "--pool-size", "1000"}, exitOK, "32 ports per IP"},
		{[]string{"plan", "--pool-size", "1001"}, exitUsage, "(B3)"},
		{[]string{"plan", "--pool-size", "101", "--frontend-ips", "3"}, exitOK, "768 SNAT ports"},
		{[]string{"plan", "--frontend", "2001:db8::1"}, exitUsage, "want an IPv4 address"},
		{[]string{"plan", "--bogus"}, exitUsage, "unknown flag"},
	} {
		out, code := run(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("natcheck %v: exit %d, output %q; want exit %d and %q", tc.args, code, out, tc.code, tc.want)
		}
	}
}

func TestDemoShowsExhaustion(t *testing.T) {
	out, code := run(t, "demo")
	for _, want := range []string{"B9: instance 0 exhausted", "translated via 203.0.113.1:1536", "0 refused"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("natcheck demo: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
}

const vpn = "../../captures/public/ndpi__anyconnect-vpn.pcap"

func TestReplayCommand(t *testing.T) {
	dir := t.TempDir()
	out, ev, plot := dir+"/out.pcapng", dir+"/ev.jsonl", dir+"/usage.png"
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"replay", vpn}, exitOK, []string{"backends [10.0.0.227], detected", "never out of ports"}},
		{[]string{"replay", "--ports-per-instance", "8", "--fail-on", "exhaustion", vpn}, exitFailed,
			[]string{"EXHAUSTED: 8 new flows refused (B9), first at packet 348", "--fail-on exhaustion: 8 new flows refused"}},
		{[]string{"replay", "--ports-per-instance", "8", "--json", vpn}, exitOK, []string{`"exhausted": 8`, `"backends_how"`}},
		{[]string{"replay", "-w", out, "--events", ev, "--plot", plot, vpn}, exitOK, []string{"translated"}},
		{[]string{"replay", "../../captures/public/joincap__unexpected_eof_on_second_packet.pcap", "--backends", "10.0.0.1"}, exitInput,
			[]string{"1 packets from", "packet 2 at offset", "truncated"}},
		{[]string{"replay", "--ports-per-instance", "12", vpn}, exitUsage, []string{"multiple of 8"}},
		{[]string{"replay", "--fail-on", "sometimes", vpn}, exitUsage, []string{"want exhaustion and/or drop"}},
		{[]string{"replay"}, exitUsage, []string{"requires at least 1 arg"}},
	} {
		got, code := run(t, tc.args...)
		for _, w := range tc.want {
			if code != tc.code || !strings.Contains(got, w) {
				t.Errorf("natcheck %v: exit %d, want %d and output with %q:\n%s", tc.args, code, tc.code, w, got)
				break
			}
		}
	}
	for _, f := range []struct{ path, magic string }{{out, "\x0a\x0d\x0d\x0a"}, {plot, "\x89PNG"}, {ev, `{"packet":`}} {
		b, err := os.ReadFile(f.path)
		if err != nil || !strings.HasPrefix(string(b), f.magic) {
			t.Errorf("%s: %d bytes, err %v; want a file starting %q", f.path, len(b), err, f.magic)
		}
	}
}

// TestEveryCommandHasHelpWithExample: --help of every command shows an
// example.
func TestEveryCommandHasHelpWithExample(t *testing.T) {
	for _, c := range newRootCmd().Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		out, code := run(t, c.Name(), "--help")
		if code != exitOK || !strings.Contains(out, "Examples:") || !strings.Contains(out, "natcheck "+c.Name()) {
			t.Errorf("natcheck %s --help: exit %d, no example:\n%s", c.Name(), code, out)
		}
	}
}

func TestRegressCommand(t *testing.T) {
	ok := "../../captures/expected/sll2-tls.json"
	out, code := run(t, "regress", ok, "../../captures/expected/vlan-qinq.json")
	if code != exitOK || strings.Count(out, "as expected") != 2 {
		t.Errorf("natcheck regress: exit %d\n%s", code, out)
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
	os.WriteFile(p, []byte(changed), 0o644)
	out, code = run(t, "regress", p)
	if code != exitFailed || !strings.Contains(out, "CHANGED (1)") || !strings.Contains(out, "verdict 1: expected") {
		t.Errorf("natcheck regress (changed): exit %d\n%s", code, out)
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
		{[]string{"verify", "--behaviors", "B11"}, exitOK, "conforms (6/6)"},
		{[]string{"verify", "--impl", "mutant:rst-hold-14s", "--behaviors", "B11"}, exitFailed, "did not conform"},
		{[]string{"verify", "--impl", "mutant:rst-hold-14s", "--behaviors", "B1"}, exitFailed, "1 check(s) not checked (lacks large-allocation); --allow-unchecked accepts that"},
		{[]string{"verify", "--impl", "mutant:rst-hold-14s", "--behaviors", "B1", "--allow-unchecked"}, exitOK, "not checked (lacks large-allocation) (2/3)"},
	} {
		out, code := run(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) || strings.Contains(out, "deviates") {
			t.Errorf("natcheck %v: exit %d, want %d and output with %q (and no \"deviates\"):\n%s", tc.args, code, tc.code, tc.want, out)
		}
	}
}
