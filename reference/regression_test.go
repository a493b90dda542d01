package reference

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestLowestFreePortAfterRelease: once a destination needs a bitmap of
// the instance's ports (more than one flow to it), a released port is the
// lowest free again (C3), and an instance that was exhausted gets it back
// (B9). Regression: destRec.clear once left its lowest-free hint above
// the released port, so a 64-port instance stayed exhausted and a
// 128-port one picked 1089 instead of 1027.
func TestLowestFreePortAfterRelease(t *testing.T) {
	for _, tc := range []struct {
		ports, open, release int
		want                 string // the new flow's SNAT endpoint, "" when it must be refused
	}{
		{ports: 64, open: 64, release: 3, want: "203.0.113.1:1027"},
		{ports: 64, open: 64, release: 63, want: "203.0.113.1:1087"},
		{ports: 128, open: 65, release: 3, want: "203.0.113.1:1027"},
		{ports: 128, open: 128, release: 70, want: "203.0.113.1:1094"},
		{ports: 128, open: 128, release: 0, want: "203.0.113.1:1024"},
		{ports: 200, open: 200, release: 130, want: "203.0.113.1:1154"},
		{ports: 64, open: 64, release: -1, want: ""}, // nothing released: still exhausted
	} {
		t.Run(fmt.Sprintf("%d ports, %d open, release #%d", tc.ports, tc.open, tc.release), func(t *testing.T) {
			c := oneIP("10.0.0.1")
			c.PortsPerInstance = tc.ports
			h := newHarness(t, c)
			const srv = "198.51.100.1:443"
			for i := range tc.open {
				h.mustOut(0, TCP, fmt.Sprintf("10.0.0.1:%d", 1000+i), srv, SYN)
			}
			if tc.open == tc.ports {
				if v := h.out(0, TCP, "10.0.0.1:3000", srv, SYN); v.Action != Dropped || v.Reason != DropExhausted {
					t.Fatalf("flow %d: %v %v, want exhausted", tc.ports+1, v.Action, v.Reason)
				}
			}
			if tc.release >= 0 {
				h.mustOut(time.Second, TCP, fmt.Sprintf("10.0.0.1:%d", 1000+tc.release), srv, RST)
			}
			v := h.out(16*time.Second, TCP, "10.0.0.1:3001", srv, SYN)
			switch {
			case tc.want == "" && v.Action != Dropped:
				t.Errorf("new flow: %v from %v, want refused (B9)", v.Action, v.Tuple.Src)
			case tc.want != "" && (v.Action != Translated || v.Tuple.Src != ap(tc.want)):
				t.Errorf("new flow: %v from %v (%v), want translated from %s (B9, C3)", v.Action, v.Tuple.Src, v.Reason, tc.want)
			}
		})
	}
}

// TestPoolChangeKeepsLoneFlowsSlots: after a pool change moves an
// instance's blocks, a flow that is the only one to its destination but
// sits above the instance's lowest port still holds its port: new flows
// to that destination take other ports (B6). Regression: reslot once
// forgot lone flows on any slot but the first, so the second new flow
// took the lone flow's port.
func TestPoolChangeKeepsLoneFlowsSlots(t *testing.T) {
	const srv = "198.51.100.1:443"
	for _, tc := range []struct {
		name          string
		before, after int // pool sizes, default table (B3, B16)
		open, keep    int // flows opened to srv; the one kept, the others end by RST
		wantNew       []string
	}{
		{"grow 50 to 51: keeps the lower half", 50, 51, 2, 1, []string{"203.0.113.1:1024", "203.0.113.1:1026"}},
		{"grow 50 to 51, lone flow on the 4th port", 50, 51, 4, 3, []string{"203.0.113.1:1024", "203.0.113.1:1025", "203.0.113.1:1026", "203.0.113.1:1028"}},
		{"shrink 51 to 50: gains blocks", 51, 50, 2, 1, []string{"203.0.113.1:1024", "203.0.113.1:1026"}},
		{"lone flow on the first port", 50, 51, 2, 0, []string{"203.0.113.1:1025", "203.0.113.1:1026"}},
		{"ports from 1025", 50, 51, 2, 1, []string{"203.0.113.1:1025", "203.0.113.1:1027"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var all []string
			for i := range max(tc.before, tc.after) {
				all = append(all, fmt.Sprintf("10.0.%d.%d", i/250, i%250+1))
			}
			c := oneIP(all[:tc.before]...)
			if strings.Contains(tc.name, "1025") {
				c.Profile = AzureLB()
				c.Profile.FirstPort = 1025
			}
			h := newHarness(t, c)
			var kept netip.AddrPort
			for i := range tc.open {
				snat := h.mustOut(0, TCP, fmt.Sprintf("10.0.0.1:%d", 1000+i), srv, SYN)
				if i == tc.keep {
					kept = snat
				}
			}
			for i := range tc.open {
				if i != tc.keep {
					h.mustOut(time.Second, TCP, fmt.Sprintf("10.0.0.1:%d", 1000+i), srv, RST)
				}
			}
			h.advance(16 * time.Second)
			var backs []netip.Addr
			for _, a := range all[:tc.after] {
				backs = append(backs, ip(a))
			}
			if err := h.e.SetPool(t0.Add(17*time.Second), backs, 0); err != nil {
				t.Fatal(err)
			}
			if v := h.out(18*time.Second, TCP, fmt.Sprintf("10.0.0.1:%d", 1000+tc.keep), srv, ACK); v.Action != Translated || v.Tuple.Src != kept {
				t.Fatalf("the kept flow: %v from %v, want translated from %v", v.Action, v.Tuple.Src, kept)
			}
			for i, want := range tc.wantNew {
				got := h.mustOut(18*time.Second, TCP, fmt.Sprintf("10.0.0.1:%d", 2000+i), srv, SYN)
				if got == kept || got != ap(want) {
					t.Errorf("new flow %d from %v, want %s (the kept flow is on %v: B6, C3)", i+1, got, want, kept)
				}
			}
		})
	}
}
