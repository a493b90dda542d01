package specs_test

import (
	"context"
	"slices"
	"testing"

	"github.com/natcheck/natcheck/internal/modelnat"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// ids turns SEMANTICS.md IDs into behaviours.
func ids(t *testing.T, names ...string) []reference.Behavior {
	t.Helper()
	var bs []reference.Behavior
	for _, n := range names {
		b, err := reference.ParseBehavior(n)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	return bs
}

// TestAzureChecksOnOtherProfiles runs the azure-lb checks against the
// engine of every other profile: exactly the expected behaviours deviate
// (each a known difference of the profile, with its reason), the expected
// ones are not checked (every check of theirs needs a setting the profile
// has not: pool changes, tcpResetOnIdle, a protocol rule), the others
// conform, and nothing fails. For linux the expected set holds the
// differences SEMANTICS.md lists (B7, B9, B10, B11, B12, B15, C3, C5) and
// its conformances (B3–B6, B8) with the plan's rules; the others follow
// from the L items named in specs' known differences (B13, B14: the checks
// sit at azure-lb's timers; C1, C4: L2's port choice).
func TestAzureChecksOnOtherProfiles(t *testing.T) {
	for _, tc := range []struct {
		profile                      reference.Profile
		deviate, conform, notChecked []string
	}{
		{reference.Linux(reference.DefaultConntrack()),
			[]string{"B7", "B9", "B10", "B11", "B12", "B13", "B14", "B15", "C1", "C3", "C4", "C5"},
			[]string{"B1", "B2", "B3", "B4", "B5", "B6", "B8", "C2"},
			[]string{"B16", "C6", "C7"}},
		{reference.AzureNATGW(),
			[]string{"B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12", "B13", "B14", "C1", "C2", "C3", "C4", "C5"},
			nil,
			[]string{"B15", "B16", "C6", "C7"}},
		{reference.RFC(),
			[]string{"B1", "B2", "B3", "B4", "B5", "B6", "B7", "B9", "B10", "B11", "B12", "B13", "B14", "B15", "C1", "C2", "C3", "C4"},
			[]string{"B8", "C5"},
			[]string{"B16", "C6", "C7"}},
	} {
		t.Run(tc.profile.Name, func(t *testing.T) {
			mx, err := specs.Verify(context.Background(), []specs.Impl{specs.Engine(tc.profile)}, specs.Checks(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var dev, conf, unchecked []reference.Behavior
			for _, r := range mx.Rows {
				switch st := r.Cells[0].Status; st {
				case specs.Deviates:
					dev = append(dev, r.ID)
				case specs.Conforms:
					conf = append(conf, r.ID)
				case specs.NotChecked:
					unchecked = append(unchecked, r.ID)
				default:
					t.Errorf("%v %v on %s", r.ID, st, tc.profile.Name)
					for _, res := range r.Cells[0].Results {
						if res.Status == st {
							t.Logf("%s", res.Report())
						}
					}
				}
			}
			if want := ids(t, tc.deviate...); !slices.Equal(dev, want) {
				t.Errorf("deviating on %s: %v, want %v", tc.profile.Name, dev, want)
			}
			if want := ids(t, tc.conform...); !slices.Equal(conf, want) {
				t.Errorf("conforming on %s: %v, want %v", tc.profile.Name, conf, want)
			}
			if want := ids(t, tc.notChecked...); !slices.Equal(unchecked, want) {
				t.Errorf("not checked on %s: %v, want %v", tc.profile.Name, unchecked, want)
			}
			if tc.profile.Name == reference.NameLinux {
				// SEMANTICS.md "Known differences", for a Linux SNAT configured
				// per instance from the plan.
				for _, b := range ids(t, "B7", "B9", "B10", "B11", "B12", "B15", "C3", "C5") {
					if !slices.Contains(dev, b) {
						t.Errorf("SEMANTICS.md says linux deviates on %v; it does not", b)
					}
				}
				for _, b := range ids(t, "B3", "B4", "B5", "B6", "B8") {
					if !slices.Contains(conf, b) {
						t.Errorf("SEMANTICS.md says linux conforms on %v; it does not", b)
					}
				}
			}
		})
	}
}

// TestEachProfileConformsToItsChecks: every profile's checks conform on
// its engine and on its model, every item of the profile has a check, and
// every check cites an item of the profile.
func TestEachProfileConformsToItsChecks(t *testing.T) {
	for _, p := range []reference.Profile{reference.Linux(reference.DefaultConntrack()), reference.AzureNATGW(), reference.RFC()} {
		checks, err := specs.ChecksFor(p.Name)
		if err != nil {
			t.Fatal(err)
		}
		have := map[reference.Behavior]bool{}
		for _, c := range checks {
			have[c.ID] = true
			if c.ID.Profile() != p.Name {
				t.Errorf("%s check %q cites %v, an item of %s", p.Name, c.Title, c.ID, c.ID.Profile())
			}
		}
		for _, b := range reference.BehaviorsOf(p.Name) {
			if !have[b] {
				t.Errorf("%v has no check", b)
			}
		}
		for _, im := range []specs.Impl{specs.Engine(p), modelnat.Impl(p)} {
			mx, err := specs.Verify(context.Background(), []specs.Impl{im}, checks, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range mx.Failing() {
				if r.Status == specs.Fails || r.Check.Needs&^im.Caps == 0 {
					t.Errorf("%s", r.Report())
				}
			}
			if len(mx.Rows) != len(reference.BehaviorsOf(p.Name)) {
				t.Errorf("%s on %s: %d rows, want %d", p.Name, im.Name, len(mx.Rows), len(reference.BehaviorsOf(p.Name)))
			}
		}
	}
}
