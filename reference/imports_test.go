package reference

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestImportsOnlyTheStandardLibrary: the engine users run is built from
// the standard library alone: no packet library, and no test hook from
// one of natcheck's internal packages (negative-control mutants live
// outside it). It asks the go command, as a reviewer would.
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	for _, tc := range []struct {
		args []string
		want string
	}{
		// Every package the engine depends on, directly or not, but
		// itself, that is not in the standard library: none.
		{[]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "."}, "github.com/natcheck/natcheck/reference"},
	} {
		out, err := exec.Command(goCmd, tc.args...).Output()
		if err != nil {
			t.Fatalf("go %s: %v", strings.Join(tc.args, " "), err)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("go %s = %q, want only %q", strings.Join(tc.args, " "), got, tc.want)
		}
	}
	// Its direct imports, as a cross-check that the listing above sees
	// them: each is a standard package (no dot in its first element).
	out, err := exec.Command(goCmd, "list", "-f", "{{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -f {{.Imports}}: %v", err)
	}
	imports := strings.Fields(string(out))
	if len(imports) == 0 {
		t.Fatal("go list reports no imports at all")
	}
	for _, imp := range imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("reference imports %s, not a standard package", imp)
		}
	}
}
