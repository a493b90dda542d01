package reference_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// A pool of two instances behind one frontend IP, under an outbound rule
// of 8 ports each: the ninth concurrent connection of instance 0 to one
// server is refused (B9), while instance 1 still connects (B5).
func Example() {
	e, err := reference.New(reference.Config{
		Frontends:        []netip.Addr{netip.MustParseAddr("203.0.113.1")},
		Backends:         []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")},
		PortsPerInstance: 8,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	server := netip.MustParseAddrPort("198.51.100.10:443")
	syn := func(at time.Duration, inside string) reference.Verdict {
		p := reference.Packet{Time: t0.Add(at), Flags: reference.SYN,
			Tuple: reference.Tuple{Proto: reference.TCP, Src: netip.MustParseAddrPort(inside), Dst: server}}
		v, _, err := e.Process(p, nil)
		if err != nil {
			fmt.Println(err)
		}
		return v
	}
	for i := range 9 {
		v := syn(time.Duration(i)*time.Millisecond, fmt.Sprintf("10.0.0.1:%d", 40000+i))
		if v.Action == reference.Translated {
			fmt.Printf("flow %d: %s via %s\n", i+1, v.Action, v.Tuple.Src)
		} else {
			fmt.Printf("flow %d: %s, %s (%s: %s)\n", i+1, v.Action, v.Reason, v.Behavior, v.Behavior.Title())
		}
	}
	v := syn(10*time.Millisecond, "10.0.0.2:40000")
	fmt.Printf("instance 1: %s via %s\n", v.Action, v.Tuple.Src)
	// Output:
	// flow 1: translated via 203.0.113.1:1024
	// flow 2: translated via 203.0.113.1:1025
	// flow 3: translated via 203.0.113.1:1026
	// flow 4: translated via 203.0.113.1:1027
	// flow 5: translated via 203.0.113.1:1028
	// flow 6: translated via 203.0.113.1:1029
	// flow 7: translated via 203.0.113.1:1030
	// flow 8: translated via 203.0.113.1:1031
	// flow 9: dropped, exhausted (B9: exhaustion)
	// instance 1: translated via 203.0.113.1:1032
}

// PlanFor shows an allocation without building an engine: ten instances
// on one frontend IP under an outbound rule of 6,400 ports each (B4).
func ExamplePlanFor() {
	pl, err := reference.PlanFor(reference.Config{
		Frontends:        []netip.Addr{netip.MustParseAddr("203.0.113.1")},
		PoolSize:         10,
		PortsPerInstance: 6400,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, in := range pl.Instances[:2] {
		r := in.Ranges[0]
		fmt.Printf("instance %d: %d ports, %s:%d-%d\n", in.Index, in.Ports, r.IP, r.First, r.Last)
	}
	fmt.Println("largest pool:", pl.MaxPool)

	// One port more per instance is refused, with the rule it breaks.
	_, err = reference.PlanFor(reference.Config{
		Frontends:        []netip.Addr{netip.MustParseAddr("203.0.113.1")},
		PoolSize:         10,
		PortsPerInstance: 6408,
	})
	fmt.Println(err)
	// Output:
	// instance 0: 6400 ports, 203.0.113.1:1024-7423
	// instance 1: 6400 ports, 203.0.113.1:7424-13823
	// largest pool: 10
	// config: ports per instance 6408: 10 instances × 6408 ports = 64080 exceeds 1 frontend IP(s) × 64000 = 64000; at most 6400 per instance (B4)
}
