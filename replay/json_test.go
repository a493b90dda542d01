package replay

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// reportSchema compiles docs/replay-report.schema.json, with formats
// (ipv4, date-time) asserted.
func reportSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("../docs/replay-report.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	id := doc.(map[string]any)["$id"].(string)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func validate(t *testing.T, sch *jsonschema.Schema, doc []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	return sch.Validate(v)
}

// TestJSONReportMatchesItsSchema: the report of every public capture,
// complete or partial, with and without exhaustion, is valid against the
// schema in docs; and the schema is strict enough to refuse what issue 12
// found (Go field names, nanoseconds) and a partial report without its
// reason.
func TestJSONReportMatchesItsSchema(t *testing.T) {
	sch := reportSchema(t)
	files, _ := filepath.Glob(public + "*.pcap*")
	if len(files) < 10 {
		t.Fatalf("found %d public captures", len(files))
	}
	for _, f := range files {
		for _, perInstance := range []int{0, 8} {
			res, err := Run([]string{f}, Config{Engine: oneFrontend(perInstance), Workers: 1, Drain: perInstance == 8})
			if res.Counts.Packets == 0 {
				continue
			}
			if err != nil {
				res.Partial = err.Error()
			}
			var b bytes.Buffer
			if err := WriteJSON(&b, res); err != nil {
				t.Fatal(err)
			}
			if err := validate(t, sch, b.Bytes()); err != nil {
				t.Errorf("%s (ports per instance %d): the JSON report does not match its schema: %v", filepath.Base(f), perInstance, err)
			}
			var doc map[string]any
			if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			if perInstance == 8 && len(res.Instances) > 0 && len(doc["verdicts"].([]any)) == 0 {
				t.Errorf("%s: no verdicts in the JSON report", filepath.Base(f))
			}
		}
	}

	// The schema refuses what it must.
	res, err := Run([]string{public + "ndpi__anyconnect-vpn.pcap"}, Config{Engine: oneFrontend(8), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, res); err != nil {
		t.Fatal(err)
	}
	good := b.String()
	if err := validate(t, sch, []byte(good)); err != nil {
		t.Fatalf("the exhausted replay's report: %v", err)
	}
	for _, tc := range []struct{ name, from, to string }{
		{"Go field names", `"pool_size": 1,`, `"PoolSize": 1,`},
		{"nanoseconds", `"idle_timeout_seconds": 240`, `"idle_timeout_ns": 240000000000`},
		{"partial without its reason", `"status": "complete"`, `"status": "partial"`},
		{"a reason on a complete report", `"status": "complete"`, `"status": "complete", "error": "x"`},
		{"a behaviour ID that is none", `"behavior": "B9"`, `"behavior": "nine"`},
		{"an address that is none", `"10.0.0.227"`, `"10.0.0.300"`},
	} {
		if !strings.Contains(good, tc.from) {
			t.Fatalf("%s: the report has no %q", tc.name, tc.from)
		}
		bad := strings.Replace(good, tc.from, tc.to, 1)
		if err := validate(t, sch, []byte(bad)); err == nil {
			t.Errorf("%s: the schema accepts it", tc.name)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(good), &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc["verdicts"].([]any)[0].(map[string]any), "first_exhaustion")
	bad, _ := json.Marshal(doc)
	if err := validate(t, sch, bad); err == nil {
		t.Errorf("an exhausted verdict without its first refusal: the schema accepts it")
	}
}
