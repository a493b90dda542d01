package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/natcheck/natcheck/regress"
	"github.com/natcheck/natcheck/scenario"
	"github.com/olekukonko/tablewriter"
	"github.com/spf13/cobra"
)

func newGenCmd() *cobra.Command {
	var (
		list, all   bool
		out         string
		expectation string
	)
	cmd := &cobra.Command{
		Use:   "gen SCENARIO -o FILE",
		Short: "Write a small capture that shows one behaviour of a profile",
		Long: `gen writes a scenario's capture: a small pcap whose packets each have their
own time, made to show one behaviour of SEMANTICS.md (--list names them all,
with the behaviours they show). Each scenario is meant for one replay setup,
which gen prints as the natcheck replay command to run.

--expectation PATH also writes a new expectation file for natcheck regress:
the capture, the scenario, its setup and the outcome of replaying it now. It
refuses to replace an existing file (natcheck regress --update is the only
way an expectation changes).`,
		Example: `  natcheck gen --list
  natcheck gen azure-lb-rst-15s -o rst.pcap
  natcheck gen --all -o captures/scenarios
  natcheck gen azure-lb-idle-30m -o captures/scenarios/azure-lb-idle-30m.pcap \
      --expectation captures/expected/scenario-azure-lb-idle-30m.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			if list {
				t := tablewriter.NewWriter(w)
				t.Header([]string{"scenario", "profile", "shows", "packets", "what happens"})
				for _, s := range scenario.All() {
					var ids []string
					for _, b := range s.Behaviors {
						ids = append(ids, b.String())
					}
					if err := t.Append([]string{s.Name, s.Profile, strings.Join(ids, " "), fmt.Sprint(len(s.Build().Packets)), s.Title}); err != nil {
						return outputErr(err)
					}
				}
				if err := t.Render(); err != nil {
					return outputErr(err)
				}
				return nil
			}
			if all {
				if len(args) != 0 || out == "" || expectation != "" {
					return usageErr(fmt.Errorf("gen --all: give only the folder to write every scenario's capture in (-o DIR)"))
				}
				for _, s := range scenario.All() {
					p := filepath.Join(out, s.Name+".pcap")
					if err := writeScenario(s, p); err != nil {
						return err
					}
					fmt.Fprintf(w, "wrote %s: %d packets\n", p, len(s.Build().Packets))
				}
				return nil
			}
			if len(args) != 1 || out == "" {
				return usageErr(fmt.Errorf("gen: name a scenario and an output file (natcheck gen SCENARIO -o FILE; natcheck gen --list)"))
			}
			s, ok := scenario.Lookup(args[0])
			if !ok {
				return usageErr(fmt.Errorf("gen: no scenario %q (natcheck gen --list names them)", args[0]))
			}
			if expectation != "" {
				if _, err := os.Stat(expectation); err == nil {
					return usageErr(fmt.Errorf("gen: %s exists: natcheck regress --update %s records a new outcome", expectation, expectation))
				} else if !errors.Is(err, fs.ErrNotExist) {
					return usageErr(err)
				}
			}
			if err := writeScenario(s, out); err != nil {
				return err
			}
			fmt.Fprintf(w, "wrote %s: %d packets, scenario %s\n  %s\nreplay it with:\n  natcheck replay %s %s\n",
				out, len(s.Build().Packets), s.Name, s.Title, strings.Join(s.Setup.Args(), " "), out)
			if expectation == "" {
				return nil
			}
			rel, err := filepath.Rel(filepath.Dir(expectation), out)
			if err != nil {
				return usageErr(err)
			}
			e := regress.New(expectation, filepath.ToSlash(rel), s.Name, s.Setup)
			got, err := e.Run()
			if err != nil {
				return &exitError{code: exitInput, err: err}
			}
			if err := e.Record(got); err != nil {
				return outputErr(err)
			}
			fmt.Fprintf(w, "wrote %s: natcheck regress %s checks it\n", expectation, expectation)
			return nil
		},
	}
	cmd.Flags().BoolVar(&list, "list", false, "list the scenarios")
	cmd.Flags().BoolVar(&all, "all", false, "write every scenario's capture, as NAME.pcap in the folder -o names")
	cmd.Flags().StringVarP(&out, "output", "o", "", "the capture file to write (pcap)")
	cmd.Flags().StringVar(&expectation, "expectation", "", "also write a new expectation file for natcheck regress")
	return cmd
}

func writeScenario(s *scenario.Scenario, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return outputErr(fmt.Errorf("gen: %w", err))
	}
	bw := bufio.NewWriter(f)
	err = s.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("gen: write %s: %w", path, err)
	}
	return nil
}
