package fuzz

import (
	"math/rand/v2"
	"testing"

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
