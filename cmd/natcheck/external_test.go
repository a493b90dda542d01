package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestVerifyExternalUsage: a third-party NAT's flags are checked before
// any interface is touched.
func TestVerifyExternalUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"verify", "--inside", "eth9"}, "needs --inside IF, --outside IF, --public IP[,IP…] and --gateway IP"},
		{[]string{"verify", "--inside", "eth9", "--outside", "eth8", "--public", "203.0.113.x", "--gateway", "10.0.0.254"}, `"203.0.113.x": want an IPv4 address`},
		{[]string{"verify", "--inside", "eth9", "--outside", "eth8", "--public", "203.0.113.1", "--gateway", "fe80::1"}, "--gateway"},
		{[]string{"verify", "--inside", "eth9", "--outside", "eth8", "--device", "linux-nft"}, "one device at a time"},
	} {
		var out, errb bytes.Buffer
		code := execute(tc.args, &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("natcheck %s: exit %d, stderr %q; want %d and %q", strings.Join(tc.args, " "), code, errb.String(), exitUsage, tc.want)
		}
	}
}

// TestReplayExternalUsage: replay and record through a third-party NAT
// check their flags before any interface is touched.
func TestReplayExternalUsage(t *testing.T) {
	const capture = "../../captures/public/ndpi__anyconnect-vpn.pcap"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", "--inside", "eth9", capture}, "needs --inside IF, --outside IF and --gateway IP"},
		{[]string{"replay", "--inside", "eth9", "--outside", "eth8", "--gateway", "10.0.0.x", capture}, `--gateway "10.0.0.x": want an IPv4 address`},
		{[]string{"replay", "--inside", "eth9", "--outside", "eth8", "--gateway", "10.0.0.254", "--device", "linux-nft", capture}, "one device at a time"},
		{[]string{"record", "--outside", "eth8", "-o", "x.pcapng", capture}, "needs --inside IF"},
	} {
		var out, errb bytes.Buffer
		code := execute(tc.args, &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("natcheck %s: exit %d, stderr %q; want %d and %q", strings.Join(tc.args, " "), code, errb.String(), exitUsage, tc.want)
		}
	}
}
