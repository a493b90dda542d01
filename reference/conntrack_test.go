package reference

import (
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// TestParseSysctlRecorded reads a `sysctl net.netfilter` snapshot recorded
// on this project's machine (testdata, kernel 6.18): every value the
// profile takes is the kernel default there.
func TestParseSysctlRecorded(t *testing.T) {
	f, err := os.Open("testdata/sysctl-netfilter-6.18.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ParseSysctl(f, "testdata/sysctl-netfilter-6.18.txt")
	if err != nil {
		t.Fatal(err)
	}
	if want := DefaultConntrack(); got != want {
		t.Errorf("ParseSysctl(recorded 6.18) = %+v, want the defaults %+v", got, want)
	}
}

func TestParseSysctl(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     func(*Conntrack)
		err      string
	}{
		{"changed values", "net.netfilter.nf_conntrack_udp_timeout = 45\nnet.netfilter.nf_conntrack_tcp_timeout_established = 7200\nnet.netfilter.nf_conntrack_tcp_loose = 0\n",
			func(c *Conntrack) { c.UDP, c.Established, c.Loose = 45*time.Second, 2*time.Hour, false }, ""},
		{"key: value and comments", "# a comment\n\nnet.netfilter.nf_conntrack_icmp_timeout: 60\nnet.ipv4.ip_forward = 1\n",
			func(c *Conntrack) { c.ICMP = time.Minute }, ""},
		{"not a number", "net.netfilter.nf_conntrack_udp_timeout = 30\nnet.netfilter.nf_conntrack_close = x\nnet.netfilter.nf_conntrack_tcp_timeout_close = ten\n", nil, "line 3: nf_conntrack_tcp_timeout_close = \" ten\": want a whole number"},
		{"no key = value", "net.netfilter.nf_conntrack_udp_timeout 30\n", nil, "line 1"},
		{"nothing of conntrack", "net.ipv4.ip_forward = 1\n", nil, "no net.netfilter.nf_conntrack_* timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSysctl(strings.NewReader(tc.in), "snap.txt")
			if tc.err != "" {
				var se *SysctlError
				if err == nil || !errors.As(err, &se) || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "snap.txt") {
					t.Fatalf("ParseSysctl(%q) = %v, want a *SysctlError naming snap.txt with %q", tc.in, err, tc.err)
				}
				return
			}
			want := DefaultConntrack()
			tc.want(&want)
			if err != nil || got != want {
				t.Errorf("ParseSysctl(%q) = %+v, %v; want %+v", tc.in, got, err, want)
			}
		})
	}
}

func TestReadSysctlFS(t *testing.T) {
	fsys := fstest.MapFS{
		"nf_conntrack_udp_timeout_stream":      {Data: []byte("180\n")},
		"nf_conntrack_tcp_timeout_syn_sent":    {Data: []byte("60\n")},
		"nf_conntrack_tcp_timeout_established": {Data: []byte("432000\n")},
	}
	got, err := ReadSysctlFS(fsys, "/proc/sys/net/netfilter")
	want := DefaultConntrack()
	want.UDPStream, want.SynSent = 180*time.Second, time.Minute
	if err != nil || got != want {
		t.Errorf("ReadSysctlFS = %+v, %v; want %+v", got, err, want)
	}
	if _, err := ReadSysctlFS(fstest.MapFS{}, "empty"); err == nil {
		t.Errorf("ReadSysctlFS of an empty directory: no error")
	}
	bad := fstest.MapFS{"nf_conntrack_udp_timeout": {Data: []byte("soon\n")}}
	if _, err := ReadSysctlFS(bad, "dir"); err == nil || !strings.Contains(err.Error(), "dir/nf_conntrack_udp_timeout") {
		t.Errorf("ReadSysctlFS of a bad value = %v, want an error naming the file", err)
	}
}

// TestReadSysctlLive reads this machine's own sysctls, as `natcheck
// --profile linux --sysctl-dir /proc/sys/net/netfilter` does, and checks
// them against what `sysctl` would print: the values the files hold.
func TestReadSysctlLive(t *testing.T) {
	const dir = "/proc/sys/net/netfilter"
	b, err := os.ReadFile(dir + "/nf_conntrack_udp_timeout")
	if err != nil {
		t.Skipf("no conntrack sysctls here (%v): the linux profile reads them from a snapshot instead", err)
	}
	got, err := ReadSysctlFS(os.DirFS(dir), dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustSeconds(t, strings.TrimSpace(string(b))); got.UDP != want {
		t.Errorf("live UDP timeout %v, the file says %v", got.UDP, want)
	}
}

func mustSeconds(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s + "s")
	if err != nil {
		t.Fatal(err)
	}
	return d
}
