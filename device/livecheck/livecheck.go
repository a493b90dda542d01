// Package livecheck runs the conformance checks of package specs against
// live devices several at once. A live device waits on the wall clock
// (scaled timers still take seconds), and each check opens its own
// topology, so checks of one device run side by side; the matrix is the
// same as specs.Verify's, rows and results in the checks' order whatever
// order they finished in.
//
// It imports specs and reference only.
package livecheck

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// Verify runs every check of checks whose ID is in only (all when only is
// empty) against impl, at most parallel at a time, and returns the matrix
// of one implementation. onResult, if not nil, is called after each check,
// from one goroutine at a time, in completion order.
func Verify(ctx context.Context, impl specs.Impl, checks []specs.Check, only []reference.Behavior, parallel int, onResult func(specs.Result)) (specs.Matrix, error) {
	var selected []specs.Check
	for _, c := range checks {
		if len(only) == 0 || slices.Contains(only, c.ID) {
			selected = append(selected, c)
		}
	}
	results := make([]specs.Result, len(selected))
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, c := range selected {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			r := specs.Run(ctx, impl, c)
			results[i] = r
			if onResult != nil {
				mu.Lock()
				onResult(r)
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
