package replay

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// TestReportAtScale: with more instances than the report shows, the text
// report gives totals, then the instances under most pressure and every
// one that ran out of ports, in the table and in the verdicts; its header
// lists no more than a few addresses; Rows < 0 shows every instance.
func TestReportAtScale(t *testing.T) {
	// 60 addresses; address i opens i%12 flows to one server, so the 55
	// that send are instances (8 ports each), those with 9, 10 or 11 run
	// out (15 of them) and the others peak at i%12 of 8.
	var ps []synthPacket
	at := time.Duration(0)
	for i := range 60 {
		for k := range i % 12 {
			ps = append(ps, synthPacket{at: at, src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i), 1}), uint16(2000+k)),
				dst: ap("198.51.100.1:443"), proto: reference.TCP, flags: reference.SYN})
			at += time.Millisecond
		}
	}
	specs, _ := ParseBackends("10.1.0.0/16")
	res, err := Run([]string{synthFile(t, ps)}, Config{Engine: oneFrontend(8), Backends: specs, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	verdicts := res.InstanceVerdicts()
	exhausted := 0
	for _, v := range verdicts {
		if v.Exhausted {
			exhausted++
		}
	}
	if len(verdicts) != 55 || exhausted != 15 { // i%12 == 0 sends nothing
		t.Fatalf("%d instances sent traffic, %d ran out; want 55 and 15", len(verdicts), exhausted)
	}
	for _, tc := range []struct {
		rows, want int
	}{
		{5, 15},  // fewer rows than exhausted instances: every exhausted one still
		{20, 20}, // the 15 and the 5 under most pressure after them
		{54, 54},
		{55, 55}, // everything fits: no cut
		{-1, 55},
	} {
		var b bytes.Buffer
		if err := WriteTextOptions(&b, res, TextOptions{Rows: tc.rows}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		lines := strings.Split(out, "\n")
		for _, l := range lines[:6] {
			if strings.Count(l, "10.1.") > 2 {
				t.Errorf("rows %d: the header lists addresses: %q", tc.rows, l)
			}
		}
		if !strings.Contains(out, "backends [55 addresses: 10.1.1.1 … 10.1.59.1]") {
			t.Errorf("rows %d: the header does not give the 55 backends as a count, the first and the last", tc.rows)
		}
		cut := tc.want < 55
		if got := strings.Contains(out, "totals: 55 instances sent traffic, 300 flows; 15 ran out of ports (B9), 30 new flows refused"); got != cut {
			t.Errorf("rows %d: totals line present %v, want %v", tc.rows, got, cut)
		}
		// The verdict lines name the shown instances.
		shown := map[string]bool{}
		for _, l := range lines[slicesIndex(lines, "verdict per instance:")+1:] {
			if strings.HasPrefix(l, "  instance ") {
				shown[strings.Fields(l)[1]] = true
			}
		}
		if len(shown) != tc.want {
			t.Errorf("rows %d: %d verdict lines, want %d", tc.rows, len(shown), tc.want)
		}
		if more := fmt.Sprintf("… and %d more instances", 55-tc.want); cut != strings.Contains(out, more) {
			t.Errorf("rows %d: %q present %v, want %v", tc.rows, more, !cut, cut)
		}
		// Every exhausted instance is shown, and no instance left out has
		// more pressure than one shown.
		minShown := 2.0
		for _, v := range verdicts {
			if shown[fmt.Sprint(v.Instance)] {
				minShown = min(minShown, v.pressure())
			} else if v.Exhausted {
				t.Errorf("rows %d: exhausted instance %d left out", tc.rows, v.Instance)
			}
		}
		for _, v := range verdicts {
			if !shown[fmt.Sprint(v.Instance)] && v.pressure() > minShown {
				t.Errorf("rows %d: instance %d (pressure %.3f) left out, one of %.3f shown", tc.rows, v.Instance, v.pressure(), minShown)
			}
		}
		// The table has the shown instances' rows only (one frontend, TCP).
		rows := 0
		for _, l := range lines {
			if strings.Contains(l, "| 203.0.113.1 |") || strings.Contains(l, "│ 203.0.113.1 │") {
				rows++
			}
		}
		if rows != tc.want {
			t.Errorf("rows %d: %d table rows, want %d", tc.rows, rows, tc.want)
		}
	}
}

func slicesIndex(lines []string, s string) int {
	for i, l := range lines {
		if l == s {
			return i
		}
	}
	return len(lines) - 1
}
