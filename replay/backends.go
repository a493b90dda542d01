package replay

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/replay/frame"
)

// ParseBackends parses a comma-separated list of IPv4 addresses and
// prefixes ("10.0.0.0/24,10.0.1.7"), in order. An address stands for
// itself; a prefix for the addresses of it that appear in the capture.
func ParseBackends(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(f, "/") {
			p, err = netip.ParsePrefix(f)
			p = p.Masked()
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(f)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			return nil, fmt.Errorf("backends %s: not an IPv4 address or prefix", f)
		}
		if !p.Addr().Is4() {
			return nil, fmt.Errorf("backends %s: want IPv4 (the SNAT profiles are IPv4-only)", f)
		}
		for _, q := range out {
			if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
				return nil, fmt.Errorf("backends %s: already listed (as %s); each instance is listed once", f, q)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// census is what the first pass over a capture learns about its addresses.
type census struct {
	// seen holds every IPv4 address that sent or received TCP or UDP.
	seen *addrSet
	// openers holds private addresses that sent TCP or UDP to a public one.
	openers *addrSet
	f       frame.Frame
}

func newCensus() *census {
	return &census{seen: newAddrSet(), openers: newAddrSet()}
}

// record takes in one record of the first pass: the two addresses of a
// TCP or UDP packet over IPv4. A plain Ethernet/IPv4 record, the common
// case, is read at fixed offsets (plainIPv4); any other is decoded in
// full.
func (c *census) record(rec capture.Record) {
	if rec.LinkType == layers.LinkTypeEthernet {
		if src, dst, count, plain := plainIPv4(rec.Data); plain {
			if count {
				c.add(src, dst)
			}
			return
		}
	}
	if frame.Decode(rec.LinkType, rec.Data, &c.f) == nil && c.f.Network == frame.IPv4 &&
		(c.f.Proto == reference.TCP || c.f.Proto == reference.UDP) {
		c.add(v4(c.f.Src), v4(c.f.Dst))
	}
}

// plainIPv4 reads an Ethernet frame d for the census without decoding it:
// plain reports whether d is IPv4 right after the Ethernet header (no VLAN
// tag) with a 20-byte header (no options), not a fragment and not cut
// short, carrying TCP with a whole header and a valid data offset, UDP
// with a whole header, or another protocol; count whether it is TCP or
// UDP, and src and dst are then its addresses. For such a frame this is
// what frame.Decode finds (the census counts a frame that decodes as IPv4
// TCP or UDP); any other frame the census decodes in full.
func plainIPv4(d []byte) (src, dst uint32, count, plain bool) {
	if len(d) < 34 || d[12] != 0x08 || d[13] != 0x00 || d[14] != 0x45 {
		return 0, 0, false, false
	}
	total := int(binary.BigEndian.Uint16(d[16:]))
	if total < 20 || 14+total > len(d) || binary.BigEndian.Uint16(d[20:])&0x3fff != 0 {
		return 0, 0, false, false // cut short, a length left to the NIC, or a fragment
	}
	switch d[23] {
	case 6: // TCP: a whole header, its data offset within the packet
		if total < 40 {
			return 0, 0, false, false
		}
		if off := int(d[46]>>4) * 4; off < 20 || off > total-20 {
			return 0, 0, false, false
		}
	case 17: // UDP: a whole header
		if total < 28 {
			return 0, 0, false, false
		}
	default:
		return 0, 0, false, true
	}
	return binary.BigEndian.Uint32(d[26:]), binary.BigEndian.Uint32(d[30:]), true, true
}

func (c *census) add(src, dst uint32) {
	c.seen.add(src)
	c.seen.add(dst)
	if private4(src) && public4(dst) {
		c.openers.add(src)
	}
}

// private4 is netip.Addr.IsPrivate for an IPv4 address as uint32: 10/8,
// 172.16/12, 192.168/16.
func private4(a uint32) bool {
	return a>>24 == 10 || a>>20 == 172<<4|1 || a>>16 == 192<<8|168
}

// public4 is isPublic for an IPv4 address as uint32, as netip counts
// global unicast: not 0.0.0.0, loopback 127/8, link-local 169.254/16,
// multicast 224/4 or the broadcast address, and not private.
func public4(a uint32) bool {
	return a != 0 && a != 0xffffffff && a>>24 != 127 && a>>28 != 14 && a>>16 != 169<<8|254 && !private4(a)
}

// isPublic reports whether a is a globally routable unicast address: not
// private, loopback, link-local, multicast or broadcast.
func isPublic(a netip.Addr) bool {
	return a.IsGlobalUnicast() && !a.IsPrivate() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// isHost reports whether a can be a host of prefix p: not its network or
// broadcast address (for prefixes of up to /30), and unicast.
func isHost(p netip.Prefix, a netip.Addr) bool {
	if !a.IsGlobalUnicast() && !a.IsPrivate() {
		return false
	}
	if p.Bits() > 30 {
		return true
	}
	b := a.As4()
	host := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	mask := uint32(1)<<(32-p.Bits()) - 1
	return host&mask != 0 && host&mask != mask
}

// needsCensus reports whether choosing instances needs a first pass: it
// does for detection and for prefixes, not for a list of addresses.
func needsCensus(specs []netip.Prefix) bool {
	if len(specs) == 0 {
		return true
	}
	for _, p := range specs {
		if !p.IsSingleIP() {
			return true
		}
	}
	return false
}

// chooseBackends turns the flags into the ordered instance list and says how
// it was chosen. Without flags it detects: private sources that open flows
// to public addresses, in ascending order.
func chooseBackends(specs []netip.Prefix, c *census) ([]netip.Addr, string) {
	if len(specs) == 0 {
		out := c.openers.all()
		slices.SortFunc(out, netip.Addr.Compare)
		return out, "detected (private addresses that open flows to public addresses, ascending; only their traffic with public addresses crosses the NAT)"
	}
	var out []netip.Addr
	have := map[netip.Addr]bool{}
	for _, p := range specs {
		if p.IsSingleIP() {
			if !have[p.Addr()] {
				out = append(out, p.Addr())
				have[p.Addr()] = true
			}
			continue
		}
		var in []netip.Addr
		for _, a := range c.seen.all() {
			if p.Contains(a) && !have[a] && isHost(p, a) {
				in = append(in, a)
			}
		}
		slices.SortFunc(in, netip.Addr.Compare)
		for _, a := range in {
			have[a] = true
		}
		out = append(out, in...)
	}
	return out, "given by --backends (in order; a prefix as its addresses seen in the capture, ascending)"
}
