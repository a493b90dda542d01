// Package sandboxtest runs a package's tests inside natcheck's sandbox
// (package device/sandbox), for tests of live devices: call [Main] from
// TestMain and [Require] at the start of each test that needs the sandbox.
// Where the sandbox cannot be made (not root and no user namespaces, a
// seccomp profile) or a preflight fails, those tests are skipped with the
// reason: a skip, never a pass.
package sandboxtest

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/natcheck/natcheck/device/sandbox"
)

// unavailable is why the tests could not enter the sandbox, if they could
// not.
var unavailable string

// Main runs m inside a sandbox: the test binary re-executes itself in one
// and exits with its code. When the sandbox cannot be made, m runs here and
// Require skips.
func Main(m *testing.M) {
	if sandbox.Inside() {
		os.Exit(m.Run())
	}
	code, err := sandbox.Enter(os.Args)
	if err != nil {
		unavailable = err.Error()
		os.Exit(m.Run())
	}
	os.Exit(code)
}

var (
	preflightOnce sync.Once
	preflightErr  error
)

// TB is what Require needs of a test: testing.TB and Ginkgo's GinkgoT()
// both have it.
type TB interface {
	Helper()
	Skip(args ...any)
}

// Require skips t unless it runs inside a sandbox whose preflight passes
// (preflight runs once per process; nil means none).
func Require(t TB, preflight func() error) {
	t.Helper()
	if !sandbox.Inside() {
		why := unavailable
		if why == "" {
			why = "the test binary did not enter the sandbox (call sandboxtest.Main from TestMain)"
		}
		t.Skip(fmt.Sprintf("SKIPPED, not passed: live device unavailable: %s", why))
	}
	if preflight == nil {
		return
	}
	preflightOnce.Do(func() { preflightErr = preflight() })
	if preflightErr != nil {
		t.Skip(fmt.Sprintf("SKIPPED, not passed: %v", preflightErr))
	}
}
