package specs

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/natcheck/natcheck/reference"
)

// Matrix is the conformance matrix: per behaviour ID and implementation,
// the status and the results of its checks.
type Matrix struct {
	// Impls are the implementations' names, the matrix's columns.
	Impls []string
	// Rows are the behaviours checked, in SEMANTICS.md order.
	Rows []Row
}

// Row is one behaviour of the matrix.
type Row struct {
	ID reference.Behavior
	// Cells has one cell per implementation, in Matrix.Impls order.
	Cells []Cell
}

// Cell is one behaviour on one implementation: the worst status of its
// checks, and every check's result.
type Cell struct {
	Status  Status
	Results []Result
}

// Filter selects checks: only those of the IDs listed (all when empty).
type Filter []reference.Behavior

func (f Filter) keep(c Check) bool { return len(f) == 0 || slices.Contains(f, c.ID) }

// Verify runs every check of checks selected by only against every
// implementation and returns the matrix. It stops early only when ctx is
// done (the remaining checks are not run and the error is returned).
// onResult, if not nil, is called after each check.
func Verify(ctx context.Context, impls []Impl, checks []Check, only Filter, onResult func(Result)) (Matrix, error) {
	m := Matrix{}
	for _, im := range impls {
		m.Impls = append(m.Impls, im.Name)
	}
	rows := map[reference.Behavior]*Row{}
	for _, c := range checks {
		if !only.keep(c) {
			continue
		}
		row, ok := rows[c.ID]
		if !ok {
			row = &Row{ID: c.ID, Cells: make([]Cell, len(impls))}
			rows[c.ID] = row
		}
		for i, im := range impls {
			if err := ctx.Err(); err != nil {
				return m, fmt.Errorf("verify: %w", err)
			}
			r := Run(ctx, im, c)
			if onResult != nil {
				onResult(r)
			}
			cell := &row.Cells[i]
			cell.Results = append(cell.Results, r)
			cell.Status = max(cell.Status, r.Status)
		}
	}
	for _, b := range reference.Behaviors() {
		if r, ok := rows[b]; ok {
			m.Rows = append(m.Rows, *r)
		}
	}
	return m, nil
}

// Conforms reports whether no cell fails and none holds a harness error
// (deviations, n/a and checks not run allowed: see Unchecked).
func (m Matrix) Conforms() bool {
	for _, r := range m.Rows {
		for _, c := range r.Cells {
			for _, res := range c.Results {
				if res.Status == HarnessError {
					return false
				}
			}
			if c.Status == Fails {
				return false
			}
		}
	}
	return true
}

// Failing returns the results that did not conform (deviating, failing
// or not judged for a harness error), row by row. Checks not run are
// Unchecked's.
func (m Matrix) Failing() []Result {
	var out []Result
	for _, r := range m.Rows {
		for _, c := range r.Cells {
			for _, res := range c.Results {
				if res.Status == Fails || res.Status == Deviates || res.Status == HarnessError {
					out = append(out, res)
				}
			}
		}
	}
	return out
}

// Checks returns the number of check results in the matrix that ran (not
// n/a), over every implementation.
func (m Matrix) Checks() int {
	n := 0
	for _, r := range m.Rows {
		for _, c := range r.Cells {
			for _, res := range c.Results {
				if res.Status != NotApplicable {
					n++
				}
			}
		}
	}
	return n
}

// Unchecked returns the results of checks not run because the
// implementation lacks a capability they need, row by row.
func (m Matrix) Unchecked() []Result {
	var out []Result
	for _, r := range m.Rows {
		for _, c := range r.Cells {
			for _, res := range c.Results {
				if res.Status == NotChecked {
					out = append(out, res)
				}
			}
		}
	}
	return out
}

// summary is the cell as the matrix writes it: the status and how many of
// its checks have it ("fails: 2 of 6 checks fail", "conforms: 6 checks",
// "not checked (lacks reset-on-idle): 1 of 3 checks").
func (c Cell) summary() string {
	n, worst := 0, 0
	var lacks []string
	for _, r := range c.Results {
		if r.Status != NotApplicable {
			n++
		}
		if r.Status == c.Status {
			worst++
		}
		if r.Status == NotChecked && !slices.Contains(lacks, r.Message) {
			lacks = append(lacks, r.Message)
		}
	}
	checks := func(k int) string {
		if k == 1 {
			return "1 check"
		}
		return fmt.Sprintf("%d checks", k)
	}
	switch c.Status {
	case NotApplicable:
		return "n/a"
	case Conforms:
		return "conforms: " + checks(n)
	case NotChecked:
		if worst == n {
			return fmt.Sprintf("not checked (%s): %s", strings.Join(lacks, ", "), checks(n))
		}
		return fmt.Sprintf("not checked (%s): %d of %s", strings.Join(lacks, ", "), worst, checks(n))
	}
	if c.Status == HarnessError {
		if n == 1 {
			return "harness error: the 1 check could not be judged"
		}
		return fmt.Sprintf("harness error: %d of %d checks could not be judged", worst, n)
	}
	verb := map[Status]string{Deviates: "deviate", Fails: "fail"}[c.Status]
	if n == 1 {
		return fmt.Sprintf("%s: the 1 check %ss", c.Status, verb)
	}
	if worst == 1 {
		return fmt.Sprintf("%s: 1 of %d checks %ss", c.Status, n, verb)
	}
	return fmt.Sprintf("%s: %d of %d checks %s", c.Status, worst, n, verb)
}

// wideMatrix is the number of implementations past which the matrix is
// written one row per implementation: a column per implementation would
// not fit a screen.
const wideMatrix = 3

func (m Matrix) table(w io.Writer, opts ...tablewriter.Option) error {
	t := tablewriter.NewTable(w, append(opts, tablewriter.WithHeaderAutoFormat(tw.Off))...)
	if len(m.Impls) > wideMatrix {
		return m.byImpl(t)
	}
	t.Header(append([]string{"Behaviour", "Kind"}, m.Impls...))
	for _, r := range m.Rows {
		kind := "documented"
		if !r.ID.Documented() {
			kind = "convention"
		}
		row := []string{behaviourLabel(r.ID), kind}
		for _, c := range r.Cells {
			row = append(row, c.summary())
		}
		if err := t.Append(row); err != nil {
			return fmt.Errorf("render matrix: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("render matrix: %w", err)
	}
	return nil
}

// byImpl writes one row per implementation: how many behaviours conform,
// and which were not checked, deviate or fail.
func (m Matrix) byImpl(t *tablewriter.Table) error {
	t.Header([]string{"Implementation", "Conforms", "Not checked", "Deviates", "Fails"})
	for i, name := range m.Impls {
		ok := 0
		var unchecked, dev, fail []string
		for _, r := range m.Rows {
			switch r.Cells[i].Status {
			case Conforms:
				ok++
			case NotChecked:
				unchecked = append(unchecked, r.ID.String())
			case Deviates:
				dev = append(dev, r.ID.String())
			case Fails:
				fail = append(fail, r.ID.String())
			case HarnessError:
				fail = append(fail, r.ID.String()+" (harness error)")
			}
		}
		row := []string{name, fmt.Sprintf("%d of %d behaviours", ok, len(m.Rows)), orNone(unchecked), orNone(dev), orNone(fail)}
		if err := t.Append(row); err != nil {
			return fmt.Errorf("render matrix: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("render matrix: %w", err)
	}
	return nil
}

func orNone(ids []string) string {
	if len(ids) == 0 {
		return "-"
	}
	return strings.Join(ids, ", ")
}

// behaviourLabel is a behaviour as the matrix names it: its ID and title.
func behaviourLabel(b reference.Behavior) string {
	if t := b.Title(); t != "" {
		return b.String() + " " + t
	}
	return b.String()
}

// Evidence writes, for every check that did not conform, its text, status,
// message and transcript, then one line per check not run.
func (m Matrix) Evidence(w io.Writer, markdown bool) error {
	for _, r := range m.Failing() {
		var err error
		if markdown {
			_, err = fmt.Fprintf(w, "\n### %s — %s: %s\n\n```\n%s\n\n%s```\n", r.Impl, r.Check.Text(), r.Status, strings.TrimSpace(r.Message), r.Transcript)
		} else {
			_, err = fmt.Fprintf(w, "\n== %s — %s: %s\n%s\n%s", r.Impl, r.Check.Text(), r.Status, strings.TrimSpace(r.Message), r.Transcript)
		}
		if err != nil {
			return fmt.Errorf("write evidence: %w", err)
		}
	}
	for _, r := range m.Unchecked() {
		var err error
		if markdown {
			_, err = fmt.Fprintf(w, "\n- %s — %s: %s\n", r.Impl, r.Check.Text(), r.Verdict())
		} else {
			_, err = fmt.Fprintf(w, "\n== %s — %s: %s\n", r.Impl, r.Check.Text(), r.Verdict())
		}
		if err != nil {
			return fmt.Errorf("write evidence: %w", err)
		}
	}
	return nil
}

// WriteTerminal writes the matrix as a terminal table, then the evidence
// of every check that did not conform.
func (m Matrix) WriteTerminal(w io.Writer) error {
	if err := m.table(w); err != nil {
		return err
	}
	return m.Evidence(w, false)
}

// WriteMarkdown writes the matrix as a Markdown table, then the evidence.
func (m Matrix) WriteMarkdown(w io.Writer) error {
	profile := reference.NameAzureLB
	if len(m.Rows) > 0 {
		profile = m.Rows[0].ID.Profile()
	}
	if _, err := fmt.Fprintf(w, "# natcheck conformance matrix (profile %s)\n\n", profile); err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	if err := m.table(w, tablewriter.WithRenderer(renderer.NewMarkdown())); err != nil {
		return err
	}
	return m.Evidence(w, true)
}

// junitSuite and friends are the JUnit XML schema's subset CI readers use.
type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes every check result as a JUnit test case (class name
// "impl:NAME"): failures as failures, harness errors as errors,
// deviations and n/a as skipped.
func (m Matrix) WriteJUnit(w io.Writer) error {
	s := junitSuite{Name: "natcheck verify"}
	for _, r := range m.Rows {
		for _, c := range r.Cells {
			for _, res := range c.Results {
				jc := junitCase{Name: res.Check.Text(), ClassName: "impl:" + res.Impl, Time: res.Elapsed.Seconds()}
				switch res.Status {
				case Fails:
					jc.Failure = &junitMessage{Message: firstLine(res.Message), Body: res.Report()}
					s.Failures++
				case HarnessError:
					jc.Error = &junitMessage{Message: firstLine(res.Message), Body: res.Report()}
					s.Errors++
				case NotChecked:
					jc.Skipped = &junitMessage{Message: res.Verdict(), Body: res.Report()}
					s.Skipped++
				case Deviates, NotApplicable:
					jc.Skipped = &junitMessage{Message: res.Status.String() + ": " + firstLine(res.Message), Body: res.Report()}
					s.Skipped++
				}
				s.Cases = append(s.Cases, jc)
			}
		}
	}
	s.Tests = len(s.Cases)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ImplByName returns the implementation called name: "reference", or a
// mutant's "mutant:…" (to see what a failing matrix looks like).
func ImplByName(name string) (Impl, error) {
	if name == "reference" {
		return Reference(), nil
	}
	for _, pn := range reference.ProfileNames() {
		if name == "reference-"+pn {
			p, err := reference.ProfileByName(pn)
			if err != nil {
				return Impl{}, err
			}
			return Engine(p), nil
		}
	}
	for _, m := range Mutants() {
		if m.Name == name {
			return m.Impl, nil
		}
	}
	return Impl{}, fmt.Errorf("implementation %q: want reference or a mutant:… name", name)
}
