package main

import (
	"bytes"
	"errors"
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
	if err == nil {
		return out.String(), exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return out.String() + err.Error(), ee.code
	}
	return out.String() + err.Error(), -1
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
