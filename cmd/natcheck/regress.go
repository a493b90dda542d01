package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/natcheck/natcheck/regress"
	"github.com/olekukonko/tablewriter"
	"github.com/spf13/cobra"
)

func newRegressCmd() *cobra.Command {
	var update bool
	cmd := &cobra.Command{
		Use:   "regress [EXPECTATION.json...]",
		Short: "Replay recorded captures and compare each outcome with its expectation",
		Long: `regress replays each capture named by an expectation file with the
configuration the file gives, and compares the outcome (packet counts, drops
by reason, the verdict line of every instance) with the one recorded there.
Without arguments it runs captures/expected/*.json. With --update it records
the current outcomes instead (review the diff before committing them).`,
		Example: `  natcheck regress
  natcheck regress captures/expected/anyconnect-8-ports.json
  natcheck regress --update captures/expected/*.json`,
		RunE: func(cmd *cobra.Command, paths []string) error {
			if len(paths) == 0 {
				paths, _ = filepath.Glob(filepath.Join("captures", "expected", "*.json"))
				if len(paths) == 0 {
					return usageErr(fmt.Errorf("no expectation files in captures/expected (name them as arguments)"))
				}
			}
			out := cmd.OutOrStdout()
			t := tablewriter.NewWriter(out)
			t.Header([]string{"expectation", "capture", "result"})
			failed := 0
			var details []string
			for _, p := range paths {
				e, err := regress.Load(p)
				if err != nil {
					return inputErr(err)
				}
				result := "as expected"
				switch {
				case update:
					got, err := e.Run()
					if err != nil {
						return classifyRun(err)
					}
					if err := e.Record(got); err != nil {
						return outputErr(err)
					}
					result = "recorded"
				default:
					diff, err := e.Check()
					if err != nil && !errors.Is(err, regress.ErrMismatch) {
						return classifyRun(err)
					}
					if len(diff) > 0 {
						failed++
						result = fmt.Sprintf("CHANGED (%d)", len(diff))
						for _, d := range diff {
							details = append(details, filepath.Base(p)+": "+d)
						}
					}
				}
				if err := t.Append([]string{filepath.Base(p), e.Capture, result}); err != nil {
					return outputErr(err)
				}
			}
			if err := t.Render(); err != nil {
				return outputErr(err)
			}
			for _, d := range details {
				fmt.Fprintln(out, "  "+d)
			}
			if failed > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("regress: %d of %d captures changed", failed, len(paths))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&update, "update", false, "record the current outcomes as the expectations")
	return cmd
}
