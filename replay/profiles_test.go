package replay

import (
	"os"
	"strings"
	"testing"

	"github.com/natcheck/natcheck/reference"
)

// TestProfilesAnyWorkers: every profile gives byte-identical outputs
// (report, JSON, events, outside view, plot samples) for 1, 2, 3 and 8
// workers on every public capture with every private address an
// instance: linux because its port choice depends only on the flow (L2's
// probe offsets are hashed from the flow's key, its source-port reuse is
// per instance), azure-natgw and rfc because they run on one engine. The
// events cite the profile's own items.
func TestProfilesAnyWorkers(t *testing.T) {
	entries, err := os.ReadDir(public)
	if err != nil {
		t.Fatal(err)
	}
	private, _ := ParseBackends("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8")
	for _, p := range []reference.Profile{reference.Linux(reference.DefaultConntrack()), reference.AzureNATGW(), reference.RFC()} {
		t.Run(p.Name, func(t *testing.T) {
			cited := map[string]bool{}
			for _, e := range entries {
				n := e.Name()
				if !strings.HasSuffix(n, ".pcap") && !strings.HasSuffix(n, ".pcapng") {
					continue
				}
				cfg := Config{Engine: oneFrontend(0), Backends: private}
				cfg.Engine.Profile = p
				o := sameForAnyWorkers(t, []string{public + n}, cfg)
				for _, line := range strings.Split(o.ev, "\n") {
					if i := strings.Index(line, `"behavior":"`); i >= 0 {
						cited[line[i+12:i+12+strings.IndexByte(line[i+12:], '"')]] = true
					}
				}
			}
			for id := range cited {
				b, err := reference.ParseBehavior(id)
				if err != nil || b.Profile() != p.Name {
					t.Errorf("profile %s: an event cites %q, not one of its items", p.Name, id)
				}
			}
			if len(cited) == 0 {
				t.Errorf("profile %s: no event cites a behaviour", p.Name)
			}
		})
	}
}
