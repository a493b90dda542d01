package regress

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Shard
		ok   bool
	}{
		{"0/1", Shard{Index: 0, Count: 1}, true}, {"3/4", Shard{Index: 3, Count: 4}, true}, {"4/4", Shard{}, false}, {"-1/4", Shard{}, false},
		{"1/0", Shard{}, false}, {"1", Shard{}, false}, {"a/b", Shard{}, false}, {"", Shard{}, false},
	} {
		got, err := ParseShard(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseShard(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestSplitCoversEveryFileOnce: for any number of shards, every file of a
// corpus is in exactly one shard, whatever the order the files are given
// in; the bundled corpus (real sizes) and a corpus of 500 names whose
// files do not exist (all of size 0) alike.
func TestSplitCoversEveryFileOnce(t *testing.T) {
	synthetic := make([]string, 500)
	for i := range synthetic {
		synthetic[i] = fmt.Sprintf("corpus/%03d/e.json", (i*7919)%1000)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for name, paths := range map[string][]string{"bundled": corpus(t), "synthetic": synthetic} {
		want := sortedUnique(paths)
		for n := 1; n <= 2*len(want)+1 && n <= 64; n++ {
			shards := Split(paths, n)
			if len(shards) != n {
				t.Fatalf("%s: Split(%d) gave %d shards", name, n, len(shards))
			}
			var all []string
			for _, s := range shards {
				all = append(all, s...)
			}
			slices.Sort(all)
			if !slices.Equal(all, want) {
				t.Fatalf("%s, %d shards: the shards hold %d files, want each of the %d once", name, n, len(all), len(want))
			}
			shuffled := slices.Clone(paths)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if again := Split(shuffled, n); !slices.EqualFunc(again, shards, slices.Equal) {
				t.Fatalf("%s, %d shards: the split depends on the order the files are given in", name, n)
			}
		}
	}
}

// TestSplitBalancesBySize: equal files spread evenly over the shards.
func TestSplitBalancesBySize(t *testing.T) {
	paths := make([]string, 10)
	for i := range paths {
		paths[i] = fmt.Sprintf("e%d.json", i)
	}
	for _, s := range Split(paths, 3) {
		if len(s) < 3 || len(s) > 4 {
			t.Fatalf("Split of 10 empty files into 3: a shard of %d", len(s))
		}
	}
}

// TestMergedShardsAreTheWholeRun: the JSON reports of n shards merge into
// the document, byte for byte, of one run over the whole corpus, for
// several n.
func TestMergedShardsAreTheWholeRun(t *testing.T) {
	paths := corpus(t)
	var whole bytes.Buffer
	if err := RunCorpus(paths, nil, false, nil).WriteJSON(&whole); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3, len(paths) + 2} {
		var reps []Report
		for i := n - 1; i >= 0; i-- { // in any order
			var b bytes.Buffer
			if err := RunCorpus(paths, &Shard{Index: i, Count: n}, false, nil).WriteJSON(&b); err != nil {
				t.Fatal(err)
			}
			r, err := ReadReport(fmt.Sprintf("shard %d", i), b.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			reps = append(reps, r)
		}
		m, err := Merge(reps)
		if err != nil {
			t.Fatalf("%d shards: %v", n, err)
		}
		var got bytes.Buffer
		m.WriteJSON(&got)
		if !bytes.Equal(got.Bytes(), whole.Bytes()) {
			t.Fatalf("%d shards merged:\n%s\nwant the whole run's:\n%s", n, got.String(), whole.String())
		}
	}
}

func TestMergeRefusesIncompleteSets(t *testing.T) {
	paths := []string{"a.json", "b.json", "c.json"} // missing files: error results, still sharded
	shard := func(i, n int) Report { return RunCorpus(paths, &Shard{Index: i, Count: n}, false, nil) }
	for _, tc := range []struct {
		name string
		reps []Report
		want string
	}{
		{"missing", []Report{shard(0, 3), shard(2, 3)}, "shard 1/3 missing"},
		{"twice", []Report{shard(0, 2), shard(0, 2), shard(1, 2)}, "given twice"},
		{"two splits", []Report{shard(0, 2), shard(1, 3)}, "shard 1/3"},
		{"not a shard", []Report{RunCorpus(paths, nil, false, nil)}, "not a shard"},
		{"none", nil, "no report"},
	} {
		if _, err := Merge(tc.reps); !errors.Is(err, ErrMerge) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Merge = %v, want ErrMerge saying %q", tc.name, err, tc.want)
		}
	}
}

// TestJUnitAndMarkdown: the JUnit XML has a test case per capture, a
// failure with the difference lines for a changed one and an error for
// one that cannot be run; the Markdown summary counts and lists them.
func TestJUnitAndMarkdown(t *testing.T) {
	e := mustLoad(t, "../captures/expected/sll2-tls.json")
	e.Outcome.Counts.Translated = 1
	changed := copyExpectation(t, e)
	ok := copyExpectation(t, mustLoad(t, "../captures/expected/vlan-qinq.json"))
	rep := RunCorpus([]string{changed.path, ok.path, "missing.json"}, nil, false, nil)
	var x bytes.Buffer
	if err := rep.WriteJUnit(&x); err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(x.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit XML does not parse: %v\n%s", err, x.String())
	}
	s := doc.Suites[0]
	if doc.Tests != 3 || doc.Failures != 1 || doc.Errors != 1 || len(s.Cases) != 3 {
		t.Fatalf("JUnit: %d tests, %d failures, %d errors, %d cases; want 3, 1, 1, 3", doc.Tests, doc.Failures, doc.Errors, len(s.Cases))
	}
	byName := map[string]junitCase{}
	for _, c := range s.Cases {
		byName[c.Name] = c
	}
	if c := byName[changed.path]; c.Failure == nil || !strings.Contains(c.Failure.Text, "counts.translated: expected 1, got 6") {
		t.Errorf("changed case = %+v, want a failure naming counts.translated", c)
	}
	if c := byName[ok.path]; c.Failure != nil || c.Error != nil {
		t.Errorf("passing case = %+v, want neither failure nor error", c)
	}
	if c := byName["missing.json"]; c.Error == nil || !strings.Contains(c.Error.Message, "missing.json") {
		t.Errorf("missing case = %+v, want an error naming the file", c)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	for _, want := range []string{"3 captures: 1 as expected, 1 changed, 0 recorded, 1 errors", "| **changed** (1) |",
		"counts.translated: expected 1, got 6", "`missing.json` could not be run"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
}
