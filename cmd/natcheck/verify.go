package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// newVerifyCmd is "natcheck verify": the conformance checks of package
// specs (the same ones its Ginkgo suite runs) against implementations, as a
// matrix of behaviour × implementation.
func newVerifyCmd() *cobra.Command {
	var impls, behaviors []string
	var markdown, junit string
	var allowUnchecked bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Run the conformance checks and print the behaviour × implementation matrix",
		Long: `verify runs every conformance check of profile azure-lb (B1–B16, C1–C7 of
SEMANTICS.md) against each implementation and prints a matrix: per behaviour,
conforms, deviates (a difference the implementation's profile documents),
fails, or not checked (lacks X: the implementation lacks a capability a
check needs, so that check was not run), followed by the evidence — the
packets sent and observed, with times, and the failed assertion — of every
check that did not conform, and the list of checks not run. C items run on
the reference only.

Implementations: reference (the in-process engine, virtual time), or a
negative-control mutant (mutant:rst-hold-14s, mutant:udp-full-tuple, …) to
see what failing looks like. Exit status 1 when any behaviour fails, or when
any check was not run (unless --allow-unchecked).`,
		Example: `  natcheck verify
  natcheck verify --behaviors B9,B10 --markdown build/matrix.md
  natcheck verify --impl reference,mutant:rst-hold-14s --junit build/verify-junit.xml
  natcheck verify --impl mutant:rst-hold-14s --behaviors B1 --allow-unchecked`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []specs.Impl
			for _, name := range impls {
				im, err := specs.ImplByName(strings.TrimSpace(name))
				if err != nil {
					return usageErr(fmt.Errorf("verify: %w", err))
				}
				list = append(list, im)
			}
			var only specs.Filter
			for _, s := range behaviors {
				b, err := reference.ParseBehavior(strings.TrimSpace(s))
				if err != nil {
					return usageErr(fmt.Errorf("verify: %w", err))
				}
				only = append(only, b)
			}
			m, err := specs.Verify(cmd.Context(), list, specs.Checks(), only, nil)
			if err != nil {
				return err
			}
			if err := m.WriteTerminal(cmd.OutOrStdout()); err != nil {
				return err
			}
			for _, out := range []struct {
				path  string
				write func(*os.File) error
			}{
				{markdown, func(f *os.File) error { return m.WriteMarkdown(f) }},
				{junit, func(f *os.File) error { return m.WriteJUnit(f) }},
			} {
				if out.path == "" {
					continue
				}
				if err := writeFile(out.path, out.write); err != nil {
					return err
				}
			}
			if !m.Conforms() {
				return &exitError{exitFailed, fmt.Errorf("verify: %d check(s) did not conform", len(m.Failing()))}
			}
			if un := m.Unchecked(); len(un) > 0 && !allowUnchecked {
				var lacks []string
				for _, r := range un {
					if !slices.Contains(lacks, r.Message) {
						lacks = append(lacks, r.Message)
					}
				}
				return &exitError{exitFailed, fmt.Errorf("verify: %d check(s) not checked (%s); --allow-unchecked accepts that", len(un), strings.Join(lacks, ", "))}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&impls, "impl", []string{"reference"}, "implementations to check, comma-separated: reference, mutant:NAME")
	cmd.Flags().StringSliceVar(&behaviors, "behaviors", nil, "only these behaviour IDs, comma-separated (B9,B10,C3); all when empty")
	cmd.Flags().StringVar(&markdown, "markdown", "", "also write the matrix and evidence as Markdown to `FILE`")
	cmd.Flags().StringVar(&junit, "junit", "", "also write every check as a JUnit test case to `FILE`")
	cmd.Flags().BoolVar(&allowUnchecked, "allow-unchecked", false, "exit 0 even when checks were not run because an implementation lacks a capability they need")
	return cmd
}

// writeFile creates path and writes it with write.
func writeFile(path string, write func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("verify: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}
