package specs

import (
	"context"
	"fmt"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// Check is one case of one behaviour: the unit that the Ginkgo suite runs
// as an Entry and that Verify runs into the matrix.
type Check struct {
	// ID is the item of SEMANTICS.md the check is about.
	ID reference.Behavior
	// Title completes the spec text "B9: " + Title.
	Title string
	// Needs are the capabilities the check requires.
	Needs Capabilities
	// Run drives a NAT through p and asserts with p.G; the first failed
	// assertion ends it.
	Run func(p *Probe)
}

// Text is the spec text: the ID, a colon, the title.
func (c Check) Text() string { return c.ID.String() + ": " + c.Title }

// Convention reports whether the check is of a C item: it runs on the
// reference only.
func (c Check) Convention() bool { return !c.ID.Documented() }

// Status is the verdict on a check, or on a behaviour of the matrix.
type Status uint8

// Statuses, from best to worst. A behaviour's status is its worst check's.
const (
	// NotApplicable: a C item on an implementation other than the
	// reference.
	NotApplicable Status = iota
	// Conforms: the check passed.
	Conforms
	// NotChecked: the implementation lacks a capability the check needs,
	// so nothing is known; the result's message names what it lacks.
	NotChecked
	// HarnessError: the NAT could not be driven as the check asked (a live
	// device woke too late for a boundary, a packet neither came out nor
	// was counted as dropped, a socket failed): nothing is known about the
	// behaviour, and the message says what went wrong. Never a verdict.
	HarnessError
	// Deviates: the check failed as the implementation's profile predicts
	// (Impl.Known).
	Deviates
	// Fails: the check failed otherwise.
	Fails
)

// String returns "n/a", "conforms", "not checked", "harness error",
// "deviates" or "fails".
func (s Status) String() string {
	return [...]string{"n/a", "conforms", "not checked", "harness error", "deviates", "fails"}[s]
}

// Result is one check run against one implementation.
type Result struct {
	Check  Check
	Impl   string
	Status Status
	// Message is the failed assertion, the known deviation, or what the
	// implementation lacks ("lacks reset-on-idle"); empty when the check
	// conforms.
	Message string
	// Transcript is the evidence: the packets sent and observed.
	Transcript Transcript
	Elapsed    time.Duration
	// Attempts is how many times the check was run to get this result:
	// 1, or more when a runner ran it again after a harness error
	// (package device/livecheck does); 0 means 1.
	Attempts int
	// Retried are the harness errors of the attempts before this one.
	Retried []string
	// Err is the error of a HarnessError result, as the NAT returned it
	// (for errors.Is).
	Err error
}

// Runs reports whether Run would run check c against impl: c is not an
// engine convention on an implementation other than the reference, and
// impl has every capability c needs.
func (im Impl) Runs(c Check) bool {
	_, why := im.notRun(c)
	return why == ""
}

// notRun is the status of check c on im when it is not run, and why; why
// is empty when it is run.
func (im Impl) notRun(c Check) (Status, string) {
	if c.Convention() && !im.Reference {
		return NotApplicable, "engine convention: checked on the reference only"
	}
	if missing := c.Needs &^ im.Caps; missing != 0 {
		return NotChecked, "lacks " + missing.String()
	}
	return 0, ""
}

// Run runs check c against impl and returns its result. It never panics on
// a failing NAT: failures become the result's status and message.
func Run(ctx context.Context, impl Impl, c Check) (r Result) {
	r = Result{Check: c, Impl: impl.Name}
	if st, why := impl.notRun(c); why != "" {
		r.Status, r.Message = st, why
		return r
	}
	p := newProbe(ctx, impl)
	start := time.Now()
	defer func() {
		x := recover()
		if _, harness := x.(harnessFailure); !harness {
			if err := p.settle(); err != nil {
				x = harnessFailure{err} // what the NAT was judged on did not hold
			}
		}
		p.close()
		r.Elapsed = time.Since(start)
		r.Transcript = p.transcript
		switch x := x.(type) {
		case nil:
			r.Status = Conforms
		case checkFailure:
			r.Status, r.Message = Fails, x.msg
			if why, ok := impl.Known[c.ID]; ok {
				r.Status, r.Message = Deviates, "known difference: "+why+"\n"+x.msg
			}
		case notRun:
			r.Status, r.Message = NotChecked, x.msg
		case harnessFailure:
			r.Status, r.Message, r.Err = HarnessError, "harness: "+x.err.Error(), x.err
		default:
			panic(x)
		}
	}()
	c.Run(p)
	return r
}

// Verdict is the status as reports print it: "not checked (lacks
// reset-on-idle)" for a check not run, the status otherwise.
func (r Result) Verdict() string {
	if r.Status == NotChecked {
		return r.Status.String() + " (" + r.Message + ")"
	}
	return r.Status.String()
}

// Report is the result as a failure message: the status, the message and
// the transcript.
func (r Result) Report() string {
	return fmt.Sprintf("%s on %s: %s\n%s\nevidence (times since the check's start):\n%s", r.Check.Text(), r.Impl, r.Status, r.Message, r.Transcript)
}
