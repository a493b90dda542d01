package livecheck_test

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natcheck/natcheck/device/livecheck"
	"github.com/natcheck/natcheck/device/pace"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// TestLongestFirst runs every azure-lb check on the reference engine one
// at a time: with LongestFirst they end longest first (without it, in their
// order, which is not sorted by length), and the matrix is the same
// either way, rows and results in the checks' order.
func TestLongestFirst(t *testing.T) {
	impl := specs.Reference()
	checks, err := specs.ChecksFor(reference.NameAzureLB)
	if err != nil {
		t.Fatal(err)
	}
	length := func(c specs.Check) time.Duration { return specs.Length(impl, c) }
	run := func(longestFirst bool) (specs.Matrix, []time.Duration) {
		var ended []time.Duration
		m, err := livecheck.Verify(context.Background(), impl, checks, nil, livecheck.Options{Parallel: 1, Attempts: 1, LongestFirst: longestFirst,
			OnResult: func(r specs.Result) { ended = append(ended, length(r.Check)) }})
		if err != nil {
			t.Fatal(err)
		}
		return m, ended
	}
	sorted, longest := run(true)
	plain, inOrder := run(false)
	desc := func(a, b time.Duration) int { return cmp.Compare(b, a) }
	if len(longest) != len(checks) || !slices.IsSortedFunc(longest, desc) {
		t.Errorf("with LongestFirst, checks ended at lengths %v: want all %d, longest first", longest, len(checks))
	}
	if slices.IsSortedFunc(inOrder, desc) {
		t.Fatalf("the checks' own order is already longest first: the test shows nothing")
	}
	flat := func(m specs.Matrix) []string {
		var out []string
		for _, row := range m.Rows {
			for _, r := range row.Cells[0].Results {
				out = append(out, row.ID.String()+" "+row.Cells[0].Status.String()+" "+r.Check.Text()+": "+r.Status.String())
			}
		}
		return out
	}
	if a, b := flat(sorted), flat(plain); !slices.Equal(a, b) {
		t.Errorf("matrices differ:\nlongest first %v\nin order      %v", a, b)
	}
}

// TestTooLongIsNotStarted: with a time scale of 10 and a minute left, a
// check whose waits take 6 hours of profile time (B12's 120-minute idle
// timeout, 36 minutes of wall clock) is not started: a harness error
// matched by pace.ErrBudget, after one attempt; one whose waits take 9
// minutes (B14's silent expiry, 54 s) runs and conforms. Without the
// scale both run (the engine runs in virtual time) and conform.
func TestTooLongIsNotStarted(t *testing.T) {
	impl := specs.Reference()
	checks, err := specs.ChecksFor(reference.NameAzureLB)
	if err != nil {
		t.Fatal(err)
	}
	var picked []specs.Check
	for _, c := range checks {
		if strings.HasPrefix(c.Text(), "B12: an outbound rule's idle timeout of 120 minutes applies") || strings.HasPrefix(c.Text(), "B14: idle expiry is silent") {
			picked = append(picked, c)
		}
	}
	if len(picked) != 2 {
		t.Fatalf("found %d of the 2 checks", len(picked))
	}
	for _, k := range []int{10, 0} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		m, err := livecheck.Verify(ctx, impl, picked, nil, livecheck.Options{Parallel: 2, Attempts: 3, Scale: k})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range m.Rows {
			for _, r := range row.Cells[0].Results {
				refused := k != 0 && row.ID == reference.B12
				switch {
				case refused && (r.Status != specs.HarnessError || !errors.Is(r.Err, pace.ErrBudget) || r.Attempts != 1):
					t.Errorf("scale %d: %s: %s (attempts %d), want a harness error of the budget, not run", k, r.Check.Text(), r.Report(), r.Attempts)
				case !refused && r.Status != specs.Conforms:
					t.Errorf("scale %d: %s: %s, want it run and conforming", k, r.Check.Text(), r.Report())
				}
			}
		}
	}
}
