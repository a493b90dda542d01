package pcapgen

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"io"
	"net/netip"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestBusySubnet checks a small capture of the class against its
// description: packet count and spacing, TCP share of flows, hosts in
// 10.0.0.0/8 talking to public servers, a first packet out (a SYN for
// TCP), sizes of the three classes with a mean near 336 B, valid
// checksums; and that the same description writes the same bytes.
func TestBusySubnet(t *testing.T) {
	c := Issue11()
	c.Packets, c.Flows, c.Hosts = 60_000, 3_000, 300
	var b1, b2 bytes.Buffer
	if err := c.Write(&b1); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(&b2); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(b1.Bytes()) != sha256.Sum256(b2.Bytes()) {
		t.Fatal("two writes of one BusySubnet differ")
	}
	c.Seed++
	var b3 bytes.Buffer
	if err := c.Write(&b3); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(b1.Bytes(), b3.Bytes()) {
		t.Fatal("another seed wrote the same capture")
	}

	rd, err := pcapgo.NewReader(&b1)
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ in, out netip.AddrPort }
	seen := map[key]layers.IPProtocol{}
	hosts := map[netip.Addr]bool{}
	var n, bytesTotal, small, mid, large int
	var last int64
	for {
		data, ci, err := rd.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 && ci.Timestamp.UnixNano()-last != c.Gap.Nanoseconds() {
			t.Fatalf("packet %d %v after the previous one, want %v", n+1, ci.Timestamp.UnixNano()-last, c.Gap)
		}
		last = ci.Timestamp.UnixNano()
		n++
		bytesTotal += len(data)
		switch l := len(data); {
		case l >= 64 && l <= 128:
			small++
		case l >= 490 && l <= 576:
			mid++
		case l >= 1300 && l <= 1514:
			large++
		default:
			t.Fatalf("packet %d: %d bytes, in no size class", n, l)
		}
		pk := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		ip4, _ := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip4 == nil {
			t.Fatalf("packet %d: no IPv4 header", n)
		}
		src, _ := netip.AddrFromSlice(ip4.SrcIP)
		dst, _ := netip.AddrFromSlice(ip4.DstIP)
		var sp, dp uint16
		var syn bool
		if tcp, ok := pk.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
			sp, dp, syn = uint16(tcp.SrcPort), uint16(tcp.DstPort), tcp.SYN && !tcp.ACK
		} else if udp, ok := pk.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
			sp, dp = uint16(udp.SrcPort), uint16(udp.DstPort)
		} else {
			t.Fatalf("packet %d: neither TCP nor UDP", n)
		}
		out := BusyBackends.Contains(src)
		if out == BusyBackends.Contains(dst) {
			t.Fatalf("packet %d: %v -> %v, want one end in %v", n, src, dst, BusyBackends)
		}
		k := key{netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)}
		if !out {
			k = key{k.out, k.in}
		}
		if _, ok := seen[k]; !ok {
			if !out || (ip4.Protocol == layers.IPProtocolTCP && !syn) {
				t.Fatalf("packet %d: first packet of %v is inbound %v or not a SYN", n, k, !out)
			}
			if k.out.Addr().IsPrivate() || reserved(k.out.Addr()) {
				t.Fatalf("packet %d: server %v is not public", n, k.out.Addr())
			}
			seen[k] = ip4.Protocol
			hosts[k.in.Addr()] = true
		}
		if !checksumsOK(t, data) {
			t.Fatalf("packet %d: bad checksum", n)
		}
	}
	if n != c.Packets {
		t.Fatalf("%d packets, want %d", n, c.Packets)
	}
	tcp := 0
	for _, p := range seen {
		if p == layers.IPProtocolTCP {
			tcp++
		}
	}
	// 60,000 packets from 3,000 flows: every flow is seen (a flow is
	// missed with odds e^-20 each).
	if len(seen) != c.Flows {
		t.Errorf("%d flows seen, want %d", len(seen), c.Flows)
	}
	if share := float64(tcp) / float64(len(seen)); share < 0.67 || share > 0.73 {
		t.Errorf("TCP share of flows %.3f, want 0.7 ± 0.03", share)
	}
	if len(hosts) < c.Hosts*95/100 || len(hosts) > c.Hosts {
		t.Errorf("%d hosts, want about %d", len(hosts), c.Hosts)
	}
	mean := float64(bytesTotal) / float64(n)
	t.Logf("%d packets, %d flows (%d TCP), %d hosts, mean %.1f B, sizes %d/%d/%d", n, len(seen), tcp, len(hosts), mean, small, mid, large)
	if mean < 326 || mean > 346 {
		t.Errorf("mean size %.1f B, want 336 ± 10", mean)
	}
	for _, tc := range []struct {
		name      string
		got, want float64
	}{{"64-128 B", float64(small), 0.59}, {"490-576 B", float64(mid), 0.33}, {"1300-1514 B", float64(large), 0.08}} {
		if share := tc.got / float64(n); share < tc.want-0.01 || share > tc.want+0.01 {
			t.Errorf("%s: %.3f of packets, want %.2f ± 0.01", tc.name, share, tc.want)
		}
	}
}

// checksumsOK verifies the IPv4 header checksum and the TCP or UDP
// checksum of an Ethernet frame, recomputed here from the bytes.
func checksumsOK(t *testing.T, frame []byte) bool {
	t.Helper()
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if sum16(ip[:ihl], 0) != 0xffff {
		return false
	}
	tot := int(ip[2])<<8 | int(ip[3])
	l4 := ip[ihl:tot]
	pseudo := uint32(ip[9]) + uint32(len(l4))
	for i := 12; i < 20; i += 2 {
		pseudo += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	return sum16(l4, pseudo) == 0xffff
}

func sum16(b []byte, s uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// TestBusySubnetLate: with Late set, the capture holds the same records
// as with Late 0 (same times, same bytes), a fraction Late of them
// written after records up to LateBy packets later; Late 0 writes every
// record in time order (TestBusySubnet checks the spacing).
func TestBusySubnetLate(t *testing.T) {
	type rec struct {
		at   int64
		data string
	}
	read := func(late float64) (recs []rec, lateN int, maxLate int64) {
		c := Issue11()
		c.Packets, c.Flows, c.Hosts, c.Late = 20_000, 1_000, 100, late
		var b bytes.Buffer
		if err := c.Write(&b); err != nil {
			t.Fatal(err)
		}
		rd, err := pcapgo.NewReader(&b)
		if err != nil {
			t.Fatal(err)
		}
		var newest int64
		for {
			data, ci, err := rd.ReadPacketData()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			at := ci.Timestamp.UnixNano()
			if at < newest {
				lateN++
				maxLate = max(maxLate, newest-at)
			}
			newest = max(newest, at)
			recs = append(recs, rec{at, string(data)})
		}
		return recs, lateN, maxLate
	}
	inOrder, n0, _ := read(0)
	if n0 != 0 {
		t.Fatalf("Late 0: %d records out of order", n0)
	}
	shuffled, n, maxLate := read(0.1)
	if n < 1_600 || n > 2_400 {
		t.Errorf("Late 0.1: %d of 20,000 records late, want about 2,000", n)
	}
	if lim := int64(LateBy) * Issue11().Gap.Nanoseconds(); maxLate > lim || maxLate < lim/2 {
		t.Errorf("Late 0.1: a record %d ns late, want up to %d ns", maxLate, lim)
	}
	slices.SortStableFunc(shuffled, func(a, b rec) int { return cmp.Compare(a.at, b.at) })
	if !slices.Equal(inOrder, shuffled) {
		t.Error("Late 0.1: the records put back in time order differ from Late 0's")
	}
}
