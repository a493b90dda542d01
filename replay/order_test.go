package replay

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/natcheck/natcheck/internal/pcapgen"
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
	for _, workers := range []int{1, 2} {
		var outs [2][]byte
		var counts [2]Counts
		for i, in := range []string{inOrder, late} {
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
			t.Errorf("%d workers: counts in order %+v, with late records %+v", workers, counts[0], counts[1])
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("%d workers: the outside views differ (%d and %d bytes)", workers, len(outs[0]), len(outs[1]))
		}
	}
}
