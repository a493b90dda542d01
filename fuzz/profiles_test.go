package fuzz

import (
	"testing"

	"github.com/natcheck/natcheck/internal/profilecheck"
	"github.com/natcheck/natcheck/reference"
)

// reference/'s own tests run profilecheck.Compare and
// profilecheck.Invariants on seeded random inputs in every make test
// (TestProfilesAgainstModels, TestProfileInvariants); these targets fuzz
// the same checks.

func fuzzProfile(f *testing.F, p reference.Profile, check func(reference.Profile, []byte) error) {
	for seed := range uint64(8) {
		f.Add(profilecheck.Input(seed, 3+4*64))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := check(p, data); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzLinuxVsModel, FuzzNATGWVsModel and FuzzRFCVsModel compare each
// profile's engine with its model (profilecheck.Compare) on fuzzed inputs.
func FuzzLinuxVsModel(f *testing.F) {
	fuzzProfile(f, reference.Linux(reference.DefaultConntrack()), profilecheck.Compare)
}

func FuzzNATGWVsModel(f *testing.F) { fuzzProfile(f, reference.AzureNATGW(), profilecheck.Compare) }

func FuzzRFCVsModel(f *testing.F) { fuzzProfile(f, reference.RFC(), profilecheck.Compare) }

// FuzzLinuxInvariants, FuzzNATGWInvariants and FuzzRFCInvariants check
// the invariants of profilecheck.Invariants on fuzzed inputs.
func FuzzLinuxInvariants(f *testing.F) {
	fuzzProfile(f, reference.Linux(reference.DefaultConntrack()), profilecheck.Invariants)
}

func FuzzNATGWInvariants(f *testing.F) {
	fuzzProfile(f, reference.AzureNATGW(), profilecheck.Invariants)
}

func FuzzRFCInvariants(f *testing.F) { fuzzProfile(f, reference.RFC(), profilecheck.Invariants) }
