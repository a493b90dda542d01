package reference

import (
	"fmt"
	"testing"
	"time"
)

// TestB8UDPManyPeerPorts: a UDP mapping admits replies from every port it
// has sent to and from no other (B7, B8), however many ports (here enough
// to chain several chunks of the peer store, interleaved with another
// mapping's), and a mapping created after one is released, on the same
// flow slot, inherits none of its ports.
func TestB8UDPManyPeerPorts(t *testing.T) {
	h := newHarness(t, oneIP("10.0.0.1"))
	const server = "198.51.100.1"
	// Mapping a sends to ports 1000-1011 and mapping b to 2000-2006,
	// interleaved; b then keeps sending so it outlives a.
	var a, b string
	for k := range 12 {
		a = h.mustOut(time.Duration(k)*time.Millisecond, UDP, "10.0.0.1:5000", fmt.Sprintf("%s:%d", server, 1000+k), 0).String()
		if k < 7 {
			b = h.mustOut(time.Duration(k)*time.Millisecond, UDP, "10.0.0.1:5001", fmt.Sprintf("%s:%d", server, 2000+k), 0).String()
		}
	}
	check := func(at time.Duration, snat string, port int, want Action) {
		t.Helper()
		v := h.in(at, UDP, fmt.Sprintf("%s:%d", server, port), snat, 0)
		if v.Action != want || v.Behavior != B8 {
			t.Errorf("B8 at %v: reply from port %d to %s: %v (%v), want %v", at, port, snat, v.Action, v.Behavior, want)
		}
	}
	at := time.Second
	for _, port := range []int{1000, 1001, 1004, 1005, 1010, 1011} {
		check(at, a, port, Translated)
	}
	for _, port := range []int{999, 1012, 2000, 2006} {
		check(at, a, port, Dropped)
	}
	for _, port := range []int{2000, 2003, 2006} {
		check(at, b, port, Translated)
	}
	for _, port := range []int{1000, 1011, 2007} {
		check(at, b, port, Dropped)
	}
	// a idles out 4 min after its last reply (at 1 s); b is refreshed.
	h.mustOut(3*time.Minute, UDP, "10.0.0.1:5001", server+":2000", 0)
	h.advance(4*time.Minute + time.Second)
	if n := h.e.Flows(); n != 1 {
		t.Fatalf("%d live flows after a's idle timeout, want 1", n)
	}
	// c reuses a's flow slot (the engine takes the last freed one) and
	// sends to a second port, so it has peer ports of its own.
	c := h.mustOut(4*time.Minute+2*time.Second, UDP, "10.0.0.1:5002", server+":3000", 0).String()
	h.mustOut(4*time.Minute+2*time.Second, UDP, "10.0.0.1:5002", server+":3001", 0)
	at = 4*time.Minute + 3*time.Second
	check(at, c, 3000, Translated)
	check(at, c, 3001, Translated)
	for _, port := range []int{1000, 1003, 1011, 2000} {
		check(at, c, port, Dropped)
	}
	for _, port := range []int{2000, 2001, 2006} {
		check(at, b, port, Translated)
	}
}
