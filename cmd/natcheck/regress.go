package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/natcheck/natcheck/regress"
	"github.com/olekukonko/tablewriter"
	"github.com/spf13/cobra"
)

func newRegressCmd() *cobra.Command {
	var (
		update           bool
		shard            string
		asJSON           bool
		junit, markdown  string
		expectationGlobs = filepath.Join("captures", "expected", "*.json")
	)
	cmd := &cobra.Command{
		Use:   "regress [EXPECTATION.json...]",
		Short: "Replay recorded captures and compare each outcome with its expectation",
		Long: `regress replays each capture named by an expectation file with the
configuration the file gives, and compares the outcome with the one recorded
there: packet counts, drops by reason, per instance and protocol the flows,
the releases by reason (FIN B10, RST B11, idle B12, reclaimed B16) and the
ports in use at the end, the verdict line of every instance, and the events
and outside view (as SHA-256 digests with a fingerprint per record: a change
is shown at its first differing packet or event). Each difference is one
line: capture, packet, field, expected and got, behaviour ID.

Without arguments it runs captures/expected/*.json. With --update it records
the current outcomes instead: the only way an expectation file changes
(review the diff before committing it).

--shard i/n runs the i-th of n parts of the corpus (0 ≤ i < n): every file is
in exactly one part, chosen from the paths and capture sizes alone, so n CI
machines each run one part with no coordination; "natcheck merge" joins
their --json reports into the report of the whole corpus.`,
		Example: `  natcheck regress
  natcheck regress captures/expected/anyconnect-8-ports.json
  natcheck regress --update captures/expected/*.json
  natcheck regress --shard 2/4 --json > shard-2.json
  natcheck regress --junit regress.xml --markdown "$GITHUB_STEP_SUMMARY"`,
		RunE: func(cmd *cobra.Command, paths []string) error {
			var sh *regress.Shard
			if shard != "" {
				s, err := regress.ParseShard(shard)
				if err != nil {
					return usageErr(err)
				}
				sh = &s
			}
			if len(paths) == 0 {
				paths, _ = filepath.Glob(expectationGlobs)
				if len(paths) == 0 {
					return usageErr(fmt.Errorf("no expectation files in %s (name them as arguments)", filepath.Dir(expectationGlobs)))
				}
			}
			if err := checkOutputs(paths, outputPath{"--junit", junit}, outputPath{"--markdown", markdown}); err != nil {
				return err
			}
			rep := regress.RunCorpus(paths, sh, update, nil)
			out := cmd.OutOrStdout()
			var err error
			if asJSON {
				err = rep.WriteJSON(out)
			} else {
				err = writeRegressText(out, rep)
			}
			if err != nil {
				return outputErr(err)
			}
			if err := writeRegressFiles(rep, junit, markdown); err != nil {
				return err
			}
			return regressExit(rep)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&update, "update", false, "record the current outcomes as the expectations")
	f.StringVar(&shard, "shard", "", "run part i of n of the corpus (i/n, 0 ≤ i < n)")
	f.BoolVar(&asJSON, "json", false, "print the report as one JSON document (for natcheck merge)")
	f.StringVar(&junit, "junit", "", "also write the report as JUnit XML to this file (a test case per capture)")
	f.StringVar(&markdown, "markdown", "", "also write a Markdown summary to this file")
	return cmd
}

// writeRegressText writes the table of captures and, below it, every
// difference as a line naming its capture.
func writeRegressText(out io.Writer, rep regress.Report) error {
	if rep.Shard != nil {
		fmt.Fprintf(out, "shard %s: %d of the corpus's %d expectation files\n", rep.Shard, len(rep.Results), rep.Corpus)
	}
	t := tablewriter.NewWriter(out)
	t.Header([]string{"expectation", "capture", "result"})
	var details []string
	for _, r := range rep.Results {
		result := "as expected"
		switch r.Status {
		case regress.StatusRecorded:
			result = "recorded"
		case regress.StatusChanged:
			result = fmt.Sprintf("CHANGED (%d)", len(r.Differences))
			for _, d := range r.Differences {
				details = append(details, fmt.Sprintf("%s (%s): %s", filepath.Base(r.Expectation), r.Capture, d))
			}
		case regress.StatusError:
			result = "ERROR"
			details = append(details, fmt.Sprintf("%s: %s", filepath.Base(r.Expectation), r.Error))
		}
		if err := t.Append([]string{filepath.Base(r.Expectation), r.Capture, result}); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	for _, d := range details {
		fmt.Fprintln(out, "  "+d)
	}
	return nil
}

// writeRegressFiles writes the JUnit and Markdown renderings when asked.
func writeRegressFiles(rep regress.Report, junit, markdown string) error {
	for _, o := range []struct {
		path  string
		write func(io.Writer) error
	}{{junit, rep.WriteJUnit}, {markdown, rep.WriteMarkdown}} {
		if o.path == "" {
			continue
		}
		f, err := os.Create(o.path)
		if err != nil {
			return outputErr(err)
		}
		werr := o.write(f)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return outputErr(fmt.Errorf("write %s: %w", o.path, werr))
		}
	}
	return nil
}

// regressExit is the exit of a regress run: bad input when a capture or
// expectation could not be read, a failed check when an outcome changed.
func regressExit(rep regress.Report) error {
	s := rep.Summary
	if s.Errors > 0 {
		return &exitError{code: exitInput, err: fmt.Errorf("regress: %d of %d expectation files could not be run", s.Errors, s.Captures)}
	}
	if s.Changed > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("regress: %d of %d captures changed", s.Changed, s.Captures)}
	}
	return nil
}
