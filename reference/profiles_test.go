package reference_test

import (
	"testing"
	"time"

	"github.com/natcheck/natcheck/internal/profilecheck"
	. "github.com/natcheck/natcheck/reference"
)

// profilesUnderTest are the profiles whose engine is compared with a
// model of their own (azure-lb's is model_test.go's).
func profilesUnderTest() []Profile {
	return []Profile{Linux(DefaultConntrack()), AzureNATGW(), RFC()}
}

// TestProfilesAgainstModels runs each profile's engine against its model
// (profilecheck.Compare) on seeded random inputs: 150 runs of 400
// operations per profile (make mutate runs this package's tests once per
// mutant: the fuzz targets of fuzz/ run the same comparison longer). It
// is here rather than in fuzz/ so that the profiles' strategies
// (ctrack.go, rfc.go, the pickers of pick.go) are run by this package's
// tests, and mutation testing (make mutate) counts the mutants in them.
// A failure names the seed; Compare on the same bytes (profilecheck.Input)
// replays it.
func TestProfilesAgainstModels(t *testing.T) {
	for _, p := range profilesUnderTest() {
		t.Run(p.Name, func(t *testing.T) {
			for seed := range uint64(150) {
				if err := profilecheck.Compare(p, profilecheck.Input(seed, 3+4*400)); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			}
		})
	}
}

// TestProfileInvariants checks profilecheck.Invariants (inventories,
// unique endpoints per key, no inside address leaving, flow counts,
// determinism) on 25 seeded random inputs per profile (each check costs
// more than a comparison: it rebuilds the live flows' keys after every
// operation).
func TestProfileInvariants(t *testing.T) {
	for _, p := range profilesUnderTest() {
		t.Run(p.Name, func(t *testing.T) {
			for seed := range uint64(25) {
				if err := profilecheck.Invariants(p, profilecheck.Input(seed+1000, 3+4*400)); err != nil {
					t.Fatalf("seed %d: %v", seed+1000, err)
				}
			}
		})
	}
}

// TestProfileRunsReachICMPErrors: the seeded inputs of
// TestProfilesAgainstModels send ICMP errors both ways, and under linux
// and rfc some are translated and some dropped, so the comparison of L10's
// and R6's errors with the models is not vacuous.
func TestProfileRunsReachICMPErrors(t *testing.T) {
	for _, p := range []Profile{Linux(DefaultConntrack()), RFC()} {
		t.Run(p.Name, func(t *testing.T) {
			counts := map[[2]int]int{} // [direction, action]
			for seed := range uint64(150) {
				err := profilecheck.Run(p, profilecheck.Input(seed, 3+4*400), nil, func(Config, *Engine) (profilecheck.Hooks, error) {
					return profilecheck.Hooks{
						Packet: func(pk Packet, v Verdict, _ []Packet) error {
							if pk.Embedded != nil {
								counts[[2]int{int(pk.Dir), int(v.Action)}]++
							}
							return nil
						},
						Advance: func(time.Time, []Packet) error { return nil },
					}, nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range []Dir{Outbound, Inbound} {
				for _, a := range []Action{Translated, Dropped} {
					if n := counts[[2]int{int(d), int(a)}]; n < 10 {
						t.Errorf("%v ICMP errors %v: %d, want at least 10", d, a, n)
					}
				}
			}
		})
	}
}
