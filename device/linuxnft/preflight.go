package linuxnft

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"

	"github.com/natcheck/natcheck/device/sandbox"
	"github.com/natcheck/natcheck/device/topology"
	"github.com/natcheck/natcheck/reference"
)

// ErrPreflight is matched by the error of Preflight.
var ErrPreflight = errors.New("linux-nft preflight")

// Preflight checks, inside the sandbox, everything the device needs —
// namespaces, veth, AF_PACKET, nftables with NAT chains and SNAT,
// conntrack netlink, per-namespace conntrack sysctls — and names
// everything missing in one error (errors.Is(err, ErrPreflight)).
func Preflight() error {
	if !sandbox.Inside() {
		return fmt.Errorf("%w: not inside natcheck's sandbox", ErrPreflight)
	}
	var missing []string
	topo, err := topology.New()
	if err != nil {
		missing = append(missing, "network namespaces with veth pairs and AF_PACKET sockets (kernel modules veth, af_packet): "+err.Error())
		return fmt.Errorf("%w: %s", ErrPreflight, strings.Join(missing, "; "))
	}
	defer topo.Close()
	err = topo.NAT.Do(func() error {
		_, err := readTimers()
		return err
	})
	if err != nil {
		missing = append(missing, "per-namespace conntrack sysctls (kernel module nf_conntrack): "+err.Error())
	}
	// The netlink libraries lose the error of a socket refused inside a
	// namespace (mdlayher/socket v0.5.1's withNetNS returns no connection
	// and no error, and nftables.New then panics), so a netfilter netlink
	// socket is opened here first.
	err = topo.NAT.Do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("netfilter netlink socket: %w", err)
		}
		return unix.Close(fd)
	})
	if err != nil {
		missing = append(missing, "nftables netlink (kernel module nf_tables): "+err.Error(),
			"conntrack netlink (kernel module nf_conntrack_netlink): "+err.Error())
		return fmt.Errorf("%w: missing %s", ErrPreflight, strings.Join(missing, "; "))
	}
	conn, err := nftables.New(nftables.WithNetNSFd(topo.NAT.Fd()), nftables.AsLasting())
	if err != nil {
		missing = append(missing, "nftables netlink (kernel module nf_tables): "+err.Error())
	} else {
		defer conn.CloseLasting()
		plan := reference.Plan{Instances: []reference.InstancePlan{{Inside: netip.MustParseAddr("10.0.0.1"), Ports: 8,
			Ranges: []reference.PortRange{{IP: netip.MustParseAddr("203.0.113.1"), First: 1024, Last: 1031}}}}}
		rs := ruleset{inIndex: uint32(topo.NATInside.Index), outIndex: uint32(topo.NATOutside.Index), frontends: []netip.Addr{netip.MustParseAddr("203.0.113.1")}, plan: plan}
		if err := rs.install(conn); err != nil {
			missing = append(missing, "nftables NAT chains, SNAT, ct state, counters and sets (kernel modules nf_nat, nft_chain_nat, nft_nat, nft_ct, nft_counter): "+err.Error())
		}
	}
	ct, err := conntrack.Dial(&netlink.Config{NetNS: topo.NAT.Fd()})
	if err != nil {
		missing = append(missing, "conntrack netlink (kernel module nf_conntrack_netlink): "+err.Error())
	} else {
		defer ct.Close()
		if _, err := ct.Dump(nil); err != nil {
			missing = append(missing, "conntrack netlink dump (kernel module nf_conntrack_netlink): "+err.Error())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrPreflight, strings.Join(missing, "; "))
	}
	return nil
}
