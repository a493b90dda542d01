package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestREADMEWorkflow: the GitHub Actions matrix of README.md parses, runs
// every shard of its matrix and then the merge, and its natcheck commands,
// run from the repository's root as the workflow does, give shard reports
// that merge into the whole corpus's report with a JUnit file.
func TestREADMEWorkflow(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- workflow -->\n```yaml\n(.*?)```\n<!-- /workflow -->").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no workflow block")
	}
	var wf struct {
		Jobs map[string]struct {
			Needs    string `yaml:"needs"`
			Strategy struct {
				Matrix struct {
					Shard []int `yaml:"shard"`
				} `yaml:"matrix"`
			} `yaml:"strategy"`
			Steps []struct {
				Run string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(m[1], &wf); err != nil {
		t.Fatalf("the README's workflow does not parse: %v", err)
	}
	shard, merge := wf.Jobs["shard"], wf.Jobs["merge"]
	if len(shard.Strategy.Matrix.Shard) != 4 || merge.Needs != "shard" {
		t.Fatalf("workflow: matrix %v, merge needs %q", shard.Strategy.Matrix.Shard, merge.Needs)
	}
	dir := t.TempDir()
	t.Chdir("../..")
	// natcheckLine runs one "./natcheck ARGS > FILE" step line.
	natcheckLine := func(line string, env map[string]string) (string, int) {
		cmd, outFile, _ := strings.Cut(line, " > ")
		for k, v := range env {
			cmd = strings.ReplaceAll(cmd, k, v)
			outFile = strings.ReplaceAll(outFile, k, v)
		}
		var args []string
		for _, f := range strings.Fields(strings.TrimPrefix(cmd, "./natcheck ")) {
			f = strings.Trim(f, `"`)
			if matches, _ := filepath.Glob(filepath.Join(dir, f)); strings.Contains(f, "*") {
				args = append(args, matches...)
				continue
			}
			if strings.HasSuffix(f, ".json") || strings.HasSuffix(f, ".xml") || strings.HasPrefix(f, "/") {
				f = filepath.Join(dir, filepath.Base(f))
			}
			args = append(args, f)
		}
		out, code := runOut(t, args...)
		if outFile != "" {
			os.WriteFile(filepath.Join(dir, strings.TrimSpace(outFile)), []byte(out), 0o644)
		}
		return out, code
	}
	ran := 0
	for _, i := range shard.Strategy.Matrix.Shard {
		for _, s := range shard.Steps {
			if strings.HasPrefix(s.Run, "./natcheck ") {
				if out, code := natcheckLine(s.Run, map[string]string{"${{ matrix.shard }}": string(rune('0' + i))}); code != exitOK {
					t.Fatalf("%s (shard %d): exit %d\n%s", s.Run, i, code, out)
				}
				ran++
			}
		}
	}
	for _, s := range merge.Steps {
		if strings.HasPrefix(s.Run, "./natcheck ") {
			out, code := natcheckLine(s.Run, map[string]string{"$GITHUB_STEP_SUMMARY": "/summary.md"})
			if code != exitOK {
				t.Fatalf("%s: exit %d\n%s", s.Run, code, out)
			}
			ran++
		}
	}
	whole, code := runOut(t, "regress", "--json")
	merged, _ := os.ReadFile(filepath.Join(dir, "regress.json"))
	junit, _ := os.ReadFile(filepath.Join(dir, "regress.xml"))
	summary, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	if ran != 5 || code != exitOK || string(merged) != whole || !strings.Contains(string(junit), "<testcase ") || !strings.Contains(string(summary), "as expected") {
		t.Fatalf("ran %d natcheck steps; merged report equals the whole run's: %v; JUnit %d bytes, summary %d bytes",
			ran, string(merged) == whole, len(junit), len(summary))
	}
}
