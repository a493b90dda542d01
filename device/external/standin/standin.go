// Package standin builds the stand-in third-party NAT that tests of the
// generic device (package device/external) drive: Linux's own NAT in a
// routed namespace, configured as linux-nft configures its own, that
// natcheck meets only through two links. It is for tests: every failure
// ends the test, and what it builds is removed when the test ends.
//
// It imports device/topology, device/linuxnft and reference.
package standin

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/natcheck/natcheck/device/linuxnft"
	"github.com/natcheck/natcheck/device/topology"
	"github.com/natcheck/natcheck/reference"
)

// Gateway is the stand-in's inside address, the instances' router.
var Gateway = netip.MustParseAddr("10.0.0.254")

// New builds a routed nat namespace (Gateway inside, 203.0.113.1/24
// outside, default route via 203.0.113.254, neighbours by ARP) whose
// nftables SNAT is configured as linux-nft configures its own for cfg
// (cfg.Profile included) at time scale k. Nothing of it reaches natcheck's
// generic device but frames on topo.In and topo.Out.
func New(tb testing.TB, cfg reference.Config, k int) *topology.Topology {
	tb.Helper()
	topo, err := topology.NewRouted(topology.Routed{
		Inside:  netip.PrefixFrom(Gateway, 24),
		Outside: []netip.Prefix{netip.MustParsePrefix("203.0.113.1/24")},
		Gateway: netip.MustParseAddr("203.0.113.254"),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { topo.Close() })
	rules, err := linuxnft.Install(topo.NAT, topo.NATInside.Index, topo.NATOutside.Index, cfg, k)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rules.Close() })
	return topo
}

// ForgetNeighbours empties the nat namespace's neighbour table, so that
// the stand-in must ask by ARP for every host it sends to next (a device
// attached after the NAT learnt its neighbours must answer those
// requests).
func ForgetNeighbours(tb testing.TB, topo *topology.Topology) {
	tb.Helper()
	neigh, err := topo.NATHandle.NeighList(0, netlink.FAMILY_V4)
	if err != nil {
		tb.Fatal(err)
	}
	for _, n := range neigh {
		if err := topo.NATHandle.NeighDel(&n); err != nil {
			tb.Fatal(err)
		}
	}
}
