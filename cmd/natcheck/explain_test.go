package main

import (
	"os"
	"strings"
	"testing"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// TestBehavioursDocInSync: docs/behaviours.md is what
// "natcheck explain --markdown" prints (go generate ./cmd/natcheck
// rewrites it).
func TestBehavioursDocInSync(t *testing.T) {
	want, err := os.ReadFile("../../docs/behaviours.md")
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, "explain", "--markdown")
	if r.code != exitOK {
		t.Fatalf("natcheck explain --markdown: %s", r)
	}
	if r.stdout != string(want) {
		t.Errorf("docs/behaviours.md differs from natcheck explain --markdown: run go generate ./cmd/natcheck")
	}
}

// TestExplain: each behaviour printed with its text, profile and the
// checks that test it; IDs in any case, profiles by name.
func TestExplain(t *testing.T) {
	r := run(t, "explain", "b9", "C5")
	for _, want := range []string{
		"B9  exhaustion", "profile azure-lb, documented behaviour", "first packet is dropped",
		"checked by (natcheck verify --behaviors B9):", "an instance is exhausted even when other instances have free ports",
		"C5  mid-stream pick-up", "engine convention", "strict mode creates TCP flows only on a SYN",
	} {
		if r.code != exitOK || !strings.Contains(r.stdout, want) {
			t.Errorf("natcheck explain b9 C5 lacks %q:\n%s", want, r)
		}
	}
	r = run(t, "explain", "linux")
	if r.code != exitOK || strings.Count(r.stdout, "profile linux, documented behaviour") != 11 {
		t.Errorf("natcheck explain linux: want the 11 L items:\n%s", r)
	}
	r = run(t, "explain")
	for _, id := range []string{"B1 ", "B16", "C9", "L11", "G8", "R7"} {
		if !strings.Contains(r.stdout, "  "+id) {
			t.Errorf("natcheck explain: the index lacks %s:\n%s", id, r)
		}
	}
}

// TestCatalogueCoversEveryBehaviour: every behaviour ID the engine and
// the specs cite has a catalogue entry with a title and a text, and every
// check's ID is explained.
func TestCatalogueCoversEveryBehaviour(t *testing.T) {
	for _, b := range reference.Behaviors() {
		a, ok := b.About()
		if !ok || a.Title == "" || len(a.Text) < 40 || a.Profile == "" {
			t.Errorf("%s: catalogue entry %+v", b, a)
		}
		if a.Convention == b.Documented() {
			t.Errorf("%s: convention %v, but Documented() = %v", b, a.Convention, b.Documented())
		}
	}
	for _, c := range specs.Checks() {
		if c.ID.Title() == "" {
			t.Errorf("check %q cites %s, which the catalogue lacks", c.Text(), c.ID)
		}
	}
	for _, b := range reference.Behaviors() {
		if a, _ := b.About(); a.Profile != b.Profile() || a.ID != b {
			t.Errorf("%s: catalogue entry %+v names another ID or profile", b, a)
		}
	}
	if _, ok := reference.NoBehavior.About(); ok {
		t.Errorf("NoBehavior has a catalogue entry")
	}
}

// TestVerifyMatrix: the matrix names behaviours with their titles, a cell
// says how many checks of how many, more than three implementations give
// one row each, and --list names the mutants.
func TestVerifyMatrix(t *testing.T) {
	r := run(t, "verify", "--behaviors", "B11", "--impl", "reference,mutant:rst-hold-14s")
	for _, want := range []string{"B11 RST: released 15 s later", "conforms: 6 checks", "fails: 5 of 6 checks fail"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("natcheck verify lacks %q:\n%s", want, r)
		}
	}
	r = run(t, "verify", "--behaviors", "B7,B11", "--impl", "reference,mutant:rst-hold-14s,mutant:udp-full-tuple,mutant:no-port-reuse")
	for _, want := range []string{"Implementation", "mutant:rst-hold-14s", "2 of 2 behaviours", "| B11 "} {
		if !strings.Contains(strings.ReplaceAll(r.stdout, "│", "|"), want) {
			t.Errorf("natcheck verify (4 implementations) lacks %q:\n%s", want, r)
		}
	}
	r = run(t, "verify", "--list")
	if r.code != exitOK || !strings.Contains(r.stdout, "mutant:rst-hold-14s") || !strings.Contains(r.stdout, "(breaks B11)") {
		t.Errorf("natcheck verify --list: %s", r)
	}
	if n := strings.Count(r.stdout, "mutant:"); n != len(specs.Mutants()) {
		t.Errorf("natcheck verify --list names %d mutants, want %d", n, len(specs.Mutants()))
	}
}
