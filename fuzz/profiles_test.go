package fuzz

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// profilesUnderTest are the profiles whose engine is compared with a
// model of their own.
func profilesUnderTest() []reference.Profile {
	return []reference.Profile{reference.Linux(reference.DefaultConntrack()), reference.AzureNATGW(), reference.RFC()}
}

// TestProfilesAgainstModels runs each profile's engine against its model
// on seeded random inputs: 300 runs of 400 operations per profile. A
// failure names the seed; CompareProfile on the same bytes replays it.
func TestProfilesAgainstModels(t *testing.T) {
	for _, p := range profilesUnderTest() {
		t.Run(p.Name, func(t *testing.T) {
			for seed := range uint64(300) {
				data := randomInput(seed, 3+4*400)
				if err := CompareProfile(p, data); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			}
		})
	}
}

// randomInput is n bytes from a PCG generator seeded with seed.
func randomInput(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x70726f66696c65))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func fuzzProfile(f *testing.F, p reference.Profile) {
	for seed := range uint64(8) {
		f.Add(randomInput(seed, 3+4*64))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := CompareProfile(p, data); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzLinuxVsModel, FuzzNATGWVsModel and FuzzRFCVsModel compare each
// profile's engine with its model (CompareProfile) on fuzzed inputs.
func FuzzLinuxVsModel(f *testing.F) { fuzzProfile(f, reference.Linux(reference.DefaultConntrack())) }

func FuzzNATGWVsModel(f *testing.F) { fuzzProfile(f, reference.AzureNATGW()) }

func FuzzRFCVsModel(f *testing.F) { fuzzProfile(f, reference.RFC()) }

// TestProfileInvariants checks profileShadow's invariants on every profile
// but azure-lb (FuzzEngineInvariants' own) over 200 seeded random inputs
// each.
func TestProfileInvariants(t *testing.T) {
	for _, p := range profilesUnderTest() {
		t.Run(p.Name, func(t *testing.T) {
			for seed := range uint64(200) {
				if err := CheckProfileInvariants(p, randomInput(seed+1000, 3+4*400)); err != nil {
					t.Fatalf("seed %d: %v", seed+1000, err)
				}
			}
		})
	}
}

func fuzzInvariants(f *testing.F, p reference.Profile) {
	for seed := range uint64(8) {
		f.Add(randomInput(seed, 3+4*64))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := CheckProfileInvariants(p, data); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzLinuxInvariants, FuzzNATGWInvariants and FuzzRFCInvariants check
// the invariants of CheckProfileInvariants on fuzzed inputs.
func FuzzLinuxInvariants(f *testing.F) {
	fuzzInvariants(f, reference.Linux(reference.DefaultConntrack()))
}

func FuzzNATGWInvariants(f *testing.F) { fuzzInvariants(f, reference.AzureNATGW()) }

func FuzzRFCInvariants(f *testing.F) { fuzzInvariants(f, reference.RFC()) }

// TestProfileRunsReachICMPErrors: the random inputs of
// TestProfilesAgainstModels send ICMP errors both ways, and under linux
// and rfc some are translated and some dropped, so the comparison of R6
// and L10's errors is not vacuous.
func TestProfileRunsReachICMPErrors(t *testing.T) {
	for _, p := range []reference.Profile{reference.Linux(reference.DefaultConntrack()), reference.RFC()} {
		t.Run(p.Name, func(t *testing.T) {
			counts := map[[2]int]int{} // [direction, action]
			for seed := range uint64(300) {
				err := runProfile(p, randomInput(seed, 3+4*400), nil, func(reference.Config, *reference.Engine) (profileHooks, error) {
					return profileHooks{
						packet: func(pk reference.Packet, v reference.Verdict, _ []reference.Packet) error {
							if pk.Embedded != nil {
								counts[[2]int{int(pk.Dir), int(v.Action)}]++
							}
							return nil
						},
						advance: func(time.Time, []reference.Packet) error { return nil },
					}, nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range []reference.Dir{reference.Outbound, reference.Inbound} {
				for _, a := range []reference.Action{reference.Translated, reference.Dropped} {
					if n := counts[[2]int{int(d), int(a)}]; n < 10 {
						t.Errorf("%v ICMP errors %v: %d, want at least 10", d, a, n)
					}
				}
			}
			t.Logf("%v", counts)
		})
	}
}
