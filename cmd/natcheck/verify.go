package main

import (
	"fmt"
	"io"
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
	var implFlag, behaviors []string
	var markdown, junit string
	var list, allowUnchecked bool
	var pf profileFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Run the conformance checks and print the behaviour × implementation matrix",
		Long: `verify runs every conformance check of a profile (--profile: azure-lb, the
default, B1–B16 and C1–C7 of SEMANTICS.md; linux, L1–L11; azure-natgw,
G1–G8; rfc, R1–R7) against each implementation and prints a matrix: per behaviour,
conforms, deviates (a difference the implementation's profile documents),
fails, or not checked (lacks X: the implementation lacks a capability a
check needs, so that check was not run), followed by the evidence — the
packets sent and observed, with times, and the failed assertion — of every
check that did not conform, and the list of checks not run. C items run on
the reference only.

Implementations: reference (the in-process engine, virtual time, profile
azure-lb), reference-linux, reference-azure-natgw and reference-rfc (the
engine in another profile; the one of --profile takes its parameters:
--sysctl, --filtering, …), model-linux, model-azure-natgw and model-rfc
(slow models written apart from the engine, from SEMANTICS.md), or a
negative-control mutant (mutant:rst-hold-14s, mutant:udp-full-tuple, …) to
see what failing looks like; --list names them all. The default is the
engine of --profile. The azure-lb checks against another profile's engine
(--impl reference-linux) show the differences SEMANTICS.md lists as
"deviates", each with its reason. A cell reads
"conforms: 6 checks" or "fails: 2 of 6 checks fail". With more than three
implementations the matrix has one row per implementation instead, naming
the behaviours that deviate, fail or were not checked. "natcheck explain ID"
says what a behaviour means. Exit status 1 when any behaviour fails, or when
any check was not run (unless --allow-unchecked).`,
		Example: `  natcheck verify
  natcheck verify --list
  natcheck verify --behaviors B9,B10 --markdown build/matrix.md
  natcheck verify --impl reference,mutant:rst-hold-14s --junit build/verify-junit.xml
  natcheck verify --impl mutant:rst-hold-14s --behaviors B1 --allow-unchecked
  natcheck verify --profile linux --sysctl-dir /proc/sys/net/netfilter
  natcheck verify --impl reference,reference-linux --allow-unchecked
  natcheck verify --profile rfc --filtering endpoint-independent --behaviors R2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if list {
				return writeImplList(cmd.OutOrStdout())
			}
			if err := checkOutputs(nil, outputPath{"--markdown", markdown}, outputPath{"--junit", junit}); err != nil {
				return err
			}
			prof, err := pf.profile(cmd)
			if err != nil {
				return usageErr(fmt.Errorf("verify: %w", err))
			}
			checks, err := specs.ChecksFor(prof.Name)
			if err != nil {
				return usageErr(fmt.Errorf("verify: %w", err))
			}
			names := implFlag
			if !cmd.Flags().Changed("impl") {
				names = []string{engineName(prof.Name)}
			}
			var impls []specs.Impl
			for _, name := range names {
				im, err := implByName(strings.TrimSpace(name), prof)
				if err != nil {
					return usageErr(fmt.Errorf("verify: %w", err))
				}
				impls = append(impls, im)
			}
			var only specs.Filter
			for _, s := range behaviors {
				b, err := reference.ParseBehavior(strings.TrimSpace(s))
				if err != nil {
					return usageErr(fmt.Errorf("verify: %w", err))
				}
				only = append(only, b)
			}
			for _, b := range only {
				if b.Profile() != prof.Name {
					return usageErr(fmt.Errorf("verify: --behaviors %v is an item of profile %s; --profile is %s", b, b.Profile(), prof.Name))
				}
			}
			m, err := specs.Verify(cmd.Context(), impls, checks, only, nil)
			if err != nil {
				return err
			}
			if err := m.WriteTerminal(cmd.OutOrStdout()); err != nil {
				return outputErr(err)
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
					return outputErr(err)
				}
			}
			if !m.Conforms() {
				return &exitError{code: exitFailed, err: fmt.Errorf("verify: %d of %d checks did not conform", len(m.Failing()), m.Checks())}
			}
			if un := m.Unchecked(); len(un) > 0 && !allowUnchecked {
				var lacks []string
				for _, r := range un {
					if !slices.Contains(lacks, r.Message) {
						lacks = append(lacks, r.Message)
					}
				}
				return &exitError{code: exitFailed, err: fmt.Errorf("verify: %s not checked (%s); --allow-unchecked accepts that", plural(uint64(len(un)), "check"), strings.Join(lacks, ", "))}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&implFlag, "impl", []string{"reference"}, "implementations to check, comma-separated: reference, reference-PROFILE, model-PROFILE, mutant:NAME (default: the engine of --profile)")
	pf.register(cmd)
	cmd.Flags().StringSliceVar(&behaviors, "behaviors", nil, "only these behaviour IDs, comma-separated (B9,B10,C3); all when empty")
	cmd.Flags().StringVar(&markdown, "markdown", "", "also write the matrix and evidence as Markdown to `FILE`")
	cmd.Flags().StringVar(&junit, "junit", "", "also write every check as a JUnit test case to `FILE`")
	cmd.Flags().BoolVar(&allowUnchecked, "allow-unchecked", false, "exit 0 even when checks were not run because an implementation lacks a capability they need")
	cmd.Flags().BoolVar(&list, "list", false, "list the implementations and mutants --impl takes, and exit")
	var names []string
	for _, n := range implNames() {
		names = append(names, n.name+"\t"+n.what)
	}
	completeValues(cmd, "impl", names...)
	completeValues(cmd, "behaviors", behaviourIDs(false)...)
	return cmd
}

type implName struct{ name, what string }

// implNames lists what --impl takes: the reference engine in each
// profile, each profile's model, then every mutant.
func implNames() []implName {
	out := []implName{{"reference", "the reference engine, in virtual time (profile azure-lb)"}}
	for _, p := range reference.ProfileNames()[1:] {
		out = append(out, implName{engineName(p), "the reference engine in profile " + p})
	}
	for _, p := range reference.ProfileNames()[1:] {
		out = append(out, implName{"model-" + p, "the slow model of profile " + p + ", written apart from the engine (internal/" + modelPackage(p) + ")"})
	}
	for _, m := range specs.Mutants() {
		var ids []string
		for _, b := range m.Breaks {
			ids = append(ids, b.String())
		}
		out = append(out, implName{m.Name, m.What + " (breaks " + strings.Join(ids, ", ") + ")"})
	}
	return out
}

// writeImplList writes what --impl takes, one per line.
func writeImplList(w io.Writer) error {
	fmt.Fprintln(w, "implementations (natcheck verify --impl NAME,…):")
	for _, n := range implNames() {
		fmt.Fprintf(w, "  %-34s %s\n", n.name, n.what)
	}
	return nil
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
