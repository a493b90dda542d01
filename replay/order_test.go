package replay

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/internal/pcapgen"
	"github.com/natcheck/natcheck/replay/capture"
)

// TestReplayLateRecordsSameResult: a capture of issue 11's class with 10 %
// of its records written 1 ms late (pcapgen.BusySubnet.Late) replays to
// the same counts and the same outside view, byte for byte, as the same
// capture in time order, on one worker and on two: the re-ordering that
// BenchmarkReplayOrder measures changes nothing but the cost.
func TestReplayLateRecordsSameResult(t *testing.T) {
	dir := t.TempDir()
	c := pcapgen.Issue11()
	c.Packets, c.Flows, c.Hosts = 30_000, 2_000, 200
	inOrder, late := filepath.Join(dir, "in-order.pcap"), filepath.Join(dir, "late.pcap")
	if err := c.WriteFile(inOrder); err != nil {
		t.Fatal(err)
	}
	c.Late = 0.1
	if err := c.WriteFile(late); err != nil {
		t.Fatal(err)
	}
	// The same two as pcapng files (read through pcapgo, not mapped by
	// record; their late records read again from the mapping).
	ngInOrder, ngLate := filepath.Join(dir, "in-order.pcapng"), filepath.Join(dir, "late.pcapng")
	toPcapng(t, inOrder, ngInOrder)
	toPcapng(t, late, ngLate)
	for _, tc := range []struct {
		workers       int
		inOrder, late string
	}{{1, inOrder, late}, {2, inOrder, late}, {1, ngInOrder, ngLate}, {2, ngInOrder, ngLate}} {
		workers := tc.workers
		var outs [2][]byte
		var counts [2]Counts
		for i, in := range []string{tc.inOrder, tc.late} {
			out := filepath.Join(dir, "out.pcapng")
			res, err := Run([]string{in}, busyConfig(out, workers, nil))
			if err != nil {
				t.Fatal(err)
			}
			if outs[i], err = os.ReadFile(out); err != nil {
				t.Fatal(err)
			}
			counts[i] = res.Counts
		}
		if counts[0] != counts[1] || counts[0].Packets != int64(c.Packets) {
			t.Errorf("%s, %d workers: counts in order %+v, with late records %+v", tc.late, workers, counts[0], counts[1])
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("%s, %d workers: the outside views differ (%d and %d bytes)", tc.late, workers, len(outs[0]), len(outs[1]))
		}
	}
}

// toPcapng copies the records of the capture at from to a pcapng file at
// to, one Ethernet interface.
func toPcapng(t *testing.T, from, to string) {
	t.Helper()
	rd, err := capture.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	w, err := capture.Create(to, capture.Interface{Name: "in", LinkType: layers.LinkTypeEthernet})
	if err != nil {
		t.Fatal(err)
	}
	for {
		rec, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReplayFileCutWhileReplayed: the replay reads a classic pcap file
// mapped into memory; cut short under it (here at the first progress
// report of the replay pass, 1 MB in), reading the lost pages faults, and
// the replay ends with an error saying so, not a crash, after replaying
// the records before, on one worker and on two.
func TestReplayFileCutWhileReplayed(t *testing.T) {
	c := pcapgen.Issue11()
	c.Packets, c.Flows, c.Hosts = 30_000, 2_000, 200
	for _, workers := range []int{1, 2} {
		path := filepath.Join(t.TempDir(), "cut.pcap")
		if err := c.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		cfg := busyConfig(filepath.Join(t.TempDir(), "out.pcapng"), workers, nil)
		cut := false
		cfg.Progress = func(p Progress) {
			if p.Phase == "replay" && !cut {
				cut = true
				if err := os.Truncate(path, 4096); err != nil {
					t.Error(err)
				}
			}
		}
		res, err := Run([]string{path}, cfg)
		if !cut {
			t.Fatal("no progress report in the replay pass: nothing was cut")
		}
		if err == nil || !strings.Contains(err.Error(), "cut short while it was read") {
			t.Fatalf("%d workers: error = %v, want one saying the capture was cut short", workers, err)
		}
		if res.Counts.Packets == 0 || res.Counts.Packets >= int64(c.Packets) {
			t.Errorf("%d workers: %d packets replayed, want those before the cut", workers, res.Counts.Packets)
		}
		t.Logf("%d workers: %v after %d packets", workers, err, res.Counts.Packets)
	}
}
