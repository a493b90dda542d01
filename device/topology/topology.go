// Package topology builds the test network of a live device inside the
// sandbox: three network namespaces, inside, nat and outside, joined by two
// veth pairs (inside "in0" — "nat-in" nat, nat "nat-out" — "out0"
// outside), with link-layer endpoints on in0 and out0 from which natcheck
// injects and captures frames.
//
// The nat namespace is where a NAT runs (package device/linuxnft
// configures Linux nftables SNAT there); the inside and outside namespaces
// have no addresses: natcheck writes and reads raw frames there, so a
// backend instance or a server is any address natcheck puts in a frame.
// The nat namespace routes toward the inside and the outside through
// gateways whose link-layer addresses are permanent neighbour entries
// (in0's and out0's MACs), so no ARP is ever needed; IPv6 is off on every
// link, so nothing else is sent.
//
// It touches only namespaces it creates (package device/sandbox); it
// imports github.com/vishvananda/netlink for links, addresses, routes and
// neighbours.
package topology

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/device/sandbox"
)

// Interface names, the same in every topology (each lives in its own
// namespace).
const (
	InsideIf    = "in0"
	NATInsideIf = "nat-in"
	NATOutIf    = "nat-out"
	OutsideIf   = "out0"
)

// Gateways the nat namespace routes through: link-local next hops whose
// neighbour entries point at in0 and out0.
var (
	InsideGateway  = netip.MustParseAddr("169.254.0.1")
	OutsideGateway = netip.MustParseAddr("169.254.1.1")
)

// Topology is one inside–nat–outside network. Close removes it.
type Topology struct {
	Inside, NAT, Outside *sandbox.Namespace
	// In and Out are the endpoints on in0 and out0.
	In, Out *link.Endpoint
	// NATInside and NATOutside are the nat namespace's interfaces.
	NATInside, NATOutside Iface
	// NATHandle is a netlink handle in the nat namespace.
	NATHandle *netlink.Handle
	// Setup is how long New took.
	Setup time.Duration
}

// Iface is an interface of the nat namespace.
type Iface struct {
	Name  string
	Index int
	MAC   net.HardwareAddr
}

// New builds a topology: the namespaces, the veth pairs up, forwarding on
// in the nat namespace, IPv6 off, the gateways' neighbour entries and a
// default route toward the outside.
func New() (*Topology, error) { return build(nil) }

// Routed is the addressing of a topology whose nat namespace is an
// ordinary router, met only through its two links (a stand-in for a
// third-party device): addresses on its interfaces, neighbours found by
// ARP.
type Routed struct {
	// Inside is the nat namespace's address and prefix on the inside link
	// (its instances' subnet: 10.0.0.254/24).
	Inside netip.Prefix
	// Outside are its addresses on the outside link, the first with the
	// link's prefix (the public IPs: 203.0.113.1/24), the others /32.
	Outside []netip.Prefix
	// Gateway is its default route's next hop on the outside link.
	Gateway netip.Addr
}

// NewRouted builds a topology whose nat namespace is addressed as r says
// and finds its neighbours by ARP; natcheck's endpoints on in0 and out0
// must answer for the addresses they stand for.
func NewRouted(r Routed) (*Topology, error) { return build(&r) }

func build(r *Routed) (_ *Topology, err error) {
	start := time.Now()
	// t is not the named result: "return nil, err" must leave it set, so
	// that what was built is closed.
	t := &Topology{}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	for _, ns := range []**sandbox.Namespace{&t.Inside, &t.NAT, &t.Outside} {
		name := map[**sandbox.Namespace]string{&t.Inside: "inside", &t.NAT: "nat", &t.Outside: "outside"}[ns]
		if *ns, err = sandbox.NewNamespace(name); err != nil {
			return nil, fmt.Errorf("topology: %w", err)
		}
		if err := (*ns).Do(func() error {
			return WriteSysctls(map[string]string{
				"net/ipv6/conf/all/disable_ipv6":     "1",
				"net/ipv6/conf/default/disable_ipv6": "1",
			})
		}); err != nil {
			return nil, fmt.Errorf("topology: %s: %w", name, err)
		}
	}
	if t.NATHandle, err = netlink.NewHandleAt(t.NAT.Handle(), unix.NETLINK_ROUTE); err != nil {
		return nil, fmt.Errorf("topology: netlink in nat: %w", err)
	}
	for _, pair := range []struct {
		local, peer string
		peerNS      *sandbox.Namespace
	}{{NATInsideIf, InsideIf, t.Inside}, {NATOutIf, OutsideIf, t.Outside}} {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: pair.local, TxQLen: 1000}, PeerName: pair.peer, PeerNamespace: netlink.NsFd(pair.peerNS.Fd())}
		if err := t.NATHandle.LinkAdd(veth); err != nil {
			return nil, fmt.Errorf("topology: veth %s–%s: %w", pair.local, pair.peer, err)
		}
		if err := setUp(t.NATHandle, pair.local); err != nil {
			return nil, err
		}
		h, err := netlink.NewHandleAt(pair.peerNS.Handle(), unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("topology: netlink in %s: %w", pair.peerNS.Name, err)
		}
		err = setUp(h, pair.peer)
		h.Close()
		if err != nil {
			return nil, err
		}
	}
	if t.In, err = link.Open(t.Inside, InsideIf); err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	if t.Out, err = link.Open(t.Outside, OutsideIf); err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	for _, x := range []struct {
		name string
		dst  *Iface
		gw   netip.Addr
		mac  net.HardwareAddr
	}{{NATInsideIf, &t.NATInside, InsideGateway, t.In.MAC}, {NATOutIf, &t.NATOutside, OutsideGateway, t.Out.MAC}} {
		l, err := t.NATHandle.LinkByName(x.name)
		if err != nil {
			return nil, fmt.Errorf("topology: %s: %w", x.name, err)
		}
		*x.dst = Iface{Name: x.name, Index: l.Attrs().Index, MAC: l.Attrs().HardwareAddr}
		if r != nil {
			continue // neighbours by ARP
		}
		if err := t.NATHandle.NeighSet(&netlink.Neigh{LinkIndex: x.dst.Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT, IP: x.gw.AsSlice(), HardwareAddr: x.mac}); err != nil {
			return nil, fmt.Errorf("topology: neighbour %v on %s: %w", x.gw, x.name, err)
		}
	}
	if err := t.NAT.Do(func() error {
		return WriteSysctls(map[string]string{
			"net/ipv4/ip_forward":                 "1",
			"net/ipv4/conf/all/rp_filter":         "0",
			"net/ipv4/conf/default/rp_filter":     "0",
			"net/ipv4/conf/nat-in/rp_filter":      "0",
			"net/ipv4/conf/nat-out/rp_filter":     "0",
			"net/ipv4/conf/all/send_redirects":    "0",
			"net/ipv4/conf/nat-in/send_redirects": "0",
		})
	}); err != nil {
		return nil, fmt.Errorf("topology: nat: %w", err)
	}
	if r != nil {
		if err := t.address(r); err != nil {
			return nil, err
		}
		t.Setup = time.Since(start)
		return t, nil
	}
	if err := t.route(netip.PrefixFrom(netip.IPv4Unspecified(), 0), t.NATOutside.Index, OutsideGateway); err != nil {
		return nil, err
	}
	t.Setup = time.Since(start)
	return t, nil
}

// address gives the nat namespace r's addresses and its default route.
func (t *Topology) address(r *Routed) error {
	add := func(index int, p netip.Prefix) error {
		l, err := t.NATHandle.LinkByIndex(index)
		if err != nil {
			return fmt.Errorf("topology: %w", err)
		}
		ipnet := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
		if err := t.NATHandle.AddrAdd(l, &netlink.Addr{IPNet: ipnet}); err != nil {
			return fmt.Errorf("topology: address %v: %w", p, err)
		}
		return nil
	}
	if err := add(t.NATInside.Index, r.Inside); err != nil {
		return err
	}
	for i, p := range r.Outside {
		if i > 0 {
			p = netip.PrefixFrom(p.Addr(), 32)
		}
		if err := add(t.NATOutside.Index, p); err != nil {
			return err
		}
	}
	if err := t.NATHandle.RouteReplace(&netlink.Route{LinkIndex: t.NATOutside.Index, Gw: r.Gateway.AsSlice()}); err != nil {
		return fmt.Errorf("topology: default route via %v: %w", r.Gateway, err)
	}
	return nil
}

func setUp(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("topology: %s: %w", name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("topology: %s up: %w", name, err)
	}
	return nil
}

func (t *Topology) route(dst netip.Prefix, index int, gw netip.Addr) error {
	_, ipnet, _ := net.ParseCIDR(dst.String())
	r := &netlink.Route{LinkIndex: index, Dst: ipnet, Gw: gw.AsSlice(), Flags: int(netlink.FLAG_ONLINK)}
	if err := t.NATHandle.RouteReplace(r); err != nil {
		return fmt.Errorf("topology: route %v via %v: %w", dst, gw, err)
	}
	return nil
}

// RouteInside routes prefixes toward the inside (in0) in the nat namespace.
func (t *Topology) RouteInside(prefixes []netip.Prefix) error {
	for _, p := range prefixes {
		if err := t.route(p, t.NATInside.Index, InsideGateway); err != nil {
			return err
		}
	}
	return nil
}

// AddOutsideAddrs gives the nat namespace's outside interface addrs (as
// /32s): the NAT's public addresses, so that a packet to one of them with
// no translation is delivered locally (and dropped there by the NAT's
// input rules) instead of being routed back out.
func (t *Topology) AddOutsideAddrs(addrs []netip.Addr) error {
	l, err := t.NATHandle.LinkByIndex(t.NATOutside.Index)
	if err != nil {
		return fmt.Errorf("topology: %w", err)
	}
	for _, a := range addrs {
		ipnet := &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}
		if err := t.NATHandle.AddrAdd(l, &netlink.Addr{IPNet: ipnet}); err != nil {
			return fmt.Errorf("topology: address %v: %w", a, err)
		}
	}
	return nil
}

// Close removes the topology: endpoints, handles and namespaces (the veth
// pairs go with them).
func (t *Topology) Close() error {
	var errs []error
	for _, e := range []*link.Endpoint{t.In, t.Out} {
		if e != nil {
			errs = append(errs, e.Close())
		}
	}
	if t.NATHandle != nil {
		t.NATHandle.Close()
	}
	for _, ns := range []*sandbox.Namespace{t.Inside, t.NAT, t.Outside} {
		errs = append(errs, ns.Close())
	}
	return errors.Join(errs...)
}

// WriteSysctls writes /proc/sys values (keys like "net/ipv4/ip_forward")
// in the namespace of the calling thread: call it inside Namespace.Do.
func WriteSysctls(kv map[string]string) error {
	for k, v := range kv {
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// ReadSysctl reads one /proc/sys value in the calling thread's namespace.
func ReadSysctl(k string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/proc/sys", k))
	if err != nil {
		return "", fmt.Errorf("sysctl %s: %w", k, err)
	}
	return string(b[:len(b)-min(1, len(b))]), nil
}
