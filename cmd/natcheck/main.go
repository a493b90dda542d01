// Command natcheck checks, with evidence, whether a NAT behaves as its
// documentation says: it replays captures through the reference SNAT engine,
// prints allocation plans, verifies conformance and
// explains each behaviour it checks.
//
// The commands are thin: each parses flags and calls the packages that do
// the work (reference, replay, specs). Every command exits with one of the
// codes of exitCodes, the table README.md shows.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/natcheck/natcheck/reference"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes: the same for every command.
const (
	exitOK          = 0
	exitFailed      = 1   // a check failed: --fail-on triggered, a behaviour did not conform, a regression changed
	exitUsage       = 2   // bad flags, arguments or configuration (one the documents reject)
	exitInput       = 3   // bad input: a capture or expectation file that cannot be read
	exitOutput      = 4   // an output could not be written: a missing folder, a full disk, a closed standard output
	exitInterrupted = 130 // interrupted (Ctrl-C): 128 + SIGINT, as shells report it
)

// exitCodes is the exit-code table, in the words README.md uses.
var exitCodes = []struct {
	Code    int
	Meaning string
}{
	{exitOK, "success"},
	{exitFailed, "a check failed: `--fail-on` triggered (replay), a behaviour does not conform or a check could not be run without `--allow-unchecked` (verify), a capture's outcome changed (regress, merge), two outside views differ (diff)"},
	{exitUsage, "bad usage: an unknown flag or command, a missing argument, a value out of range, flags that give a configuration the documents reject (B2–B4, B12, …), an output that would overwrite an input"},
	{exitInput, "bad input: a capture that is missing, empty, not a capture, or damaged (the report of every packet before the fault is printed); an expectation file, report or outside view (regress, merge, diff) that cannot be read or run"},
	{exitOutput, "an output could not be written: a missing folder, no permission, a full disk, a closed standard output"},
	{exitInterrupted, "interrupted by Ctrl-C (replay): the report so far is printed, marked partial, and the files end on a whole event line and pcapng block; a second Ctrl-C quits at once"},
}

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
	// hint asks for a pointer to --help after the message (a usage error
	// of cobra's kind: unknown flag, missing argument).
	hint bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error  { return &exitError{code: exitUsage, err: err} }
func inputErr(err error) error  { return &exitError{code: exitInput, err: err} }
func outputErr(err error) error { return &exitError{code: exitOutput, err: err} }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "natcheck",
		Short: "Check, with evidence, whether a NAT behaves as documented",
		Long: `natcheck checks whether a source NAT behaves as documented (Azure Load
Balancer outbound SNAT, profile azure-lb; behaviours B1–B16 and conventions
C1–C9). It replays captures through a reference engine, prints allocation
plans and runs conformance checks. "natcheck explain" says what each
behaviour ID means.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate(versionLine())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err, hint: true}
	})
	root.AddCommand(newVersionCmd(), newPlanCmd(), newDemoCmd())
	root.AddCommand(extraCommands()...)
	for _, c := range root.Commands() {
		wrapArgs(c)
		if c.Flags().Lookup("profile") != nil {
			completeValues(c, "profile", reference.ProfileNames()...)
		}
	}
	return root
}

// wrapArgs makes c's argument errors usage errors with a pointer to --help.
func wrapArgs(c *cobra.Command) {
	if c.Args == nil {
		return
	}
	args := c.Args
	c.Args = func(cmd *cobra.Command, a []string) error {
		if err := args(cmd, a); err != nil {
			return &exitError{code: exitUsage, err: err, hint: true}
		}
		return nil
	}
}

func versionLine() string {
	return fmt.Sprintf("natcheck %s (profile %s)\n", version, reference.AzureLB().Name)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print natcheck's version (also: natcheck --version)",
		Example: "  natcheck version\n  natcheck --version",
		Args:    cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprint(cmd.OutOrStdout(), versionLine())
		},
	}
}

// exitCode maps a command's error to the process's exit code: the code
// an exitError carries, or exitUsage for cobra's own errors (an unknown
// command).
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

// trackedWriter is standard output: it remembers the first write error, so
// that a report lost to a full disk or a closed pipe is never an exit 0.
type trackedWriter struct {
	w   io.Writer
	err error
}

func (t *trackedWriter) Write(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n, err := t.w.Write(p)
	if err != nil {
		t.err = err
	}
	return n, err
}

// execute runs natcheck with args and returns its exit code; it writes
// what the commands print to stdout and errors to stderr.
func execute(args []string, stdout, stderr io.Writer) int {
	out := &trackedWriter{w: stdout}
	root := newRootCmd()
	root.SetOut(out)
	root.SetErr(stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	code := exitCode(err)
	if out.err != nil && code != exitInterrupted {
		// The report is lost: that outweighs what it said.
		if err == nil || code != exitOutput {
			err = fmt.Errorf("write standard output: %w", out.err)
		}
		code = exitOutput
	}
	if err != nil {
		fmt.Fprintln(stderr, "natcheck:", err)
		var ee *exitError
		if code == exitUsage && (!errors.As(err, &ee) || ee.hint) {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return code
}

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}
