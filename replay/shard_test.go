package replay

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/natcheck/natcheck/internal/pcapgen"
	"github.com/natcheck/natcheck/reference"
)

// jsonOf runs a replay and returns its JSON report.
func jsonOf(t *testing.T, files []string, cfg Config) []byte {
	t.Helper()
	res, err := Run(files, cfg)
	if err != nil {
		t.Fatalf("%v: %v", files, err)
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, res); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// mergedShards replays files as n shards (each with its own number of
// workers), reads each shard's JSON report back and merges them.
func mergedShards(t *testing.T, files []string, cfg Config, n int) []byte {
	t.Helper()
	var parts []*Result
	for i := n - 1; i >= 0; i-- { // in any order
		c := cfg
		c.Shard = &Shard{Index: i, Count: n}
		c.Workers = 1 + i%3
		r, err := ReadJSON(fmt.Sprint("shard ", i), bytes.NewReader(jsonOf(t, files, c)))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, r)
	}
	m, err := MergeResults(parts)
	if err != nil {
		t.Fatalf("%v, %d shards: %v", files, n, err)
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestShardedReplayMerges: the JSON reports of the n shards of a replay
// merge into the unsharded replay's report, byte for byte: on a generated
// capture whose instances go quiet, release by FIN, RST and idle with B14
// RSTs (with and without --drain), on every public capture with every
// private address an instance of 8 ports (instances run out; some records
// are unreadable), and on two captures merged, for several shard counts.
func TestShardedReplayMerges(t *testing.T) {
	private, _ := ParseBackends("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8")
	quiet := quietCapture(t)
	type job struct {
		files  []string
		cfg    Config
		shards []int
	}
	jobs := []job{
		{[]string{quiet}, Config{Engine: oneFrontend(0), Workers: 1}, []int{1, 2, 3, 4, 5}},
		{[]string{quiet}, Config{Engine: oneFrontend(8), Workers: 1, Drain: true}, []int{2, 3, 7}},
		{[]string{public + "ndpi__anyconnect-vpn.pcap", public + "ndpi__quic_interop_V.pcapng"}, Config{Engine: oneFrontend(8), Backends: private, Workers: 1}, []int{2, 3}},
	}
	jobs = append(jobs, job{[]string{cutCapture(t)}, Config{Engine: oneFrontend(8), Backends: private, Workers: 1}, []int{2, 3}})
	entries, _ := os.ReadDir(public)
	for _, e := range entries {
		if n := e.Name(); (strings.HasSuffix(n, ".pcap") || strings.HasSuffix(n, ".pcapng")) && !strings.Contains(n, "unexpected_eof") {
			jobs = append(jobs, job{[]string{public + n}, Config{Engine: oneFrontend(8), Backends: private, Workers: 1}, []int{2, 3}})
		}
	}
	merged := 0
	// The linux profile's instances own their ports too (L1: one rule per
	// backend onto its own blocks).
	for _, j := range slices.Clone(jobs[3:]) {
		j.cfg.Engine.Profile = reference.Linux(reference.DefaultConntrack())
		j.cfg.Engine.PortsPerInstance = 1024
		jobs = append(jobs, j)
	}
	for _, j := range jobs {
		j.cfg.Engine.TCPResetOnIdle = j.cfg.Engine.Profile.Name == ""
		if _, err := Run(j.files, j.cfg); err != nil && strings.Contains(err.Error(), "no backend instances") {
			continue // no private address opens a flow in it
		}
		merged++
		whole := jsonOf(t, j.files, j.cfg)
		for _, n := range j.shards {
			if got := mergedShards(t, j.files, j.cfg, n); !bytes.Equal(got, whole) {
				t.Errorf("%v, %d shards merged: first difference %s", j.files, n, firstDiff(string(whole), string(got)))
			}
		}
	}
	if merged < 10 {
		t.Errorf("only %d replays merged, want the quiet capture's, the merged pair's and most public captures'", merged)
	}
}

// TestShardOwnsItsInstancesOnly: a shard's report has the rows of its
// instances only (i mod n), and shards' packets add up to the whole.
func TestShardOwnsItsInstancesOnly(t *testing.T) {
	quiet := quietCapture(t)
	whole, err := Run([]string{quiet}, Config{Engine: oneFrontend(0), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	var translated int64
	for i := range 3 {
		r, err := Run([]string{quiet}, Config{Engine: oneFrontend(0), Workers: 2, Shard: &Shard{Index: i, Count: 3}})
		if err != nil {
			t.Fatal(err)
		}
		for _, ir := range r.Instances {
			if ir.Instance%3 != i {
				t.Errorf("shard %d/3 reports instance %d", i, ir.Instance)
			}
		}
		translated += r.Counts.Translated
	}
	if translated != whole.Counts.Translated || whole.Counts.Translated == 0 {
		t.Errorf("shards translated %d packets, the whole replay %d", translated, whole.Counts.Translated)
	}
}

// TestShardRefusals: a profile that shares its inventory among instances
// refuses --shard with a configuration error naming why; results that are
// not the shards of one replay do not merge.
func TestShardRefusals(t *testing.T) {
	quiet := quietCapture(t)
	for _, shared := range []reference.Profile{reference.AzureNATGW(), reference.RFC()} {
		_, err := Run([]string{quiet}, Config{Engine: reference.Config{Profile: shared, Frontends: oneFrontend(0).Frontends}, Shard: &Shard{Index: 0, Count: 2}})
		if !errors.Is(err, reference.ErrConfig) || !strings.Contains(err.Error(), "shares one port inventory") || !strings.Contains(err.Error(), shared.Name) {
			t.Errorf("profile %s with --shard: %v, want a configuration error saying why", shared.Name, err)
		}
	}
	shard := func(files []string, i, n int) *Result {
		r, err := Run(files, Config{Engine: oneFrontend(0), Workers: 1, Shard: &Shard{Index: i, Count: n}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	q, vpn := []string{quiet}, []string{public + "ndpi__anyconnect-vpn.pcap"}
	for _, tc := range []struct {
		name  string
		parts []*Result
		want  string
	}{
		{"missing", []*Result{shard(q, 0, 3), shard(q, 2, 3)}, "shard 1/3 missing"},
		{"twice", []*Result{shard(q, 0, 2), shard(q, 0, 2)}, "given twice"},
		{"two splits", []*Result{shard(q, 0, 2), shard(q, 1, 3)}, "shard 1/3"},
		{"two replays", []*Result{shard(q, 0, 2), shard(vpn, 1, 2)}, "differ"},
	} {
		if _, err := MergeResults(tc.parts); !errors.Is(err, ErrMerge) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: MergeResults = %v, want ErrMerge saying %q", tc.name, err, tc.want)
		}
	}
}

// cutCapture writes a capture of 3 instances, 30 SYNs, where every 4th
// frame is cut inside its IPv4 header (unreadable: every shard reads it)
// and every 7th inside its TCP header (malformed: dropped by its
// instance's NAT).
func cutCapture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cut.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pw := pcapgo.NewWriterNanos(f)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	for i := range 30 {
		p := synthPacket{at: time.Duration(i) * time.Millisecond, src: ap(fmt.Sprintf("10.0.0.%d:%d", 1+i%3, 1000+i)),
			dst: ap("198.51.100.1:443"), proto: reference.TCP, flags: reference.SYN}.packet()
		data, err := pcapgen.Frame(buf, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := len(data)
		switch {
		case i%4 == 3:
			n = 14 + 10
		case i%7 == 6:
			n = 14 + 20 + 12
		}
		if err := pw.WritePacket(gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: n, Length: len(data)}, data[:n]); err != nil {
			t.Fatal(err)
		}
	}
	return path
}
