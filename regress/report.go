package regress

import (
	"bytes"
	"cmp"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ReportSchema names the JSON document of a regress run (Report); the
// number changes when a field changes meaning or goes away.
const ReportSchema = "natcheck-regress-report/1"

// Statuses of a capture in a Report.
const (
	StatusAsExpected = "as-expected"
	StatusChanged    = "changed"
	StatusRecorded   = "recorded" // --update
	StatusError      = "error"    // the expectation or its capture could not be read
)

// Report is a regress run over a corpus, or over one shard of it.
type Report struct {
	Schema string `json:"schema"`
	// Shard is set for a run of one shard; a merged report has none.
	Shard *Shard `json:"shard,omitempty"`
	// Corpus is the number of expectation files of the whole corpus,
	// every shard's together.
	Corpus  int      `json:"corpus"`
	Summary Summary  `json:"summary"`
	Results []Result `json:"results"`
}

// Summary counts the results by status.
type Summary struct {
	Captures   int `json:"captures"`
	AsExpected int `json:"as_expected"`
	Changed    int `json:"changed"`
	Recorded   int `json:"recorded"`
	Errors     int `json:"errors"`
}

// Result is one expectation's run.
type Result struct {
	Expectation string       `json:"expectation"`
	Capture     string       `json:"capture,omitempty"`
	Scenario    string       `json:"scenario,omitempty"`
	Status      string       `json:"status"`
	Error       string       `json:"error,omitempty"`
	Differences []Difference `json:"differences,omitempty"`
}

// RunCorpus runs (or, with update, records) the expectation files of a
// corpus, or of its shard when shard is not nil, in path order. Every file
// gets a result: one that cannot be run is an error result, and the run
// goes on. each, if not nil, is called after every file.
func RunCorpus(paths []string, shard *Shard, update bool, each func(Result)) Report {
	paths = sortedUnique(paths)
	rep := Report{Schema: ReportSchema, Corpus: len(paths), Results: []Result{}}
	mine := paths
	if shard != nil {
		s := *shard
		rep.Shard = &s
		mine = Split(paths, s.Count)[s.Index]
	}
	for _, p := range mine {
		r := runOne(p, update)
		rep.Results = append(rep.Results, r)
		if each != nil {
			each(r)
		}
	}
	rep.Summary = summarize(rep.Results)
	return rep
}

func runOne(path string, update bool) Result {
	r := Result{Expectation: path}
	e, err := Load(path)
	if err != nil {
		r.Status, r.Error = StatusError, err.Error()
		return r
	}
	r.Capture, r.Scenario = e.CapturePath(), e.Scenario
	if update {
		if err := e.Update(); err != nil {
			r.Status, r.Error = StatusError, err.Error()
			return r
		}
		r.Status = StatusRecorded
		return r
	}
	diff, err := e.Check()
	switch {
	case errors.Is(err, ErrMismatch):
		r.Status, r.Differences = StatusChanged, diff
	case err != nil:
		r.Status, r.Error = StatusError, err.Error()
	default:
		r.Status = StatusAsExpected
	}
	return r
}

func summarize(rs []Result) Summary {
	s := Summary{Captures: len(rs)}
	for _, r := range rs {
		switch r.Status {
		case StatusAsExpected:
			s.AsExpected++
		case StatusChanged:
			s.Changed++
		case StatusRecorded:
			s.Recorded++
		default:
			s.Errors++
		}
	}
	return s
}

// ErrMerge is matched by the error of reports that do not make one run:
// shards of different splits, a shard missing or given twice, a capture
// in two shards.
var ErrMerge = errors.New("reports do not merge")

// Merge joins the reports of the n shards of one corpus into the report
// of the whole corpus: the same document, byte for byte, as one run over
// the corpus gives. Every shard 0 … n-1 must be there exactly once.
func Merge(reports []Report) (Report, error) {
	if len(reports) == 0 {
		return Report{}, fmt.Errorf("merge: %w: no report", ErrMerge)
	}
	n, corpus := 0, reports[0].Corpus
	seen := map[int]bool{}
	byPath := map[string]bool{}
	out := Report{Schema: ReportSchema, Corpus: corpus, Results: []Result{}}
	for k, r := range reports {
		if r.Schema != ReportSchema {
			return Report{}, fmt.Errorf("merge: %w: report %d has schema %q, want %q", ErrMerge, k+1, r.Schema, ReportSchema)
		}
		if r.Shard == nil {
			return Report{}, fmt.Errorf("merge: %w: report %d is not a shard (run with --shard i/n)", ErrMerge, k+1)
		}
		if n == 0 {
			n = r.Shard.Count
		}
		if r.Shard.Count != n || r.Corpus != corpus {
			return Report{}, fmt.Errorf("merge: %w: report %d is shard %s of a corpus of %d, report 1 of %d shards of %d",
				ErrMerge, k+1, r.Shard, r.Corpus, n, corpus)
		}
		if seen[r.Shard.Index] {
			return Report{}, fmt.Errorf("merge: %w: shard %s given twice", ErrMerge, r.Shard)
		}
		seen[r.Shard.Index] = true
		for _, res := range r.Results {
			if byPath[res.Expectation] {
				return Report{}, fmt.Errorf("merge: %w: %s is in two shards", ErrMerge, res.Expectation)
			}
			byPath[res.Expectation] = true
			out.Results = append(out.Results, res)
		}
	}
	var missing []string
	for i := range n {
		if !seen[i] {
			missing = append(missing, fmt.Sprintf("%d/%d", i, n))
		}
	}
	if len(missing) > 0 {
		return Report{}, fmt.Errorf("merge: %w: shard %s missing", ErrMerge, strings.Join(missing, ", "))
	}
	if len(out.Results) != corpus {
		return Report{}, fmt.Errorf("merge: %w: %d results for a corpus of %d", ErrMerge, len(out.Results), corpus)
	}
	slices.SortFunc(out.Results, func(a, b Result) int { return cmp.Compare(a.Expectation, b.Expectation) })
	out.Summary = summarize(out.Results)
	return out, nil
}

// WriteJSON writes the report as one indented JSON document.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadReport reads a report WriteJSON wrote.
func ReadReport(name string, b []byte) (Report, error) {
	var r Report
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Report{}, fmt.Errorf("read regress report %s: %w", name, err)
	}
	if r.Schema != ReportSchema {
		return Report{}, fmt.Errorf("read regress report %s: schema %q, want %q", name, r.Schema, ReportSchema)
	}
	return r, nil
}

// junit* are the JUnit XML elements CI systems read (GitLab, Jenkins,
// GitHub actions that publish test reports): one test case per capture.
type junitSuites struct {
	XMLName  xml.Name   `xml:"testsuites"`
	Name     string     `xml:"name,attr"`
	Tests    int        `xml:"tests,attr"`
	Failures int        `xml:"failures,attr"`
	Errors   int        `xml:"errors,attr"`
	Suites   []junitSet `xml:"testsuite"`
}

type junitSet struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Failure   *junitProblem `xml:"failure"`
	Error     *junitProblem `xml:"error"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML: a test case per capture,
// named by its expectation file; a changed outcome is a failure listing
// its differences, one a line, and a capture that could not be run an
// error.
func (r Report) WriteJUnit(w io.Writer) error {
	name := "natcheck regress"
	if r.Shard != nil {
		name += " (shard " + r.Shard.String() + ")"
	}
	s := junitSet{Name: name, Tests: len(r.Results), Failures: r.Summary.Changed, Errors: r.Summary.Errors}
	for _, res := range r.Results {
		c := junitCase{Classname: "natcheck.regress", Name: res.Expectation, File: res.Capture}
		switch res.Status {
		case StatusChanged:
			c.Failure = &junitProblem{Message: fmt.Sprintf("%d differences: %s", len(res.Differences), res.Differences[0]),
				Type: "changed", Text: differenceLines(res)}
		case StatusError:
			c.Error = &junitProblem{Message: res.Error, Type: "error", Text: res.Error}
		}
		s.Cases = append(s.Cases, c)
	}
	doc := junitSuites{Name: name, Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Suites: []junitSet{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// differenceLines are a changed result's differences, one a line, each
// naming the capture.
func differenceLines(res Result) string {
	var b strings.Builder
	for _, d := range res.Differences {
		fmt.Fprintf(&b, "%s (%s): %s\n", res.Expectation, res.Capture, d)
	}
	return b.String()
}

// WriteMarkdown writes the report as a Markdown summary (for a CI job's
// summary page: $GITHUB_STEP_SUMMARY, a merge request comment): a line of
// totals, a table of the captures, and the differences of each changed
// one.
func (r Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	s := r.Summary
	title := "natcheck regress"
	if r.Shard != nil {
		title += fmt.Sprintf(" (shard %s of a corpus of %d)", r.Shard, r.Corpus)
	}
	fmt.Fprintf(&b, "## %s\n\n%d captures: %d as expected, %d changed, %d recorded, %d errors\n\n",
		title, s.Captures, s.AsExpected, s.Changed, s.Recorded, s.Errors)
	b.WriteString("| expectation | capture | result |\n|---|---|---|\n")
	for _, res := range r.Results {
		result := res.Status
		switch res.Status {
		case StatusChanged:
			result = fmt.Sprintf("**changed** (%d)", len(res.Differences))
		case StatusError:
			result = "**error**"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", res.Expectation, res.Capture, result)
	}
	for _, res := range r.Results {
		switch res.Status {
		case StatusChanged:
			fmt.Fprintf(&b, "\n### `%s` changed\n\n", res.Expectation)
			for _, d := range res.Differences {
				fmt.Fprintf(&b, "- %s\n", mdEscape(d.String()))
			}
		case StatusError:
			fmt.Fprintf(&b, "\n### `%s` could not be run\n\n%s\n", res.Expectation, mdEscape(res.Error))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdEscape keeps a line from being read as Markdown markup.
func mdEscape(s string) string {
	r := strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "<", "&lt;", ">", "&gt;", "`", "'")
	return r.Replace(s)
}
