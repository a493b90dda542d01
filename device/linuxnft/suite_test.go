package linuxnft_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/natcheck/natcheck/device/linuxnft"
	"github.com/natcheck/natcheck/device/livecheck"
	"github.com/natcheck/natcheck/device/sandbox/sandboxtest"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// TestConformance runs every azure-lb check against the linux-nft device
// (labels impl:linux-nft, slow, and the check's ID).
func TestConformance(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "linux-nft conformance (azure-lb)")
}

// scale and budget keep the device part of make test short: profile time
// runs 10× faster, and a check whose next wait would end after the budget
// is skipped (ErrBudget), not waited for.
const (
	scale  = 10
	budget = 100 * time.Second
)

// beyondSEMANTICS are the rows where the device fails checks that
// SEMANTICS.md's "Known differences" does not predict, measured on this
// kernel, with the Linux behaviour that explains each. They are findings,
// kept here so that a change in either the device or the list shows.
var beyondSEMANTICS = map[reference.Behavior]string{
	reference.B1:  "L4: 64,000 SYNs toward one destination: refused at 20,000–26,000 in some runs (conntrack insert_failed), all accepted in others",
	reference.B2:  "L4: 6,400 ports: the last few hundred flows are refused",
	reference.B3:  "L4: instances over 128 ports are refused at 95–99 % of their ports",
	reference.B4:  "L4: 6,400 and 64,000 ports are not filled",
	reference.B6:  "L2: the kernel picks the port of a source port outside the range by a keyed hash and probing: three flows to three destinations share one port in some runs, not in others",
	reference.B13: "L6: a RST on a flow that never saw a reply frees its port at once; L5: SYN_SENT times out at 120 s",
	reference.B14: "L5: an established flow lives 432,000 s, so a reply after 4 minutes idle is still translated",
}

// byChance are the rows of beyondSEMANTICS whose outcome depends on the
// kernel's keyed-hash and random port search (L2, L4): a run may conform
// or fail.
var byChance = map[reference.Behavior]bool{reference.B1: true, reference.B2: true, reference.B3: true, reference.B4: true, reference.B6: true}

// want is each row's status on this device.
func want(id reference.Behavior) specs.Status {
	switch {
	case !id.Documented():
		return specs.NotApplicable
	case beyondSEMANTICS[id] != "":
		return specs.Fails
	case id == reference.B16:
		// Pool changes are not offered (a capability the device lacks).
		return specs.NotChecked
	case linuxnft.KnownAzureLB[id] != "":
		return specs.Deviates
	}
	return specs.Conforms
}

var (
	results = map[string]specs.Result{}
	matrix  specs.Matrix
)

var _ = BeforeSuite(func() {
	sandboxtest.Require(GinkgoT(), linuxnft.Preflight)
	impl := linuxnft.Impl(linuxnft.Calibrate(linuxnft.Options{Scale: scale}))
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	var err error
	matrix, err = livecheck.Verify(ctx, impl, specs.Checks(), nil, livecheck.Options{Parallel: 4, Attempts: 3})
	Expect(err).NotTo(HaveOccurred())
	for _, r := range matrix.Rows {
		for _, res := range r.Cells[0].Results {
			results[res.Check.Text()] = res
		}
	}
})

// lacks reports whether r was not run for a capability the device lacks.
func lacks(r specs.Result) bool { return r.Status == specs.NotChecked }

func overBudget(r specs.Result) bool {
	return strings.Contains(r.Message, linuxnft.ErrBudget.Error())
}

var _ = Describe("linux-nft", Label("impl:linux-nft", "slow"), func() {
	var entries []TableEntry
	for _, c := range specs.Checks() {
		entries = append(entries, Entry(c.Text(), Label(c.ID.String()), c))
	}
	DescribeTable("checks", func(c specs.Check) {
		r, ok := results[c.Text()]
		Expect(ok).To(BeTrue(), "the check ran")
		if overBudget(r) {
			Skip("SKIPPED, not passed: its waits end after the " + budget.String() + " budget of make test at time scale 10; natcheck verify --device linux-nft runs it")
		}
		if lacks(r) {
			Expect(r.Message).NotTo(BeEmpty(), "names the capability the device lacks")
			return
		}
		switch w := want(c.ID); w {
		case specs.Fails:
			Expect(r.Status).To(BeElementOf(specs.Conforms, specs.Fails), r.Report())
		case specs.Deviates:
			Expect(r.Status).To(BeElementOf(specs.Conforms, specs.Deviates), r.Report())
		default:
			Expect(r.Status).To(Equal(w), r.Report())
		}
	}, entries)

	It("deviates on exactly the rows SEMANTICS.md lists (B7, B9, B10, B11, B12, B15), lacks pool changes (B16) and tcpResetOnIdle (B14), and fails the rows it does not list", func() {
		got := map[reference.Behavior]specs.Status{}
		judged := map[reference.Behavior]bool{}
		for _, r := range matrix.Rows {
			// A row's status without the checks the budget left out.
			for _, res := range r.Cells[0].Results {
				if !overBudget(res) {
					got[r.ID] = max(got[r.ID], res.Status)
					judged[r.ID] = judged[r.ID] || res.Status != specs.NotChecked
				}
			}
		}
		for _, b := range reference.Behaviors() {
			if _, ok := got[b]; !ok {
				continue
			}
			if want(b) != specs.NotChecked && b.Documented() && !judged[b] {
				GinkgoWriter.Printf("row %v: every check not checked or beyond the budget\n", b)
				continue
			}
			if byChance[b] {
				Expect(got[b]).To(BeElementOf(specs.Conforms, specs.Fails), "row %v: %s", b, beyondSEMANTICS[b])
				continue
			}
			Expect(got[b]).To(Equal(want(b)), "row %v: %s", b, beyondSEMANTICS[b])
		}
		for id := range linuxnft.KnownAzureLB {
			if id.Documented() && judged[id] {
				Expect(got[id]).To(Equal(specs.Deviates), "%v is a known difference and deviates", id)
			}
		}
		// Each deviation carries its packets as evidence.
		for _, r := range matrix.Failing() {
			if r.Status == specs.Deviates && !lacks(r) {
				Expect(r.Transcript).NotTo(BeEmpty(), "%s has evidence", r.Check.Text())
			}
		}
	})
})

// TestBudgetIsNotAVerdict: a wait past the context's deadline is refused at
// once with ErrBudget, without sleeping.
func TestBudgetIsNotAVerdict(t *testing.T) {
	sandboxtest.Require(t, linuxnft.Preflight)
	n, err := linuxnft.Open(context.Background(), oneBackend(8), linuxnft.Options{Scale: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err = n.Wait(ctx, specs.Origin.Add(time.Hour))
	if !errors.Is(err, linuxnft.ErrBudget) || time.Since(start) > 100*time.Millisecond {
		t.Errorf("Wait(+1h) with 1 s left = %v after %v, want ErrBudget at once", err, time.Since(start))
	}
}
