package regress

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// BenchmarkRegress times natcheck regress's work (RunCorpus: every
// expectation replayed with its outputs, digested, compared, and its
// device recording diffed) on the committed corpus. worst-case is the
// whole corpus in one unsharded run, as a CI job without a matrix runs
// it; best-case is the expectation of the smallest capture alone. The
// custom metrics are input packets and captures checked per second.
func BenchmarkRegress(b *testing.B) {
	all, _ := filepath.Glob("../captures/expected/*.json")
	if len(all) < 8 {
		b.Fatalf("found %d expectation files, want the bundled ones", len(all))
	}
	size := func(p string) int64 {
		e, err := Load(p)
		if err != nil {
			b.Fatal(err)
		}
		st, err := os.Stat(e.CapturePath())
		if err != nil {
			b.Fatal(err)
		}
		return st.Size()
	}
	smallest := slices.MinFunc(all, func(x, y string) int { return int(size(x) - size(y)) })
	for _, c := range []struct {
		name  string
		paths []string
	}{{"worst-case/whole-corpus", all}, {"best-case/smallest-capture", []string{smallest}}} {
		b.Run(c.name, func(b *testing.B) {
			var packets int64
			for _, p := range c.paths {
				e, err := Load(p)
				if err != nil {
					b.Fatal(err)
				}
				packets += e.Outcome.Counts.Packets
			}
			b.ReportAllocs()
			for b.Loop() {
				rep := RunCorpus(c.paths, nil, false, nil)
				if rep.Summary.AsExpected != len(c.paths) {
					b.Fatalf("%d of %d as expected", rep.Summary.AsExpected, len(c.paths))
				}
			}
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(packets)*float64(b.N)/s, "pkts/s")
			b.ReportMetric(float64(len(c.paths))*float64(b.N)/s, "captures/s")
		})
	}
}
