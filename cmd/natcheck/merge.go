package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/natcheck/natcheck/regress"
	"github.com/natcheck/natcheck/replay"
	"github.com/spf13/cobra"
)

func newMergeCmd() *cobra.Command {
	var junit, markdown string
	cmd := &cobra.Command{
		Use:   "merge SHARD.json...",
		Short: "Join the --json reports of the shards of one run into one report",
		Long: `merge reads the JSON reports of the n shards of one run and prints the
report of the whole run: the same document, byte for byte, as one unsharded
run gives. Every shard 0 … n-1 of one split must be given exactly once.

The shards of "natcheck regress --shard i/n --json" (parts of a corpus) merge
into the corpus's report; the exit code is the run's: 1 if a capture changed,
3 if one could not be run. The shards of "natcheck replay --shard i/n --json"
(the instances i mod n of one replay) merge into the replay's JSON report.`,
		Example: `  natcheck merge shard-*.json > regress.json
  natcheck merge --junit regress.xml --markdown summary.md shard-*.json
  natcheck merge replay-shard-*.json > report.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if err := checkOutputs(files, outputPath{"--junit", junit}, outputPath{"--markdown", markdown}); err != nil {
				return err
			}
			var reps []regress.Report
			var replays []*replay.Result
			for _, name := range files {
				b, err := os.ReadFile(name)
				if err != nil {
					return &exitError{code: exitInput, err: fmt.Errorf("merge: %w", err)}
				}
				var head struct {
					Schema string `json:"schema"`
				}
				if err := json.Unmarshal(b, &head); err != nil {
					return &exitError{code: exitInput, err: fmt.Errorf("merge: %s: not a JSON report: %w", name, err)}
				}
				switch head.Schema {
				case regress.ReportSchema:
					r, err := regress.ReadReport(name, b)
					if err != nil {
						return &exitError{code: exitInput, err: fmt.Errorf("merge: %w", err)}
					}
					reps = append(reps, r)
				default:
					r, err := replay.ReadJSON(name, bytes.NewReader(b))
					if err != nil {
						return inputErr(fmt.Errorf("merge: %w (want the --json report of natcheck regress --shard or natcheck replay --shard)", err))
					}
					replays = append(replays, r)
				}
			}
			if len(replays) > 0 {
				if len(reps) > 0 {
					return usageErr(fmt.Errorf("merge: give the shards of one run: regress reports and replay reports do not mix"))
				}
				if junit != "" || markdown != "" {
					return usageErr(fmt.Errorf("merge: --junit and --markdown are for regress reports"))
				}
				m, err := replay.MergeResults(replays)
				if err != nil {
					return inputErr(err)
				}
				if err := replay.WriteJSON(cmd.OutOrStdout(), m); err != nil {
					return outputErr(err)
				}
				return nil
			}
			m, err := regress.Merge(reps)
			if err != nil {
				return &exitError{code: exitInput, err: err}
			}
			if err := m.WriteJSON(cmd.OutOrStdout()); err != nil {
				return outputErr(err)
			}
			if err := writeRegressFiles(m, junit, markdown); err != nil {
				return err
			}
			return regressExit(m)
		},
	}
	cmd.Flags().StringVar(&junit, "junit", "", "also write the merged report as JUnit XML to this file")
	cmd.Flags().StringVar(&markdown, "markdown", "", "also write a Markdown summary to this file")
	return cmd
}
