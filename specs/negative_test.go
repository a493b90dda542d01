package specs

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/natcheck/natcheck/reference"
)

// replayConventions are the azure-lb items about replaying a capture, not
// about a NAT: no check through the NAT interface can see them; package
// replay's tests check them.
var replayConventions = map[reference.Behavior]bool{reference.C8: true, reference.C9: true}

// withoutMutant are the items that no mutant breaks yet, beside the replay
// conventions: TestEveryItemHasMutant keeps this list exact.
var withoutMutant = map[reference.Behavior]bool{}

// TestEveryItemHasChecks: every B and C item (but the replay conventions)
// has at least one check, and every spec text starts with its ID.
func TestEveryItemHasChecks(t *testing.T) {
	have := map[reference.Behavior]int{}
	for _, c := range Checks() {
		have[c.ID]++
		if !strings.HasPrefix(c.Text(), c.ID.String()+": ") {
			t.Errorf("check %q does not start with its ID", c.Text())
		}
	}
	for _, b := range reference.BehaviorsOf(reference.NameAzureLB) {
		if have[b] == 0 && !replayConventions[b] {
			t.Errorf("%v has no check", b)
		}
		if have[b] > 0 && replayConventions[b] {
			t.Errorf("%v is a replay convention but has %d checks", b, have[b])
		}
	}
}

// TestEveryItemHasMutant: at least one mutant breaks each item checked
// here, except those listed in withoutMutant (and the list is exact).
func TestEveryItemHasMutant(t *testing.T) {
	have := map[reference.Behavior]bool{}
	for _, m := range Mutants() {
		for _, b := range m.Breaks {
			have[b] = true
		}
	}
	for _, b := range reference.BehaviorsOf(reference.NameAzureLB) {
		if replayConventions[b] {
			continue
		}
		if !have[b] && !withoutMutant[b] {
			t.Errorf("no mutant breaks %v", b)
		}
		if have[b] && withoutMutant[b] {
			t.Errorf("a mutant breaks %v: take it off withoutMutant", b)
		}
	}
}

// TestNegativeControl runs every check against every mutant: the checks of
// the behaviour a mutant breaks must not all pass: the row fails. (That the un-mutated
// reference passes every check is the Ginkgo suite's job, and
// TestReferenceConforms's.)
func TestNegativeControl(t *testing.T) {
	ms := Mutants()
	matrices := make([]Matrix, len(ms))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			mx, err := Verify(context.Background(), []Impl{m.Impl}, Checks(), nil, nil)
			if err != nil {
				t.Errorf("%s: Verify: %v", m.Name, err)
			}
			matrices[i] = mx
		}()
	}
	wg.Wait()
	for i, m := range ms {
		status := map[reference.Behavior]Status{}
		var tripped []string
		for _, r := range matrices[i].Rows {
			status[r.ID] = r.Cells[0].Status
			for _, res := range r.Cells[0].Results {
				if res.Status == Fails {
					tripped = append(tripped, res.Check.Text())
				}
			}
		}
		for _, b := range m.Breaks {
			if status[b] != Fails {
				t.Errorf("%s (%s): %v is %v, want fails", m.Name, m.What, b, status[b])
			}
		}
		t.Logf("%s (%s) trips %d checks:\n  %s", m.Name, m.What, len(tripped), strings.Join(tripped, "\n  "))
	}
}

// TestReferenceConforms: Verify on the reference conforms on every row,
// and the matrix renders in both forms.
func TestReferenceConforms(t *testing.T) {
	mx, err := Verify(context.Background(), []Impl{Reference()}, Checks(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range mx.Failing() {
		t.Errorf("%s", r.Report())
	}
	want := len(reference.BehaviorsOf(reference.NameAzureLB)) - len(replayConventions)
	if len(mx.Rows) != want || !mx.Conforms() {
		t.Errorf("Verify(reference) = %d rows, conforms=%v; want %d rows, conforms", len(mx.Rows), mx.Conforms(), want)
	}
	var term, md strings.Builder
	if err := mx.WriteTerminal(&term); err != nil {
		t.Fatal(err)
	}
	if err := mx.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"B1", "B16", "C5", "conforms"} {
		if !strings.Contains(term.String(), want) || !strings.Contains(md.String(), want) {
			t.Errorf("rendered matrix lacks %q:\n%s\n%s", want, term.String(), md.String())
		}
	}
	if !strings.Contains(md.String(), "| B9 ") {
		t.Errorf("markdown matrix has no B9 row:\n%s", md.String())
	}
}

// TestModelConforms: the model that hosts most mutants conforms on every
// row with no fault switched on, so that a mutant's failures come from
// its fault and not from the model.
func TestModelConforms(t *testing.T) {
	mx, err := Verify(context.Background(), []Impl{modelImpl("model", 0)}, Checks(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range mx.Failing() {
		t.Errorf("%s", r.Report())
	}
	want := len(reference.BehaviorsOf(reference.NameAzureLB)) - len(replayConventions)
	if len(mx.Rows) != want || !mx.Conforms() {
		t.Errorf("Verify(model) = %d rows, conforms=%v; want %d rows, conforms", len(mx.Rows), mx.Conforms(), want)
	}
}

// TestChecksCatchTheirMutant: a check that claims a property must fail on
// a mutant that breaks exactly that property; each row is a check whose
// property a row-level negative control would not single out (another
// check of the same behaviour may be the one that fails).
func TestChecksCatchTheirMutant(t *testing.T) {
	byName := map[string]Impl{}
	for _, m := range Mutants() {
		byName[m.Name] = m.Impl
	}
	for _, tc := range []struct{ mutant, check string }{
		// B14: RSTs at idle expiry for the established flow only.
		{"mutant:reset-unestablished", "B14: with tcpResetOnIdle an established flow that idles out gets a RST"},
		// B7: one mapping for every port of a destination IP.
		{"mutant:udp-full-tuple", "B7: one inside endpoint uses one UDP mapping for every port of a destination IP"},
	} {
		im, ok := byName[tc.mutant]
		if !ok {
			t.Fatalf("no mutant %s", tc.mutant)
		}
		var found int
		for _, c := range Checks() {
			if !strings.HasPrefix(c.Text(), tc.check) {
				continue
			}
			found++
			if r := Run(context.Background(), im, c); r.Status != Fails {
				t.Errorf("%s on %s: %v, want fails\n%s", c.Text(), tc.mutant, r.Status, r.Report())
			}
			if r := Run(context.Background(), Reference(), c); r.Status != Conforms {
				t.Errorf("%s on the reference: %v, want conforms\n%s", c.Text(), r.Status, r.Report())
			}
		}
		if found != 1 {
			t.Errorf("%d checks start with %q, want 1", found, tc.check)
		}
	}
}
