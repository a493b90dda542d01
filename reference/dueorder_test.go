package reference

import (
	"fmt"
	"testing"
	"time"
)

// TestReleasesAtOneNanosecondInKeyOrder: flows due at the same
// nanosecond are released in the order of (instance, outbound key), the
// order C9 fixes so that engines splitting the instances between them
// report as one engine would; not in the order they were created or filed.
// The outbound key orders by inside address, then remote address, then
// the ports: here the same inside host's flow to the lower remote address
// goes first although its inside port is the higher, and the flows were
// opened in the reverse of the order wanted.
func TestReleasesAtOneNanosecondInKeyOrder(t *testing.T) {
	h := newHarness(t, oneIP("10.0.0.1", "10.0.0.2"))
	// All opened at t0 (one nanosecond): each released at t0 + 4 min (B12).
	opened := []struct{ src, dst string }{
		{"10.0.0.2:7000", "198.51.100.1:53"}, // instance 1: last
		{"10.0.0.1:5000", "198.51.100.2:53"}, // instance 0, remote .2: third
		{"10.0.0.1:5001", "198.51.100.1:53"}, // instance 0, remote .1: first (lower remote)
		{"10.0.0.1:5002", "198.51.100.1:53"}, // instance 0, remote .1, higher port: second
	}
	for _, o := range opened {
		h.mustOut(0, UDP, o.src, o.dst, 0)
	}
	h.advance(4*time.Minute - time.Nanosecond)
	if r := h.releases(); len(r) != 0 {
		t.Fatalf("%d released at 4 min − 1 ns, want none", len(r))
	}
	h.advance(4 * time.Minute)
	var got []string
	for _, ev := range h.releases() {
		got = append(got, fmt.Sprintf("%v→%v", ev.Inside, ev.Remote))
	}
	want := []string{
		"10.0.0.1:5001→198.51.100.1:53",
		"10.0.0.1:5002→198.51.100.1:53",
		"10.0.0.1:5000→198.51.100.2:53",
		"10.0.0.2:7000→198.51.100.1:53",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("released at 4 min in the order\n%v\nwant (instance, outbound key) order\n%v", got, want)
	}
}
