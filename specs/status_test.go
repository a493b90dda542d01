package specs

import (
	"context"
	"strings"
	"testing"

	"github.com/natcheck/natcheck/reference"
)

// TestNotCheckedIsItsOwnStatus: a check that needs a capability the
// implementation lacks is not run and reads "not checked (lacks X)" in
// the result, the matrix cell, the evidence and JUnit (skipped): never
// "deviates", never a pass; Conforms still holds (nothing failed) and
// Unchecked lists it.
func TestNotCheckedIsItsOwnStatus(t *testing.T) {
	im := Reference()
	im.Name = "reference-without-reset"
	im.Caps &^= CapResetOnIdle
	mx, err := Verify(context.Background(), []Impl{im}, Checks(), Filter{reference.B14, reference.C6, reference.B9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	status := map[reference.Behavior]Status{}
	for _, r := range mx.Rows {
		status[r.ID] = r.Cells[0].Status
	}
	want := map[reference.Behavior]Status{reference.B14: NotChecked, reference.C6: NotChecked, reference.B9: Conforms}
	for b, w := range want {
		if status[b] != w {
			t.Errorf("%v: %v, want %v", b, status[b], w)
		}
	}
	un := mx.Unchecked()
	if len(un) != 2 { // B14's tcpResetOnIdle check and C6's
		t.Fatalf("Unchecked() = %d results, want 2", len(un))
	}
	for _, r := range un {
		if r.Status != NotChecked || r.Verdict() != "not checked (lacks reset-on-idle)" || len(r.Transcript) != 0 {
			t.Errorf("%s: status %v, verdict %q, %d steps; want not checked (lacks reset-on-idle), nothing run", r.Check.Text(), r.Status, r.Verdict(), len(r.Transcript))
		}
	}
	if !mx.Conforms() || len(mx.Failing()) != 0 {
		t.Errorf("Conforms() = %v, %d failing; want true, 0 (nothing failed)", mx.Conforms(), len(mx.Failing()))
	}
	var term, junit strings.Builder
	if err := mx.WriteTerminal(&term); err != nil {
		t.Fatal(err)
	}
	if err := mx.WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, out, want string
	}{
		{"matrix cell", term.String(), "not checked (lacks reset-on-idle): 1 of 2 checks"},
		{"evidence", term.String(), "C6: with tcpResetOnIdle"},
		{"junit", junit.String(), `<skipped message="not checked (lacks reset-on-idle)"`},
	} {
		if !strings.Contains(tc.out, tc.want) {
			t.Errorf("%s lacks %q:\n%s", tc.name, tc.want, tc.out)
		}
	}
	if strings.Contains(term.String(), "deviates") {
		t.Errorf("a check not run reads deviates:\n%s", term.String())
	}
}

// TestKnownDeviations: on an implementation whose profile documents a
// difference (Impl.Known), a failing check of that behaviour reads
// deviates with the documented text, a failing check of another
// behaviour reads fails, and a check of the known behaviour that passes
// reads conforms.
func TestKnownDeviations(t *testing.T) {
	var rst Mutant
	for _, m := range Mutants() {
		if m.Name == "mutant:rst-hold-14s" {
			rst = m
		}
	}
	const why = "this NAT holds a reset flow 14 s"
	known := rst.Impl
	known.Known = map[reference.Behavior]string{reference.B11: why}
	unknown := rst.Impl
	unknown.Known = map[reference.Behavior]string{reference.B10: why}
	byTitle := func(prefix string) Check {
		t.Helper()
		for _, c := range Checks() {
			if strings.HasPrefix(c.Text(), prefix) {
				return c
			}
		}
		t.Fatalf("no check %q", prefix)
		return Check{}
	}
	failing := byTitle("B11: a RST from inside at 5 s releases the flow at 20 s")
	passing := byTitle("B11: a RST late after a FIN does not lengthen the FIN timer")
	for _, tc := range []struct {
		name    string
		im      Impl
		c       Check
		status  Status
		message string
	}{
		{"known behaviour, failing", known, failing, Deviates, "known difference: " + why},
		{"other behaviour known, failing", unknown, failing, Fails, "at T − ε the slot is still held"},
		{"known behaviour, passing", known, passing, Conforms, ""},
	} {
		r := Run(context.Background(), tc.im, tc.c)
		if r.Status != tc.status || !strings.Contains(r.Message, tc.message) || (tc.message == "" && r.Message != "") {
			t.Errorf("%s: %v %q, want %v with %q", tc.name, r.Status, r.Message, tc.status, tc.message)
		}
	}
	mx, err := Verify(context.Background(), []Impl{known}, Checks(), Filter{reference.B11}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(mx.Rows) != 1 || mx.Rows[0].Cells[0].Status != Deviates || !mx.Conforms() {
		t.Errorf("B11 row on the known mutant: %+v, want deviates (and the matrix conforms)", mx.Rows)
	}
}
