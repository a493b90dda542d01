package livereplay_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natcheck/natcheck/device/linuxnft"
	"github.com/natcheck/natcheck/device/livereplay"
	"github.com/natcheck/natcheck/device/sandbox/sandboxtest"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/regress"
	"github.com/natcheck/natcheck/replay"
	"github.com/natcheck/natcheck/viewdiff"
)

// TestCorpusRecordingsToday records two real captures of the corpus
// through linux-nft again, as scripts/record-device.sh does (the setup of
// their expectations, speed 10), and compares with natcheck diff's
// comparison: today's recording with the committed one (the device last
// month) must be equivalent up to a renaming of SNAT endpoints, and with
// the reference's outside view under the expectation's setup (profile
// linux) it must show exactly the differences the expectation lists
// (none). Negative control: against a replay whose outbound rule is TCP
// only (B15: no UDP flow translated), the DNS recording differs at every
// UDP packet, each shown only in the device's view.
func TestCorpusRecordingsToday(t *testing.T) {
	sandboxtest.Require(t, linuxnft.Preflight)
	ct, err := linuxnft.DeviceConntrack()
	if err != nil {
		t.Fatal(err)
	}
	ct.StreamAfter *= 10 // the kernel's 2 s is wall clock
	for _, name := range []string{"real-http-curl", "real-dns-udp"} {
		e, err := regress.Load("../../captures/expected/device-linux-nft-" + name + "-linux.json")
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := e.Setup.Config()
		if err != nil {
			t.Fatal(err)
		}
		ec := cfg.Engine
		ec.Profile = reference.Linux(ct)
		ec.Backends = e.Outcome.Backends
		ec.PoolSize = len(ec.Backends)
		out := filepath.Join(t.TempDir(), name+".pcapng")
		res, err := livereplay.Run(context.Background(), []string{e.CapturePath()}, livereplay.Config{Engine: ec, Speed: 10, Output: out})
		if err != nil {
			t.Fatal(err)
		}
		if res.Differ != 0 {
			t.Errorf("%s: %d flows did otherwise than profile linux says", name, res.Differ)
		}
		today := read(t, out)
		if r := viewdiff.Compare(read(t, e.RecordingPath()), today); !r.Equivalent() {
			t.Errorf("%s: today's recording against the committed one: %d differences, want equivalent:\n%s", name, len(r.Differences), lines(r))
		}
		ref := filepath.Join(t.TempDir(), "ref.pcapng")
		cfg.Output = ref
		if _, err := replay.Run([]string{e.CapturePath()}, cfg); err != nil {
			t.Fatal(err)
		}
		r := viewdiff.Compare(read(t, ref), today)
		if len(r.Differences) != len(e.Device.Differences) || r.Paired == 0 {
			t.Errorf("%s: the reference's outside view against today's recording: %d differences (%d paired), want the expectation's %d:\n%s",
				name, len(r.Differences), r.Paired, len(e.Device.Differences), lines(r))
		}
		if name != "real-dns-udp" {
			continue
		}
		cfg.Engine.Protocols = reference.TCPOnly
		if _, err := replay.Run([]string{e.CapturePath()}, cfg); err != nil {
			t.Fatal(err)
		}
		r = viewdiff.Compare(read(t, ref), today)
		onlyB := 0
		for _, d := range r.Differences {
			if d.A == nil && d.B != nil && d.B.Proto == reference.UDP && strings.HasPrefix(d.What, "only in B") {
				onlyB++
			}
		}
		if onlyB != 14 || len(r.Differences) != 14 {
			t.Errorf("negative control (TCP-only rule): %d differences, %d of them a UDP packet only in the device's view; want 14 and 14:\n%s", len(r.Differences), onlyB, lines(r))
		}
	}
}

func read(t *testing.T, path string) []viewdiff.Packet {
	t.Helper()
	v, err := viewdiff.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func lines(r *viewdiff.Result) string {
	var b strings.Builder
	for i, d := range r.Differences {
		if i == 10 {
			break
		}
		b.WriteString("  " + d.String() + "\n")
	}
	return b.String()
}
