package main

//go:generate sh -c "go run . explain --markdown > ../../docs/behaviours.md"

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// newExplainCmd is "natcheck explain": the behaviour catalogue
// (reference.Catalogue), with the checks that verify each item.
func newExplainCmd() *cobra.Command {
	var markdown, all bool
	cmd := &cobra.Command{
		Use:   "explain [ID|PROFILE...]",
		Short: "Say what behaviour IDs (B9, C3, L4, …) mean, and where natcheck checks them",
		Long: `explain prints natcheck's catalogue of behaviours: for each ID its title,
its profile, what a conforming NAT does, and the conformance checks (natcheck
verify, the Ginkgo specs) that test it. Reports, events, pcapng comments and
the verify matrix cite these IDs.

Without arguments it lists every ID with its title; with IDs (any case) or
profile names (azure-lb, linux, azure-natgw, rfc) it prints them in full.
--markdown writes the whole catalogue as docs/behaviours.md is made.`,
		Example: `  natcheck explain
  natcheck explain B9 b11 C5
  natcheck explain linux
  natcheck explain --markdown > docs/behaviours.md`,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if markdown {
				if len(args) > 0 {
					return usageErr(fmt.Errorf("explain --markdown writes the whole catalogue; give no IDs"))
				}
				return writeCatalogueMarkdown(out)
			}
			if len(args) == 0 && !all {
				writeCatalogueIndex(out)
				return nil
			}
			var list []reference.About
			if all {
				list = reference.Catalogue()
			}
			for _, a := range args {
				got, err := lookupAbouts(a)
				if err != nil {
					return usageErr(err)
				}
				list = append(list, got...)
			}
			for i, a := range list {
				if i > 0 {
					fmt.Fprintln(out)
				}
				writeAbout(out, a)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "write the whole catalogue as Markdown (docs/behaviours.md)")
	cmd.Flags().BoolVar(&all, "all", false, "print every behaviour in full")
	cmd.ValidArgsFunction = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return behaviourIDs(true), cobra.ShellCompDirectiveNoFileComp
	}
	return cmd
}

// behaviourIDs lists every ID of the catalogue, and with profiles the
// profile names too (for completion).
func behaviourIDs(profiles bool) []string {
	var out []string
	for _, a := range reference.Catalogue() {
		out = append(out, a.ID.String()+"\t"+a.Title)
	}
	if profiles {
		out = append(out, reference.ProfileNames()...)
	}
	return out
}

// lookupAbouts returns the entry of an ID, or every entry of a profile.
func lookupAbouts(arg string) ([]reference.About, error) {
	if b, err := reference.ParseBehavior(arg); err == nil {
		a, _ := b.About()
		return []reference.About{a}, nil
	}
	var out []reference.About
	for _, b := range reference.BehaviorsOf(strings.ToLower(arg)) {
		a, _ := b.About()
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("explain %s: not a behaviour ID (B1–B16, C1–C9, L1–L11, G1–G8, R1–R7) nor a profile (%s)", arg, strings.Join(reference.ProfileNames(), ", "))
	}
	return out, nil
}

// verifyArgs are the verify flags that run b's checks.
func verifyArgs(b reference.Behavior) string {
	if p := b.Profile(); p != reference.NameAzureLB {
		return "--profile " + p + " --behaviors " + b.String()
	}
	return "--behaviors " + b.String()
}

// checksOf returns the conformance checks that cite b, as their titles:
// those of b's profile (specs.ChecksFor).
func checksOf(b reference.Behavior) []string {
	var out []string
	checks, _ := specs.ChecksFor(b.Profile())
	for _, c := range checks {
		if c.ID == b {
			out = append(out, c.Title)
		}
	}
	return out
}

func kindOf(a reference.About) string {
	if a.Convention {
		return "engine convention (no source says; natcheck's choice)"
	}
	return "documented behaviour"
}

// writeAbout writes one entry in full, for a terminal.
func writeAbout(w io.Writer, a reference.About) {
	fmt.Fprintf(w, "%s  %s\n", a.ID, a.Title)
	fmt.Fprintf(w, "  profile %s, %s\n\n", a.Profile, kindOf(a))
	for _, line := range wrap(a.Text, 76) {
		fmt.Fprintln(w, "  "+line)
	}
	cs := checksOf(a.ID)
	if len(cs) == 0 {
		fmt.Fprintf(w, "\n  checked by: no conformance check yet\n")
		return
	}
	fmt.Fprintf(w, "\n  checked by (natcheck verify %s):\n", verifyArgs(a.ID))
	for _, c := range cs {
		fmt.Fprintf(w, "    - %s\n", c)
	}
}

// writeCatalogueIndex lists every ID with its title, by profile.
func writeCatalogueIndex(w io.Writer) {
	prof := ""
	for _, a := range reference.Catalogue() {
		if a.Profile != prof {
			if prof != "" {
				fmt.Fprintln(w)
			}
			prof = a.Profile
			fmt.Fprintf(w, "profile %s\n", prof)
		}
		fmt.Fprintf(w, "  %-4s %s\n", a.ID.String(), a.Title)
	}
	fmt.Fprintf(w, "\n'natcheck explain ID' prints an item in full, with the checks that test it.\n")
}

// writeCatalogueMarkdown writes the whole catalogue as docs/behaviours.md.
func writeCatalogueMarkdown(w io.Writer) error {
	fmt.Fprint(w, `# Behaviours natcheck checks

<!-- Generated by "natcheck explain --markdown" from reference/catalogue.go
(go generate ./cmd/natcheck); a test fails when the two differ. Do not edit. -->

Every report, event, pcapng comment and verify matrix cites these IDs.
B items are documented behaviour of Azure Load Balancer outbound SNAT
(profile azure-lb); C items are conventions the engine had to choose where
no source says; L, G and R items belong to the linux, azure-natgw and rfc
profiles. Numbers are profile defaults, not constants.
`)
	prof := ""
	for _, a := range reference.Catalogue() {
		if a.Profile != prof {
			prof = a.Profile
			fmt.Fprintf(w, "\n## Profile `%s`\n", prof)
		}
		fmt.Fprintf(w, "\n### %s: %s\n\n", a.ID, a.Title)
		if a.Convention {
			fmt.Fprintf(w, "*Engine convention.* ")
		}
		fmt.Fprintln(w, a.Text)
		cs := checksOf(a.ID)
		if len(cs) == 0 {
			fmt.Fprintln(w, "\nChecked by: no conformance check yet.")
			continue
		}
		fmt.Fprintf(w, "\nChecked by (`natcheck verify %s`):\n\n", verifyArgs(a.ID))
		for _, c := range cs {
			fmt.Fprintf(w, "- %s\n", c)
		}
	}
	return nil
}

// wrap splits text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
