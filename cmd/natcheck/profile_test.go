package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/natcheck/natcheck/reference"
)

// parseProfile runs the profile flags of a bare command over args.
func parseProfile(t *testing.T, args ...string) (reference.Profile, error) {
	t.Helper()
	var pf profileFlags
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	pf.register(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	return pf.profile(cmd)
}

func TestProfileFlags(t *testing.T) {
	dir := t.TempDir()
	snap := filepath.Join(dir, "sysctl.txt")
	if err := os.WriteFile(snap, []byte("net.netfilter.nf_conntrack_udp_timeout = 45\nnet.netfilter.nf_conntrack_tcp_loose = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	procDir := filepath.Join(dir, "netfilter")
	if err := os.Mkdir(procDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(procDir, "nf_conntrack_tcp_timeout_close"), []byte("20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want func(reference.Profile) bool
		err  string
	}{
		{nil, func(p reference.Profile) bool { return p.Name == reference.NameAzureLB }, ""},
		{[]string{"--profile", "linux", "--sysctl", snap}, func(p reference.Profile) bool {
			return p.Name == reference.NameLinux && p.Conntrack.UDP == 45*time.Second && !p.Conntrack.Loose && p.Conntrack.UDPStream == 120*time.Second
		}, ""},
		{[]string{"--profile", "linux", "--sysctl-dir", procDir}, func(p reference.Profile) bool { return p.Conntrack.Close == 20*time.Second }, ""},
		{[]string{"--profile", "rfc", "--filtering", "endpoint-independent", "--udp-timeout", "3m", "--inbound-refresh=false"}, func(p reference.Profile) bool {
			return p.Filtering == reference.FilterEndpointIndependent && p.RFC.UDP == 3*time.Minute && !p.RFC.InboundRefresh
		}, ""},
		{[]string{"--profile", "azure-natgw", "--seed", "7"}, func(p reference.Profile) bool { return p.Seed == 7 && p.Quota == reference.QuotaShared }, ""},
		{[]string{"--profile", "cisco"}, nil, "want azure-lb, azure-natgw, rfc or linux"},
		{[]string{"--filtering", "address"}, nil, "--filtering applies to --profile rfc, not azure-lb"},
		{[]string{"--profile", "linux", "--udp-timeout", "3m"}, nil, "--udp-timeout applies to --profile rfc, not linux"},
		{[]string{"--profile", "rfc", "--sysctl", snap}, nil, "--sysctl applies to --profile linux"},
		{[]string{"--profile", "rfc", "--filtering", "open"}, nil, "want endpoint-independent, address or address-and-port"},
		{[]string{"--profile", "linux", "--sysctl", filepath.Join(dir, "none.txt")}, nil, "none.txt"},
		{[]string{"--profile", "linux", "--sysctl", snap, "--sysctl-dir", procDir}, nil, "give one snapshot"},
		{[]string{"--seed", "3"}, nil, "--seed applies to --profile azure-natgw or linux"},
	} {
		p, err := parseProfile(t, tc.args...)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("flags %v: error %v, want one saying %q", tc.args, err, tc.err)
		case tc.err == "" && (err != nil || !tc.want(p)):
			t.Errorf("flags %v: %+v, %v", tc.args, p, err)
		}
	}
}

func TestProfileCommands(t *testing.T) {
	capture := "../../captures/public/ndpi__anyconnect-vpn.pcap"
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"plan", "--profile", "linux", "--pool-size", "4", "--ports-per-instance", "1024"}, exitOK, []string{"profile linux", "one SNAT rule onto its 1024 ports (L1)", "203.0.113.1:4096-5119"}},
		{[]string{"plan", "--profile", "azure-natgw"}, exitUsage, []string{"profile azure-natgw has no allocation plan", "(G1)"}},
		{[]string{"plan", "--profile", "rfc"}, exitUsage, []string{"(R3)"}},
		{[]string{"verify", "--profile", "linux"}, exitOK, []string{"reference-linux", "L11", "conforms"}},
		{[]string{"verify", "--profile", "rfc", "--impl", "reference-rfc,model-rfc", "--behaviors", "R2,R7"}, exitOK, []string{"model-rfc", "R7"}},
		{[]string{"verify", "--profile", "azure-natgw", "--impl", "model-azure-natgw", "--behaviors", "G4", "--allow-unchecked"}, exitOK, []string{"G4"}},
		{[]string{"verify", "--behaviors", "L2"}, exitUsage, []string{"L2 is an item of profile linux"}},
		{[]string{"verify", "--impl", "reference-linux", "--behaviors", "B7,B8", "--allow-unchecked"}, exitOK, []string{"deviates", "known difference: L3"}},
		{[]string{"replay", "--profile", "linux", capture}, exitOK, []string{"profile linux", "L11: a TCP packet connection tracking holds invalid"}},
		{[]string{"replay", "--profile", "azure-natgw", "--ports-per-instance", "8", capture}, exitUsage, []string{"no per-instance quota", "(G1)"}},
		{[]string{"replay", "--profile", "linux", "--idle-timeout", "10m", capture}, exitUsage, []string{"no idle timeout setting"}},
	} {
		out, code := runOut(t, tc.args...)
		if code != tc.code {
			t.Errorf("natcheck %v: exit %d, want %d:\n%s", tc.args, code, tc.code, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("natcheck %v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
}

// TestSharedInventoryReplaysOnOneEngine: azure-natgw gives the same
// report for any --workers, since it replays on one engine, and says so.
func TestSharedInventoryReplaysOnOneEngine(t *testing.T) {
	capture := "../../captures/public/ndpi__anyconnect-vpn.pcap"
	one := run(t, "replay", "--profile", "azure-natgw", "--workers", "1", "--json", capture)
	four := run(t, "replay", "--profile", "azure-natgw", "--workers", "4", "--json", capture)
	if one.code != exitOK || four.code != exitOK {
		t.Fatalf("exits %d and %d", one.code, four.code)
	}
	if !strings.Contains(four.stderr, "profile azure-natgw shares one inventory between instances (G1): replaying on one engine, not 4") {
		t.Errorf("--workers 4 does not say it runs one engine: %q", four.stderr)
	}
	if one.stdout != four.stdout || !strings.Contains(one.stdout, `"profile": "azure-natgw"`) {
		t.Errorf("the report with --workers 4 differs from --workers 1:\n%.400s\n%.400s", one.stdout, four.stdout)
	}
}
