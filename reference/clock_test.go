package reference

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestC7LateReplyOnEitherSide: after a tcpResetOnIdle expiry (B14), a late
// server packet gets the same answer whether it was recorded on the outside
// (Process, addressed to the SNAT endpoint) or on the inside (ProcessReply,
// addressed to the inside endpoint): a RST toward the server from the SNAT
// endpoint, for one idle timeout after the release (C7); after that it is
// unsolicited (B8). The same holds for a flow reclaimed by a pool change
// (B16): dropped as released on both paths.
func TestC7LateReplyOnEitherSide(t *testing.T) {
	const server = "198.51.100.1:443"
	expiry := 4*time.Minute + 2*ms
	for _, tc := range []struct {
		name  string
		at    time.Duration
		want  Action
		why   DropReason
		isRST bool
	}{
		{"just after the expiry", expiry, Reset, DropReleased, true},
		{"one idle timeout later, less 1 ns", expiry + 4*time.Minute - time.Nanosecond, Reset, DropReleased, true},
		{"one idle timeout later", expiry + 4*time.Minute, Dropped, DropUnsolicited, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]Verdict
			var emitted [2][]Packet
			for side := range 2 {
				cfg := oneIP("10.0.0.1")
				cfg.TCPResetOnIdle = true
				h := newHarness(t, cfg)
				snat := h.mustOut(0, TCP, "10.0.0.1:1000", server, SYN)
				h.in(ms, TCP, server, snat.String(), SYN|ACK)
				h.mustOut(2*ms, TCP, "10.0.0.1:1000", server, ACK)
				h.advance(expiry)
				if len(h.emit) != 2 {
					t.Fatalf("B14 expiry emitted %v, want two RSTs", h.emit)
				}
				if side == 0 {
					got[0] = h.in(tc.at, TCP, server, snat.String(), ACK)
				} else {
					v, to, emit, err := h.e.ProcessReply(Packet{Time: t0.Add(tc.at), Tuple: Tuple{TCP, ap(server), ap("10.0.0.1:1000")}, Flags: ACK}, h.emit[:0])
					if err != nil {
						t.Fatal(err)
					}
					if tc.isRST && to != snat {
						t.Errorf("ProcessReply addressed the late reply to %v, want the flow's SNAT endpoint %v", to, snat)
					}
					got[1], h.emit = v, emit
				}
				emitted[side] = slices.Clone(h.emit)
				if tc.isRST {
					want := Packet{Time: t0.Add(tc.at), Dir: Outbound, Tuple: Tuple{TCP, snat, ap(server)}, Flags: RST | ACK}
					if len(h.emit) != 1 || h.emit[0] != want {
						t.Errorf("side %d: emitted %v, want %v", side, h.emit, want)
					}
				}
			}
			for side, v := range got {
				if v.Action != tc.want || v.Reason != tc.why {
					t.Errorf("side %d (0 outside, 1 inside): %v %v, want %v %v", side, v.Action, v.Reason, tc.want, tc.why)
				}
			}
			if fmt.Sprint(emitted[0]) != fmt.Sprint(emitted[1]) {
				t.Errorf("outside-recorded packet emitted %v, inside-recorded %v: want the same", emitted[0], emitted[1])
			}
		})
	}

	// B16: a flow reclaimed by pool growth.
	cfg := oneIP("10.0.0.1")
	h := newHarness(t, cfg)
	var snat netip.AddrPort
	for i := range 600 { // past the 512 ports the instance keeps at 51 instances
		snat = h.mustOut(0, TCP, fmt.Sprintf("10.0.0.1:%d", 1000+i), "198.51.100.1:443", SYN)
	}
	var backends []netip.Addr
	for i := range 51 {
		backends = append(backends, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}))
	}
	if err := h.e.SetPool(t0.Add(time.Second), backends, 0); err != nil {
		t.Fatal(err)
	}
	outside := h.in(2*time.Second, TCP, "198.51.100.1:443", snat.String(), ACK)
	inside, to, _, err := h.e.ProcessReply(Packet{Time: t0.Add(2 * time.Second), Tuple: Tuple{TCP, ap("198.51.100.1:443"), ap("10.0.0.1:1599")}, Flags: ACK}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for side, v := range []Verdict{outside, inside} {
		if v.Action != Dropped || v.Reason != DropReleased || v.Behavior != B16 {
			t.Errorf("reclaimed flow, side %d: %v %v %v, want dropped as released (B16)", side, v.Action, v.Reason, v.Behavior)
		}
	}
	if to != snat {
		t.Errorf("ProcessReply addressed the reclaimed flow's reply to %v, want %v", to, snat)
	}
}

// TestC9SimultaneousReleasesInCanonicalOrder: flows released at the same
// nanosecond are reported in (instance, flow) order, whatever the order
// they were created in (their slab IDs): an engine holding some instances
// reports them in the same order as one holding all.
func TestC9SimultaneousReleasesInCanonicalOrder(t *testing.T) {
	cfg := oneIP("10.0.0.1", "10.0.0.2", "10.0.0.3")
	cfg.TCPResetOnIdle = true
	h := newHarness(t, cfg)
	// Created in reverse: instance 2 first, and within instance 0 the
	// higher inside port first.
	open := []string{"10.0.0.3:5000", "10.0.0.2:5000", "10.0.0.1:5001", "10.0.0.1:5000"}
	for _, src := range open {
		snat := h.mustOut(0, TCP, src, "198.51.100.1:443", SYN)
		h.in(0, TCP, "198.51.100.1:443", snat.String(), SYN|ACK) // established: B14 RSTs at expiry
	}
	h.advance(4 * time.Minute)
	var got []string
	for _, ev := range h.events {
		if ev.Kind == Released || ev.Kind == ResetSent {
			got = append(got, fmt.Sprintf("%s %d %s", ev.Kind, ev.Instance, ev.Inside))
		}
	}
	want := []string{
		"reset-sent 0 10.0.0.1:5000", "released 0 10.0.0.1:5000",
		"reset-sent 0 10.0.0.1:5001", "released 0 10.0.0.1:5001",
		"reset-sent 1 10.0.0.2:5000", "released 1 10.0.0.2:5000",
		"reset-sent 2 10.0.0.3:5000", "released 2 10.0.0.3:5000",
	}
	if !slices.Equal(got, want) {
		t.Errorf("releases at one instant:\n got %q\nwant %q", got, want)
	}
	if len(h.emit) != 8 || h.emit[0].Tuple.Dst != ap("10.0.0.1:5000") || h.emit[7].Tuple.Dst != ap("198.51.100.1:443") {
		t.Errorf("emitted %v, want the RST pairs in the same order", h.emit)
	}
}

// TestMalformedPacketIsDropped: a packet whose transport header cannot be
// read is dropped with its own reason and an event, in either direction,
// and creates no flow.
func TestMalformedPacketIsDropped(t *testing.T) {
	h := newHarness(t, oneIP("10.0.0.1"))
	for _, dir := range []Dir{Outbound, Inbound} {
		tu := Tuple{TCP, netip.AddrPortFrom(ip("10.0.0.1"), 0), netip.AddrPortFrom(ip("198.51.100.1"), 0)}
		if dir == Inbound {
			tu = Tuple{TCP, netip.AddrPortFrom(ip("198.51.100.1"), 0), netip.AddrPortFrom(ip("203.0.113.1"), 0)}
		}
		v, _, err := h.e.Process(Packet{Time: t0, Dir: dir, Tuple: tu, Malformed: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if v.Action != Dropped || v.Reason != DropMalformed || v.Behavior != NoBehavior {
			t.Errorf("%v malformed: %v %v %v, want dropped as malformed", dir, v.Action, v.Reason, v.Behavior)
		}
	}
	if h.e.Flows() != 0 || h.count(PacketDropped) != 2 || h.e.Drops()[DropMalformed] != 2 {
		t.Errorf("flows %d, dropped events %d, drops %v; want none, 2, 2 malformed", h.e.Flows(), h.count(PacketDropped), h.e.Drops())
	}
	if DropMalformed.String() != "malformed" {
		t.Errorf("DropMalformed = %q", DropMalformed)
	}
}

// TestDrainReleasesEveryFlow: Drain runs the clock on to the last release
// time; each flow goes at its own time and reason.
func TestDrainReleasesEveryFlow(t *testing.T) {
	h := newHarness(t, oneIP("10.0.0.1"))
	h.mustOut(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)           // idle at 4 min
	h.mustOut(time.Second, TCP, "10.0.0.1:1001", "198.51.100.1:443", FIN) // FIN at 241 s
	h.mustOut(2*time.Second, TCP, "10.0.0.1:1002", "198.51.100.1:443", RST)
	h.mustOut(3*time.Second, UDP, "10.0.0.1:1003", "198.51.100.1:53", 0)
	end, _, err := h.e.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if end.Sub(t0) != 4*time.Minute+3*time.Second {
		t.Errorf("Drain stopped at +%v, want +4m3s (the UDP mapping's idle release, the last)", end.Sub(t0))
	}
	var got []string
	for _, ev := range h.releases() {
		got = append(got, fmt.Sprintf("%v %s", ev.Time.Sub(t0), ev.Release))
	}
	want := []string{"17s rst", "4m0s idle", "4m1s fin", "4m3s idle"}
	if !slices.Equal(got, want) || h.e.Flows() != 0 {
		t.Errorf("releases %q, %d flows left; want %q and none", got, h.e.Flows(), want)
	}
	h2 := newHarness(t, oneIP("10.0.0.1"))
	h2.advance(time.Second)
	if end, _, err := h2.e.Drain(nil); err != nil || !end.Equal(t0.Add(time.Second)) {
		t.Errorf("Drain with no flow = %v, %v; want the current time", end, err)
	}
}

// TestSetPoolKeepsTheRSTsItsClockSends: a pool change at or after an
// established flow's idle expiry fires that timer; the B14 RSTs it sends
// are not lost but returned by the next call, with the expiry's time.
func TestSetPoolKeepsTheRSTsItsClockSends(t *testing.T) {
	cfg := oneIP("10.0.0.1")
	cfg.TCPResetOnIdle = true
	h := newHarness(t, cfg)
	snat := h.mustOut(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)
	h.in(ms, TCP, "198.51.100.1:443", snat.String(), SYN|ACK)
	if err := h.e.SetPool(t0.Add(5*time.Minute), []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2")}, 0); err != nil {
		t.Fatal(err)
	}
	h.advance(5 * time.Minute)
	expiry := t0.Add(4*time.Minute + ms)
	if len(h.emit) != 2 || !h.emit[0].Time.Equal(expiry) || !h.emit[1].Time.Equal(expiry) || h.emit[1].Tuple.Src != snat {
		t.Fatalf("after the pool change, emitted %v; want the two B14 RSTs of the expiry at +4m0.001s", h.emit)
	}
	h.advance(6 * time.Minute)
	if len(h.emit) != 0 {
		t.Errorf("the RSTs came twice: %v", h.emit)
	}
}
