package replay

import (
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// plotDir keeps the plots TestPlotAtScale draws, as PNG, to look at them:
// go test ./replay -run PlotAtScale -plotdir /tmp/plots
var plotDir = flag.String("plotdir", "", "also write TestPlotAtScale's plots as PNG files to this folder")

// scaleCapture is a capture of n instances over span: instance i opens
// flows to a few servers at a steady pace, the first instance twice as
// many as its ports in a burst mid-capture (so it is refused, B9), and every flow is reset 30 s
// after it opens (B11: its port comes back 15 s later).
func scaleCapture(tb testing.TB, n int, span time.Duration, perInstance int) string {
	tb.Helper()
	var ps []synthPacket
	flows := 6
	for i := range n {
		inside := netip.AddrFrom4([4]byte{10, byte(1 + i>>16), byte(i >> 8), byte(i)})
		k := flows
		if i == 0 {
			k = 2 * perInstance
		}
		for j := range k {
			at := time.Duration(j+1)*span/time.Duration(k+2) + time.Duration(i)*time.Millisecond
			if i == 0 { // a burst in the middle
				at = span/2 + time.Duration(j)*time.Millisecond
			}
			src := netip.AddrPortFrom(inside, uint16(20000+j))
			dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, 10}), 443)
			ps = append(ps, synthPacket{at: at, src: src, dst: dst, proto: reference.TCP, flags: reference.SYN},
				synthPacket{at: at + 30*time.Second, src: src, dst: dst, proto: reference.TCP, flags: reference.RST})
		}
	}
	sortSynth(ps)
	return synthFile(tb, ps)
}

func sortSynth(ps []synthPacket) {
	// Stable by time: packets of one instance keep their order.
	slices.SortStableFunc(ps, func(a, b synthPacket) int { return cmp.Compare(a.at, b.at) })
}

// TestPlotAtScale draws the usage plot of 1, 50 and 20,000 instances over
// short and long captures and checks what an engineer reads off it: the
// title names the file (not its folder), the time axis reads h:mm:ss for
// a long capture, the exhausted instance comes first with its refusal
// marked, and past maxPlotLines instances the rest is one line.
func TestPlotAtScale(t *testing.T) {
	for _, tc := range []struct {
		name        string
		instances   int
		span        time.Duration
		perInstance int
		frontends   int
		want        []string
		wantNot     []string
	}{
		{"1-instance-40s", 1, 40 * time.Second, 8, 1,
			[]string{"instance 0 (10.1.0.0) tcp: 16 refused", "first refused flow (B9)", "(seconds)", "allocation per instance: 8 ports"}, []string{"the other"}},
		{"50-instances-3h", 50, 3 * time.Hour, 64, 1,
			[]string{"instance 0 (10.1.0.0) tcp: 128 refused", "the other 42: highest in use", "(h:mm:ss)", "1:00:00", "1:45:00"}, nil},
		{"20000-instances-10min", 20000, 10 * time.Minute, 8, 3,
			[]string{"instance 0 (10.1.0.0) tcp: 16 refused", "the other 19992: highest in use", "(h:mm:ss)", "5:00"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && tc.instances > 1000 {
				t.Skip("-short: 20,000 instances")
			}
			path := scaleCapture(t, tc.instances, tc.span, tc.perInstance)
			cfg := Config{Engine: reference.Config{PortsPerInstance: tc.perInstance}, Backends: mustBackends(t, "10.0.0.0/8"), Workers: 1}
			for i := range tc.frontends {
				cfg.Engine.Frontends = append(cfg.Engine.Frontends, netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}))
			}
			res, err := Run([]string{path}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var svg bytes.Buffer
			if err := WritePlotTo(&svg, "svg", res); err != nil {
				t.Fatal(err)
			}
			doc := svg.String()
			if !strings.Contains(doc, "SNAT ports in use: synth.pcap<") {
				t.Errorf("the title is not the file's base name alone")
			}
			for _, w := range tc.want {
				if !strings.Contains(doc, w) {
					t.Errorf("the plot lacks %q", w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(doc, w) {
					t.Errorf("the plot has %q", w)
				}
			}
			if n := len(regexp.MustCompile(`instance \d+ \(10\.[0-9.]+\) (tcp|udp)`).FindAllString(doc, -1)); n > maxPlotLines {
				t.Errorf("the legend names %d instance lines, want at most %d", n, maxPlotLines)
			}
			if strings.Contains(doc, "e+0") {
				t.Errorf("an axis label is in scientific notation")
			}
			if *plotDir != "" {
				if err := WritePlot(filepath.Join(*plotDir, tc.name+".png"), res); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func mustBackends(tb testing.TB, s string) []netip.Prefix {
	tb.Helper()
	p, err := ParseBackends(s)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestElapsedTicks: the time axis's labels, short and long.
func TestElapsedTicks(t *testing.T) {
	for _, tc := range []struct {
		span   time.Duration
		lo, hi float64
		want   string
	}{
		{40 * time.Second, 0, 40, "0 5 10 15 20 25 30 35 40"},
		{1500 * time.Millisecond, 0, 1.5, "0 0.2 0.4 0.6 0.8 1 1.2 1.4"},
		{10 * time.Minute, 0, 600, "0:00 2:00 4:00 6:00 8:00 10:00"},
		{3 * time.Hour, 0, 3 * 3600, "0:00 30:00 1:00:00 1:30:00 2:00:00 2:30:00 3:00:00"},
	} {
		var got []string
		for _, tk := range (elapsedTicker{span: tc.span}).Ticks(tc.lo, tc.hi) {
			got = append(got, tk.Label)
		}
		if s := strings.Join(got, " "); s != tc.want {
			t.Errorf("ticks of %v over [%g, %g] = %q, want %q", tc.span, tc.lo, tc.hi, s, tc.want)
		}
	}
}

// TestPlotTitle: base names, at most two, then a count.
func TestPlotTitle(t *testing.T) {
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{[]string{"/very/long/path/a.pcap"}, "a.pcap"},
		{[]string{"/x/a.pcap", "y/b.pcapng"}, "a.pcap, b.pcapng"},
		{[]string{"a", "b", "c"}, "a, b, c"},
		{[]string{"a", "b", "c", "d", "e"}, "a, b, and 3 more"},
	} {
		if got := plotTitle(tc.files); got != tc.want {
			t.Errorf("plotTitle(%q) = %q, want %q", tc.files, got, tc.want)
		}
	}
}

var _ = fmt.Sprint
var _ = os.Getenv
