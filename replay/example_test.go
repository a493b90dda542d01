package replay_test

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay"
)

// Replay a real capture (one host on a home LAN) behind an outbound rule
// of 8 ports per instance, then print the verdict of each instance. The
// instance is detected: a private address that opens flows to public ones.
func ExampleRun() {
	res, err := replay.Run([]string{"../captures/public/ndpi__anyconnect-vpn.pcap"}, replay.Config{
		Engine: reference.Config{
			Frontends:        []netip.Addr{netip.MustParseAddr("203.0.113.1")},
			PortsPerInstance: 8,
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Counts.Packets, "packets,", res.Drops["exhausted"], "new flows refused")
	for _, line := range res.Verdicts() {
		fmt.Println(line)
	}
	// Output:
	// 589 packets, 8 new flows refused
	// instance 0 (10.0.0.227): EXHAUSTED: 8 new flows refused (B9), first at packet 348 (+26.488715 s); peak 3/8 TCP and 8/8 UDP ports
}

// The same result as a JSON document (docs/replay-report.schema.json).
func ExampleWriteJSON() {
	res, err := replay.Run([]string{"../captures/public/ndpi__anyconnect-vpn.pcap"}, replay.Config{
		Engine: reference.Config{Frontends: []netip.Addr{netip.MustParseAddr("203.0.113.1")}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := replay.WriteJSON(os.Stdout, res); err != nil {
		fmt.Println(err)
	}
}
