package replay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/internal/pcapgen"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/replay/frame"
)

// publicRecords reads every record of every capture in captures/public,
// up to each one's first fault.
func publicRecords(t *testing.T) map[string][]capture.Record {
	t.Helper()
	paths, err := filepath.Glob(public + "*.pcap*")
	if err != nil || len(paths) < 16 {
		t.Fatalf("captures in %s: %d, %v", public, len(paths), err)
	}
	out := map[string][]capture.Record{}
	for _, p := range paths {
		r, err := capture.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		for {
			rec, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, capture.ErrTruncated) {
					t.Fatalf("%s: %v", p, err)
				}
				break
			}
			rec.Data = slices.Clone(rec.Data)
			out[p] = append(out[p], rec)
		}
		r.Close()
	}
	return out
}

// censusFrames are Ethernet frames that the census's fixed offsets must
// read as frame.Decode does, or leave to it: plain IPv4 TCP and UDP, and
// VLAN (802.1Q, QinQ), IPv6, IP options, fragments, frames cut short,
// lengths left to the NIC, bad TCP data offsets, other protocols.
func censusFrames(t *testing.T) []struct {
	name      string
	data      []byte
	wantPlain bool
} {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	mk := func(proto reference.Proto, src, dst string, payload int) []byte {
		p := reference.Packet{Tuple: reference.Tuple{Proto: proto, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst)}}
		if proto == reference.TCP {
			p.Flags = reference.SYN
		}
		d, err := pcapgen.Frame(buf, p, make([]byte, payload))
		if err != nil {
			t.Fatal(err)
		}
		return slices.Clone(d)
	}
	tcp := func() []byte { return mk(reference.TCP, "10.1.2.3:40000", "93.184.216.34:443", 10) }
	udp := func() []byte { return mk(reference.UDP, "10.1.2.4:5353", "8.8.8.8:53", 20) }
	edit := func(d []byte, f func([]byte) []byte) []byte { return f(slices.Clone(d)) }
	vlan := func(d []byte, tpid uint16) []byte {
		tag := []byte{byte(tpid >> 8), byte(tpid), 0x00, 0x07}
		return slices.Concat(d[:12], tag, d[12:])
	}
	ipv6 := slices.Concat(tcp()[:12], []byte{0x86, 0xdd, 0x60, 0, 0, 0, 0, 20, 6, 64}, make([]byte, 32+20))
	withOptions := edit(tcp(), func(d []byte) []byte {
		// A 24-byte header: a 4-byte option (NOPs) after the 20.
		out := slices.Concat(d[:34], []byte{1, 1, 1, 0}, d[34:])
		out[14] = 0x46
		binary.BigEndian.PutUint16(out[16:], binary.BigEndian.Uint16(out[16:])+4)
		return out
	})
	icmp := mk(reference.ICMP, "10.1.2.5:0", "1.1.1.1:0", 16)
	return []struct {
		name      string
		data      []byte
		wantPlain bool
	}{
		{"tcp", tcp(), true},
		{"udp", udp(), true},
		{"icmp", icmp, true},
		{"other protocol (gre)", edit(udp(), func(d []byte) []byte { d[23] = 47; return d }), true},
		{"tcp with padding after the ip packet", append(tcp(), 0, 0, 0, 0, 0, 0), true},
		{"vlan 802.1Q", vlan(tcp(), 0x8100), false},
		{"qinq", vlan(vlan(udp(), 0x8100), 0x88a8), false},
		{"ipv6", ipv6, false},
		{"ip options", withOptions, false},
		{"first fragment", edit(udp(), func(d []byte) []byte { d[20] |= 0x20; return d }), false},
		{"later fragment", edit(tcp(), func(d []byte) []byte { d[21] = 0x10; return d }), false},
		{"cut short in tcp", tcp()[:50], false},
		{"cut short in the payload", tcp()[:60], false},
		{"cut short in ip", tcp()[:30], false},
		{"ethernet only", tcp()[:14], false},
		{"total length 0 (offload)", edit(tcp(), func(d []byte) []byte { d[16], d[17] = 0, 0; return d }), false},
		{"total length under the header", edit(tcp(), func(d []byte) []byte { binary.BigEndian.PutUint16(d[16:], 19); return d }), false},
		{"total length under a tcp header", edit(tcp(), func(d []byte) []byte { binary.BigEndian.PutUint16(d[16:], 36); return d }), false},
		{"total length under a udp header", edit(udp(), func(d []byte) []byte { binary.BigEndian.PutUint16(d[16:], 24); return d }), false},
		{"tcp data offset 16", edit(tcp(), func(d []byte) []byte { d[46] = 0x40; return d }), false},
		{"tcp data offset past the packet", edit(tcp(), func(d []byte) []byte { d[46] = 0xf0; return d }), false},
		{"ip version 6 in an ipv4 ethertype", edit(tcp(), func(d []byte) []byte { d[14] = 0x65; return d }), false},
		{"arp", edit(tcp(), func(d []byte) []byte { d[12], d[13] = 0x08, 0x06; return d }), false},
	}
}

// TestCensusPlainIPv4AgreesWithDecode: for every Ethernet frame of the
// real captures and every crafted one, the census's fixed offsets
// (plainIPv4) either leave the frame to the full decode or find what
// frame.Decode finds: whether it is IPv4 TCP or UDP, and its addresses.
// The crafted frames say which ones they leave.
func TestCensusPlainIPv4AgreesWithDecode(t *testing.T) {
	type frameCase struct {
		name string
		data []byte
	}
	var cases []frameCase
	for p, recs := range publicRecords(t) {
		for i, rec := range recs {
			if rec.LinkType == layers.LinkTypeEthernet {
				cases = append(cases, frameCase{fmt.Sprintf("%s record %d", filepath.Base(p), i+1), rec.Data})
			}
		}
	}
	publicN := len(cases)
	for _, c := range censusFrames(t) {
		src, dst, count, plain := plainIPv4(c.data)
		if plain != c.wantPlain {
			t.Errorf("%s: read at fixed offsets %v, want %v", c.name, plain, c.wantPlain)
		}
		if c.name == "tcp" && (!count || src != 10<<24|1<<16|2<<8|3 || dst != 93<<24|184<<16|216<<8|34) {
			t.Errorf("tcp: counted %v, %08x -> %08x", count, src, dst)
		}
		cases = append(cases, frameCase{c.name, c.data})
	}
	var f frame.Frame
	plainN, countN := 0, 0
	for i, c := range cases {
		src, dst, count, plain := plainIPv4(c.data)
		if !plain {
			continue
		}
		if i < publicN {
			plainN++
		}
		err := frame.Decode(layers.LinkTypeEthernet, c.data, &f)
		want := err == nil && f.Network == frame.IPv4 && (f.Proto == reference.TCP || f.Proto == reference.UDP)
		if count != want {
			t.Errorf("%s: counted %v at fixed offsets, %v decoded (%v)", c.name, count, want, err)
			continue
		}
		if !want {
			continue
		}
		if i < publicN {
			countN++
		}
		if ws, wd := v4(f.Src), v4(f.Dst); src != ws || dst != wd {
			t.Errorf("%s: %08x -> %08x at fixed offsets, decoded %08x -> %08x", c.name, src, dst, ws, wd)
		}
	}
	// The real captures give the fixed offsets work to do (905 of their
	// 1,120 Ethernet records are plain IPv4, 827 of them TCP or UDP).
	if plainN < 800 || countN < 800 {
		t.Errorf("of %d Ethernet records of the real captures, %d read at fixed offsets, %d counted: too few to test", publicN, plainN, countN)
	}
}

// TestCensusSameOnPublicCaptures: the census of each real capture (fixed
// offsets where they apply) holds the addresses a census by full decode
// alone finds.
func TestCensusSameOnPublicCaptures(t *testing.T) {
	for p, recs := range publicRecords(t) {
		c := newCensus()
		seen, openers := map[netip.Addr]bool{}, map[netip.Addr]bool{}
		var f frame.Frame
		for _, rec := range recs {
			c.record(rec)
			if frame.Decode(rec.LinkType, rec.Data, &f) == nil && f.Network == frame.IPv4 && (f.Proto == reference.TCP || f.Proto == reference.UDP) {
				seen[f.Src], seen[f.Dst] = true, true
				if f.Src.IsPrivate() && isPublic(f.Dst) {
					openers[f.Src] = true
				}
			}
		}
		for _, set := range []struct {
			name string
			got  []netip.Addr
			want map[netip.Addr]bool
		}{{"seen", c.seen.all(), seen}, {"openers", c.openers.all(), openers}} {
			want := make([]netip.Addr, 0, len(set.want))
			for a := range set.want {
				want = append(want, a)
			}
			slices.SortFunc(want, netip.Addr.Compare)
			got := slices.SortedFunc(slices.Values(set.got), netip.Addr.Compare)
			if !slices.Equal(got, want) {
				t.Errorf("%s: census %s %v, full decode %v", filepath.Base(p), set.name, got, want)
			}
		}
	}
}
