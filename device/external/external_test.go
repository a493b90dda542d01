package external_test

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/natcheck/natcheck/device/external"
	"github.com/natcheck/natcheck/device/external/standin"
	"github.com/natcheck/natcheck/device/learn"
	"github.com/natcheck/natcheck/device/linuxnft"
	"github.com/natcheck/natcheck/device/livecheck"
	"github.com/natcheck/natcheck/device/pace"
	"github.com/natcheck/natcheck/device/sandbox/sandboxtest"
	"github.com/natcheck/natcheck/device/topology"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

func TestMain(m *testing.M) { sandboxtest.Main(m) }

const scale = 10

// standIn is the stand-in NAT (package standin) configured for stated
// under profile, at time scale 10.
func standIn(t *testing.T, stated reference.Config, profile reference.Profile) *topology.Topology {
	t.Helper()
	cfg := stated
	cfg.Profile = profile
	return standin.New(t, cfg, scale)
}

// TestLinuxStandIn: the linux checks against a Linux NAT reached only
// through two interfaces, through the generic driver (ARP, calibration,
// matching by package learn): every check whose configuration is the
// device's (one frontend IP, one instance, the default allocation)
// conforms; the others are not checked, saying so (another configuration,
// or the strict mode a fixed device does not switch to).
func TestLinuxStandIn(t *testing.T) {
	sandboxtest.Require(t, linuxnft.Preflight)
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), 12))
	ct, err := linuxnft.DeviceConntrack()
	if err != nil {
		t.Fatal(err)
	}
	ct.Established = 240 * time.Second
	ct.StreamAfter *= scale // the kernel's 2 s is wall clock
	profile := reference.Linux(ct)
	stated := reference.Config{Frontends: []netip.Addr{netip.MustParseAddr("203.0.113.1")}, Backends: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}
	tol := pace.Tolerance()
	var devs []*external.Device
	for range 4 {
		topo := standIn(t, stated, profile)
		d, err := external.Attach(topo.In, topo.Out, external.Options{Stated: stated, Gateway: standin.Gateway, Scale: scale, Tolerance: tol})
		if err != nil {
			t.Fatal(err)
		}
		cal := d.Calibration()
		if cal.Fields != (learn.Fields{IPID: true}) || cal.Latency > 10*time.Millisecond {
			t.Errorf("calibration = %+v, want the IP ID kept, no sequence shift (Linux), latency under 10 ms", cal)
		}
		devs = append(devs, d)
	}
	impl := external.Impl("linux-standin", profile, devs...)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Second)
	defer cancel()
	start := time.Now()
	m, err := livecheck.Verify(ctx, impl, specs.LinuxChecks(), nil, livecheck.Options{Parallel: len(devs), Attempts: 3, LongestFirst: true, Scale: scale,
		Retry: func(err error) bool { return !errors.Is(err, pace.ErrBudget) },
		OnResult: func(r specs.Result) {
			t.Logf("%v %s: %s", time.Since(start).Round(time.Second), r.Check.Text(), r.Verdict())
		}})
	if err != nil {
		t.Fatal(err)
	}
	judged := map[reference.Behavior]int{}
	for _, row := range m.Rows {
		for _, r := range row.Cells[0].Results {
			switch {
			case r.Status == specs.Conforms:
				judged[row.ID]++
			case r.Status == specs.NotChecked && (strings.HasPrefix(r.Message, "lacks the configuration: the device's configuration is its own") || r.Message == "lacks strict"):
			default:
				t.Errorf("%s: %s", r.Check.Text(), r.Report())
			}
			for i, why := range r.Retried {
				t.Logf("%s: attempt %d: %s", r.Check.Text(), i+1, why)
			}
		}
	}
	// The device's configuration is the one most linux checks use: these
	// rows are judged, each on at least this many checks.
	for id, n := range map[reference.Behavior]int{reference.L4: 1, reference.L5: 8, reference.L6: 3, reference.L7: 4, reference.L8: 1, reference.L9: 2, reference.L10: 4, reference.L11: 2} {
		if judged[id] < n {
			t.Errorf("%v: %d checks judged, want at least %d", id, judged[id], n)
		}
	}
}
