package topology_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/device/sandbox/sandboxtest"
	"github.com/natcheck/natcheck/device/topology"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/frame"
)

func TestMain(m *testing.M) { sandboxtest.Main(m) }

// TestRoutesThroughNAT: with no NAT rules, a frame from the inside to a
// server leaves on the outside unchanged but for the TTL (one hop), and the
// server's answer to the inside address comes back on the inside; a frame
// to an address routed nowhere in particular still goes out the default
// route, never back in.
func TestRoutesThroughNAT(t *testing.T) {
	sandboxtest.Require(t, nil)
	topo, err := topology.New()
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Close()
	if err := topo.RouteInside([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	tuple := reference.Tuple{Proto: reference.UDP, Src: netip.MustParseAddrPort("10.0.0.7:5000"), Dst: netip.MustParseAddrPort("198.51.100.1:53")}
	for _, tc := range []struct {
		from, to *link.Endpoint
		dst      []byte
		tuple    reference.Tuple
	}{
		{topo.In, topo.Out, topo.NATInside.MAC, tuple},
		{topo.Out, topo.In, topo.NATOutside.MAC, tuple.Reverse()},
	} {
		ts, err := tc.from.Send(link.AppendFrame(nil, tc.from.MAC, tc.dst, link.Segment{Tuple: tc.tuple, Payload: []byte("x")}))
		if err != nil {
			t.Fatal(err)
		}
		if ts.IsZero() || time.Since(ts) > time.Second {
			t.Errorf("kernel timestamp of the sent frame: %v", ts)
		}
		data, _, ok, err := tc.to.Recv()
		if err != nil || !ok {
			t.Fatalf("%v: nothing came out on %s at once (ok %v, err %v)", tc.tuple, tc.to.Name, ok, err)
		}
		var f frame.Frame
		if err := frame.Decode(layers.LinkTypeEthernet, data, &f); err != nil {
			t.Fatal(err)
		}
		if f.Tuple() != tc.tuple || f.TTL != 63 {
			t.Errorf("out on %s: %v TTL %d, want %v TTL 63", tc.to.Name, f.Tuple(), f.TTL, tc.tuple)
		}
	}
}

// BenchmarkTopologySetup times building and removing one topology (three
// namespaces, two veth pairs, endpoints, routes): what every check of a
// live device pays once.
func BenchmarkTopologySetup(b *testing.B) {
	sandboxtest.Require(b, nil)
	b.ReportAllocs()
	start := time.Now()
	for range b.N {
		topo, err := topology.New()
		if err != nil {
			b.Fatal(err)
		}
		topo.Close()
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/topology")
}

// TestSendStampsAreTheKernels: what a check's timing is judged from is the
// kernel's timestamp of the frame as it left in0 (SO_TIMESTAMPNS on the
// tap socket), not a clock read around the system call. SendAt sends at
// its wall time or after, never before, and the stamp it returns is no
// later than the far side's kernel receive stamp of the same frame after
// the NAT namespace forwarded it, which a clock read after write
// returned would be (veth delivers within the sender's system call).
func TestSendStampsAreTheKernels(t *testing.T) {
	sandboxtest.Require(t, nil)
	topo, err := topology.New()
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Close()
	if err := topo.RouteInside([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	tuple := reference.Tuple{Proto: reference.UDP, Src: netip.MustParseAddrPort("10.0.0.7:5000"), Dst: netip.MustParseAddrPort("198.51.100.1:53")}
	for i := range 20 {
		fr := link.AppendFrame(nil, topo.In.MAC, topo.NATInside.MAC, link.Segment{Tuple: tuple, ID: uint16(i), Payload: []byte("x")})
		at := time.Now().Add(5 * time.Millisecond)
		var sent time.Time
		if i%2 == 0 {
			sent, err = topo.In.SendAt(fr, at)
		} else {
			sent, err = topo.In.Send(fr)
			at = time.Time{}
		}
		after := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		_, got, ok, err := topo.Out.Recv()
		if err != nil || !ok {
			t.Fatalf("frame %d: nothing came out on %s (ok %v, err %v)", i, topo.Out.Name, ok, err)
		}
		if sent.IsZero() || sent.Before(at) || sent.After(got) || got.After(after) {
			t.Errorf("frame %d: scheduled %v, stamped sent %v, stamped received on the far side %v, call returned %v: want schedule ≤ sent ≤ received ≤ return",
				i, at.Format(time.StampNano), sent.Format(time.StampNano), got.Format(time.StampNano), after.Format(time.StampNano))
		}
	}
}
