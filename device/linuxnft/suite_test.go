package linuxnft_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
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

// TestConformance runs every azure-lb check and every linux check against
// the linux-nft device (labels impl:linux-nft, slow, the profile and the
// check's ID), both matrices at once, and asserts each row's status.
func TestConformance(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "linux-nft conformance (azure-lb and linux)")
}

// scale and budget keep the device part of make test short: profile time
// runs 10× faster, and a check whose next wait would end after the budget
// is not run to its end (ErrBudget): it is skipped, never passed. Within
// the budget, every linux check and every azure-lb check but B12's
// 120-minute idle timeout (six hours of profile time over its sessions)
// runs. Checks start longest first, and one whose waits alone would end
// after the budget is not started (livecheck's LongestFirst and Scale):
// the suite takes about 85 s. The budget leaves room for a long check
// (B14's silent expiry waits 54 s) to be run again after a harness error:
// at 150 s, in the checks' own order, B14's silent-expiry check once ran
// out of it on a busy machine and its row read "not checked".
const (
	scale    = 10
	budget   = 200 * time.Second
	parallel = 8 // checks at once, per profile (they mostly sleep)
	// established is the linux profile's ESTABLISHED timeout in the
	// test: L5's longest check waits 1.5 times it, twice.
	established = 240 * time.Second
	attempts    = 3
)

// wantAzureLB is each azure-lb row's status on this device: the
// deviations SEMANTICS.md's "Known differences" lists (B7, B9–B12, B15),
// and B13, B14 and B16, which this kernel shows beyond that list, every
// one known (linuxnft.KnownAzureLB, with its L item); C items are the
// reference's. No row fails, none is left to a harness error.
func wantAzureLB(id reference.Behavior) specs.Status {
	switch id {
	case reference.B1, reference.B2, reference.B3, reference.B4, reference.B5, reference.B6, reference.B8:
		return specs.Conforms
	case reference.B7, reference.B9, reference.B10, reference.B11, reference.B12, reference.B13, reference.B14, reference.B15, reference.B16:
		return specs.Deviates
	}
	return specs.NotApplicable
}

// wantLinux: against its own profile every L row conforms.
func wantLinux(reference.Behavior) specs.Status { return specs.Conforms }

var (
	matrices = map[string]specs.Matrix{}
	results  = map[string]specs.Result{} // by profile + check text
)

var _ = BeforeSuite(func() {
	sandboxtest.Require(GinkgoT(), linuxnft.Preflight)
	// Each check's precise sends hold a Go processor for a moment.
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), 2*parallel+runtime.NumCPU()))
	opt := linuxnft.Calibrate(linuxnft.Options{Scale: scale})
	ct, err := linuxnft.DeviceConntrack()
	Expect(err).NotTo(HaveOccurred())
	ct.Established = established
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	runs := []struct {
		profile string
		impl    specs.Impl
	}{{reference.NameAzureLB, linuxnft.Impl(opt)}, {reference.NameLinux, linuxnft.LinuxImpl(opt, ct)}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := make([]error, len(runs))
	for i, r := range runs {
		checks, err := specs.ChecksFor(r.profile)
		Expect(err).NotTo(HaveOccurred())
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := livecheck.Verify(ctx, r.impl, checks, nil, livecheck.Options{
				Parallel: parallel, Attempts: attempts, LongestFirst: true, Scale: scale,
				Retry: func(err error) bool { return !errors.Is(err, linuxnft.ErrBudget) },
			})
			errs[i] = err
			mu.Lock()
			defer mu.Unlock()
			matrices[r.profile] = m
			for _, row := range m.Rows {
				for _, res := range row.Cells[0].Results {
					results[r.profile+" "+res.Check.Text()] = res
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		Expect(err).NotTo(HaveOccurred())
	}
	GinkgoWriter.Printf("time scale %d, send tolerance %v, %d checks at once per profile\n", scale, opt.Tolerance, parallel)
	for _, r := range runs {
		for _, row := range matrices[r.profile].Rows {
			for _, res := range row.Cells[0].Results {
				for i, why := range res.Retried {
					GinkgoWriter.Printf("%s %s: attempt %d: %s\n", r.profile, res.Check.Text(), i+1, why)
				}
			}
		}
	}
})

func overBudget(r specs.Result) bool { return errors.Is(r.Err, linuxnft.ErrBudget) }

// rowStatus is a row's status without the checks the budget left out, and
// whether any check of it was judged.
func rowStatus(r specs.Row) (specs.Status, bool) {
	var st specs.Status
	ran := false
	for _, res := range r.Cells[0].Results {
		if !overBudget(res) {
			st, ran = max(st, res.Status), true
		}
	}
	return st, ran
}

var _ = Describe("linux-nft", Label("impl:linux-nft", "slow"), func() {
	for _, prof := range []struct {
		name string
		want func(reference.Behavior) specs.Status
	}{{reference.NameAzureLB, wantAzureLB}, {reference.NameLinux, wantLinux}} {
		checks, err := specs.ChecksFor(prof.name)
		if err != nil {
			panic(err)
		}
		Describe(prof.name, Label("profile:"+prof.name), func() {
			var entries []TableEntry
			for _, c := range checks {
				entries = append(entries, Entry(c.Text(), Label(c.ID.String()), c))
			}
			DescribeTable("checks", func(c specs.Check) {
				r, ok := results[prof.name+" "+c.Text()]
				Expect(ok).To(BeTrue(), "the check ran")
				if overBudget(r) {
					Skip("SKIPPED, not passed: its waits end after the " + budget.String() + " budget of make test at time scale 10; natcheck verify --device linux-nft runs it")
				}
				Expect(r.Status).NotTo(Equal(specs.HarnessError), "a harness error in %d attempts: %s", r.Attempts, r.Report())
				if r.Status == specs.NotChecked {
					// Its own status (the row's test counts it), never a pass.
					Expect(r.Message).To(HavePrefix("lacks "), "names the capability the device lacks")
					Skip("SKIPPED, not passed: " + r.Verdict())
				}
				switch w := prof.want(c.ID); w {
				case specs.Deviates:
					// A deviating row may hold checks the device passes.
					Expect(r.Status).To(BeElementOf(specs.Conforms, specs.Deviates), r.Report())
					if r.Status == specs.Deviates {
						Expect(r.Message).To(HavePrefix("known difference: "+linuxnft.KnownAzureLB[c.ID]), "names the L item")
						Expect(r.Transcript).NotTo(BeEmpty(), "the packets are the evidence")
					}
				default:
					Expect(r.Status).To(Equal(w), r.Report())
				}
			}, entries)

			It("has exactly the rows' expected statuses", func() {
				m, ok := matrices[prof.name]
				Expect(ok).To(BeTrue())
				got, want := map[string]string{}, map[string]string{}
				var unjudged []string
				for _, r := range m.Rows {
					st, ran := rowStatus(r)
					if !ran {
						unjudged = append(unjudged, r.ID.String())
						continue
					}
					got[r.ID.String()], want[r.ID.String()] = st.String(), prof.want(r.ID).String()
				}
				Expect(unjudged).To(BeEmpty(), "rows whose every check is beyond the budget")
				Expect(got).To(Equal(want))
			})
		})
	}
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
