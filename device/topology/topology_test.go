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
