package regress

import (
	"cmp"
	"os"
	"path/filepath"

	"github.com/natcheck/natcheck/replay"
	"slices"
)

// Shard is one part of a corpus split over machines: Index of Count,
// 0 ≤ Index < Count.
type Shard = replay.Shard

// ParseShard parses "i/n", 0 ≤ i < n.
func ParseShard(s string) (Shard, error) { return replay.ParseShard(s) }

// Split assigns each expectation file of a corpus to one of n shards and
// returns, per shard, its files in path order. It depends only on the
// paths and the sizes of the captures they name (the same on every
// checkout), so machines that each run one shard need no coordination,
// and every file lands in exactly one shard. The biggest captures are
// placed first, each on the shard with the fewest bytes so far (ties: the
// lowest shard), so that the shards take about as long. A file that
// cannot be loaded counts as empty; the shard it lands on reports it.
func Split(paths []string, n int) [][]string {
	type job struct {
		path string
		size int64
	}
	paths = sortedUnique(paths)
	jobs := make([]job, len(paths))
	for i, p := range paths {
		jobs[i] = job{path: p}
		if e, err := Load(p); err == nil {
			if st, err := os.Stat(e.CapturePath()); err == nil {
				jobs[i].size = st.Size()
			}
		}
	}
	slices.SortStableFunc(jobs, func(a, b job) int {
		return cmp.Or(cmp.Compare(b.size, a.size), cmp.Compare(a.path, b.path))
	})
	shards := make([][]string, n)
	load := make([]int64, n)
	for _, j := range jobs {
		best := 0
		for k := 1; k < n; k++ {
			if load[k] < load[best] || load[k] == load[best] && len(shards[k]) < len(shards[best]) {
				best = k
			}
		}
		shards[best] = append(shards[best], j.path)
		load[best] += j.size
	}
	for _, s := range shards {
		slices.Sort(s)
	}
	return shards
}

// sortedUnique returns the paths sorted, each once.
func sortedUnique(paths []string) []string {
	p := make([]string, len(paths))
	for i, s := range paths {
		p[i] = filepath.Clean(s)
	}
	slices.Sort(p)
	return slices.Compact(p)
}
