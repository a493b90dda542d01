package main

import (
	"fmt"
	"os"
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
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Run the conformance checks and print the behaviour × implementation matrix",
		Long: `verify runs every conformance check of profile azure-lb (B1–B16, C1–C7 of
SEMANTICS.md) against each implementation and prints a matrix: per behaviour,
conforms, deviates (a documented difference, or a capability the
implementation lacks) or fails, followed by the evidence — the packets sent
and observed, with times, and the failed assertion — of every check that did
not conform. C items run on the reference only.

Implementations: reference (the in-process engine, virtual time), or a
negative-control mutant (mutant:rst-hold-14s, mutant:udp-full-tuple, …) to
see what failing looks like. Exit status 1 when any behaviour fails.`,
		Example: `  natcheck verify
  natcheck verify --behaviors B9,B10 --markdown build/matrix.md
  natcheck verify --impl reference,mutant:rst-hold-14s --junit build/verify-junit.xml`,
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
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&impls, "impl", []string{"reference"}, "implementations to check, comma-separated: reference, mutant:NAME")
	cmd.Flags().StringSliceVar(&behaviors, "behaviors", nil, "only these behaviour IDs, comma-separated (B9,B10,C3); all when empty")
	cmd.Flags().StringVar(&markdown, "markdown", "", "also write the matrix and evidence as Markdown to `FILE`")
	cmd.Flags().StringVar(&junit, "junit", "", "also write every check as a JUnit test case to `FILE`")
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
