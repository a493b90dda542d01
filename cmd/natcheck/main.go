// Command natcheck checks, with evidence, whether a NAT behaves as its
// documentation says: it replays captures through the reference SNAT engine,
// prints allocation plans, and verifies conformance.
//
// The commands are thin: each parses flags and calls the packages that do
// the work (reference, replay, specs). Exit codes are documented in
// README.md: 0 success, 1 a check failed (--fail-on, verify), 2 bad usage
// or configuration, 3 bad input (an unreadable capture).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/natcheck/natcheck/reference"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // a check failed: --fail-on triggered, a spec did not conform
	exitUsage  = 2 // bad flags or configuration
	exitInput  = 3 // bad input: a capture that cannot be read
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error { return &exitError{exitUsage, err} }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "natcheck",
		Short: "Check, with evidence, whether a NAT behaves as documented",
		Long: `natcheck checks whether a source NAT behaves as documented (Azure Load
Balancer outbound SNAT, profile azure-lb; behaviours B1–B16 and conventions
C1–C9 of SEMANTICS.md). It replays captures through a reference engine,
prints allocation plans and runs conformance checks.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	root.AddCommand(newVersionCmd(), newPlanCmd(), newDemoCmd())
	root.AddCommand(extraCommands()...)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print natcheck's version",
		Example: "  natcheck version",
		Args:    cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "natcheck %s (profile %s)\n", version, reference.AzureLB().Name)
		},
	}
}

// exitCode maps a command's error to the process's exit code: the code
// an exitError carries, or exitUsage for cobra's own errors (a missing
// argument, an unknown command).
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitUsage
}

func main() {
	err := newRootCmd().Execute()
	if err != nil {
		fmt.Fprintln(os.Stderr, "natcheck:", err)
	}
	os.Exit(exitCode(err))
}
