// Package livecheck runs the conformance checks of package specs against
// live devices several at once. A live device waits on the wall clock
// (scaled timers still take seconds), and each check opens its own
// topology, so checks of one device run side by side; the matrix is the
// same as specs.Verify's, rows and results in the checks' order whatever
// order they finished in. A check that ends in a harness error (the
// machine woke the harness too late for a boundary, say) is run again, up
// to Options.Attempts times: a harness error is never a verdict, and a
// busy machine should not leave a row unjudged when a second run can
// judge it.
//
// It imports specs, reference and device/pace (for ErrBudget).
package livecheck

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/natcheck/natcheck/device/pace"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// Options are how checks are run.
type Options struct {
	// Parallel is how many checks run at once (at least 1).
	Parallel int
	// Attempts is how many times a check that ends in a harness error is
	// run in all (at least 1).
	Attempts int
	// Retry, if not nil, says whether a harness error is worth another
	// attempt (a wait beyond the time budget is not); nil retries every
	// one.
	Retry func(error) bool
	// OnResult, if not nil, is called after each check, from one goroutine
	// at a time, in completion order.
	OnResult func(specs.Result)
	// LongestFirst starts the checks in decreasing specs.Length (checks of
	// one length in their order), so that a run under a deadline ends
	// sooner, and what its deadline cuts is the short checks that start
	// last, not a long one that queued.
	LongestFirst bool
	// Scale, when not 0, is the device's time scale K (profile time runs K
	// times faster than the wall clock): a check whose specs.Length / K
	// from the moment it would start ends after ctx's deadline is not
	// started, and reads a harness error matched by pace.ErrBudget, as a
	// check refused by the device's own clock does. Its waits alone take
	// that long, so it could not end in time; started, it would hold a
	// place, and the run, until the deadline refused one of its waits.
	Scale int
}

// Verify runs every check of checks whose ID is in only (all when only is
// empty) against impl and returns the matrix of one implementation.
func Verify(ctx context.Context, impl specs.Impl, checks []specs.Check, only []reference.Behavior, opt Options) (specs.Matrix, error) {
	var selected []specs.Check
	for _, c := range checks {
		if len(only) == 0 || slices.Contains(only, c.ID) {
			selected = append(selected, c)
		}
	}
	results := make([]specs.Result, len(selected))
	order := make([]int, len(selected))
	for i := range order {
		order[i] = i
	}
	length := make([]time.Duration, len(selected))
	if opt.LongestFirst || opt.Scale > 0 {
		for i, c := range selected {
			length[i] = specs.Length(impl, c)
		}
	}
	if opt.LongestFirst {
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(length[b], length[a]) })
	}
	sem := make(chan struct{}, max(opt.Parallel, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, i := range order {
		c := selected[i]
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, long := tooLong(ctx, impl, c, length[i], opt.Scale)
			if !long {
				r = run(ctx, impl, c, opt)
			}
			results[i] = r
			if opt.OnResult != nil {
				mu.Lock()
				opt.OnResult(r)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return specs.Matrix{}, fmt.Errorf("verify %s: %w", impl.Name, err)
	}
	m := specs.Matrix{Impls: []string{impl.Name}}
	rows := map[reference.Behavior]*specs.Row{}
	for _, r := range results {
		row, ok := rows[r.Check.ID]
		if !ok {
			row = &specs.Row{ID: r.Check.ID, Cells: make([]specs.Cell, 1)}
			rows[r.Check.ID] = row
		}
		row.Cells[0].Results = append(row.Cells[0].Results, r)
		row.Cells[0].Status = max(row.Cells[0].Status, r.Status)
	}
	for _, b := range reference.Behaviors() {
		if r, ok := rows[b]; ok {
			m.Rows = append(m.Rows, *r)
		}
	}
	return m, nil
}

// tooLong reports whether check c, whose waits take length of profile
// time, would end after ctx's deadline at time scale k (not 0), and if so
// returns its result: a harness error matched by pace.ErrBudget.
func tooLong(ctx context.Context, impl specs.Impl, c specs.Check, length time.Duration, k int) (specs.Result, bool) {
	dl, ok := ctx.Deadline()
	if k <= 0 || !ok || !impl.Runs(c) {
		return specs.Result{}, false // not run: it reads a status of its own
	}
	wall := length / time.Duration(k)
	if left := time.Until(dl); wall > left {
		err := fmt.Errorf("its waits take %v of profile time, %v of wall clock at scale %d, and %v is left: %w", length, wall.Round(time.Second), k, left.Round(time.Second), pace.ErrBudget)
		return specs.Result{Check: c, Impl: impl.Name, Status: specs.HarnessError, Message: "harness: " + err.Error(), Err: err, Attempts: 1}, true
	}
	return specs.Result{}, false
}

// run runs c until it ends in something other than a harness error worth
// retrying, at most opt.Attempts times.
func run(ctx context.Context, impl specs.Impl, c specs.Check, opt Options) specs.Result {
	var retried []string
	for attempt := 1; ; attempt++ {
		r := specs.Run(ctx, impl, c)
		r.Attempts, r.Retried = attempt, retried
		if r.Status != specs.HarnessError || attempt >= opt.Attempts || ctx.Err() != nil || (opt.Retry != nil && !opt.Retry(r.Err)) {
			return r
		}
		retried = append(retried, r.Message)
	}
}
