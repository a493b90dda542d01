package pcapgen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/natcheck/natcheck/reference"
)

// BusySubnet describes a capture of a busy subnet behind a NAT, the input
// class of issue 11: many hosts with concurrent TCP connections and UDP
// mappings to public servers, each packet from a flow drawn uniformly at
// random, so consecutive packets almost never share a flow (the realistic
// worst case for a flow table: every lookup a cache miss). Packets are
// Ethernet/IPv4 with IMIX-like sizes. The same BusySubnet writes the same
// bytes on any machine.
//
// Flows: each has a host drawn uniformly from Hosts (addresses in
// 10.0.0.0/8, see BusyHost), an ephemeral source port, and a server drawn
// from 50,000 public addresses; TCP to port 443 (70 %), 80 (20 %) or a
// random port, UDP to 53 (40 %), 443 (40 %), 123 (10 %) or a random port.
// A flow's first packet goes out (a SYN for TCP), a TCP flow's second
// packet is the server's SYN-ACK, and later packets go either way with
// equal odds (TCP: ACK, with PSH when they carry data). No flow ends: the
// capture is shorter than every idle timeout, so all flows stay live.
//
// Sizes (whole frames, Ethernet header included): 59 % small, half of
// them 64 B and half 65–128 B; 33 % 490–576 B; 8 % 1,300–1,514 B; all
// uniform within their range, mean about 336 B. Every packet's size is
// drawn so, handshake packets too (a SYN may carry data), so the mix is
// the same whatever the capture's length.
type BusySubnet struct {
	Packets  int           // packets in the capture
	Flows    int           // flows the packets are drawn from
	Hosts    int           // inside hosts (instances)
	TCPShare float64       // fraction of flows that are TCP; the rest are UDP
	Gap      time.Duration // time between packets
	Start    time.Time     // first packet's time
	Seed     uint64
	// Late is the fraction of packets recorded out of order: each is
	// written after the packets of the next LateBy packets' time (so it
	// comes LateBy·Gap late, within the replay's 1 s re-ordering window),
	// as in a capture merged from several interfaces' buffers. Which
	// packets are late is drawn from a stream of its own: the packets and
	// their times are those of the same BusySubnet with Late 0.
	Late float64
}

// LateBy is how many packets' time a late packet of a BusySubnet is
// recorded after its own (1 ms at a 1 µs gap).
const LateBy = 1000

// Issue11 is the class issue 11 names: 2,000,000 packets over 200,000
// flows (70 % TCP), 20,000 hosts, 1 µs apart. Change Packets for longer
// captures of the same flows.
func Issue11() BusySubnet {
	return BusySubnet{Packets: 2_000_000, Flows: 200_000, Hosts: 20_000, TCPShare: 0.7,
		Gap: time.Microsecond, Start: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Seed: 11}
}

// BusyBackends is the prefix that holds every host of a BusySubnet.
var BusyBackends = netip.MustParsePrefix("10.0.0.0/8")

// BusyHost returns host h's address: 10.0.0.0 plus (h+1)·811, distinct for
// h below 20,000, spread over 10.0.0.0/8.
func BusyHost(h int) netip.Addr {
	v := uint32(10)<<24 | uint32(h+1)*811
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

type busyFlow struct {
	tu   reference.Tuple // outbound
	sent uint32          // packets so far
}

// Write writes the capture as a microsecond pcap of Ethernet frames.
func (c BusySubnet) Write(w io.Writer) error {
	if c.Packets < 0 || c.Flows <= 0 || c.Hosts <= 0 || c.Hosts > 20_000 || c.TCPShare < 0 || c.TCPShare > 1 || c.Late < 0 || c.Late > 1 {
		return fmt.Errorf("pcapgen: BusySubnet %+v: want Flows > 0, 0 < Hosts ≤ 20000, 0 ≤ TCPShare ≤ 1, 0 ≤ Late ≤ 1", c)
	}
	r := rand.New(rand.NewPCG(c.Seed, 0x6e6174636865636b))    // "natcheck"
	late := rand.New(rand.NewPCG(c.Seed, 0x6c61746520726563)) // "late rec"
	servers := make([]netip.Addr, 50_000)
	for i := range servers {
		servers[i] = publicAddr(r)
	}
	flows := make([]busyFlow, c.Flows)
	for i := range flows {
		f := &flows[i]
		src := netip.AddrPortFrom(BusyHost(r.IntN(c.Hosts)), uint16(32768+r.IntN(28232)))
		srv := servers[r.IntN(len(servers))]
		if r.Float64() < c.TCPShare {
			port := uint16(443)
			switch x := r.IntN(10); {
			case x >= 9:
				port = uint16(1024 + r.IntN(64512))
			case x >= 7:
				port = 80
			}
			f.tu = reference.Tuple{Proto: reference.TCP, Src: src, Dst: netip.AddrPortFrom(srv, port)}
		} else {
			port := uint16(53)
			switch x := r.IntN(10); {
			case x >= 9:
				port = uint16(1024 + r.IntN(64512))
			case x >= 8:
				port = 123
			case x >= 4:
				port = 443
			}
			f.tu = reference.Tuple{Proto: reference.UDP, Src: src, Dst: netip.AddrPortFrom(srv, port)}
		}
	}

	bw := bufio.NewWriterSize(w, 1<<20)
	pw := pcapgo.NewWriter(bw)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return fmt.Errorf("pcapgen: %w", err)
	}
	// held are the late packets not written yet, in the order they are
	// due (packet i is due after packet i+LateBy).
	type heldPacket struct {
		due  int
		ci   gopacket.CaptureInfo
		data []byte
	}
	var held []heldPacket
	flush := func(upTo int) error {
		n := 0
		for ; n < len(held) && held[n].due <= upTo; n++ {
			if err := pw.WritePacket(held[n].ci, held[n].data); err != nil {
				return err
			}
		}
		held = held[n:]
		return nil
	}
	buf := gopacket.NewSerializeBuffer()
	payload := make([]byte, 1514)
	for i := range c.Packets {
		f := &flows[r.IntN(len(flows))]
		p := reference.Packet{Tuple: f.tu}
		switch {
		case f.sent == 0:
			if f.tu.Proto == reference.TCP {
				p.Flags = reference.SYN
			}
		case f.tu.Proto == reference.TCP && f.sent == 1:
			p.Tuple, p.Flags = f.tu.Reverse(), reference.SYN|reference.ACK
		default:
			if r.IntN(2) == 1 {
				p.Tuple = f.tu.Reverse()
			}
			p.Flags = reference.ACK
		}
		f.sent++
		size := imixSize(r)
		hdr := 14 + 20 + 8
		if f.tu.Proto == reference.TCP {
			hdr = 14 + 20 + 20
		}
		n := max(size-hdr, 0)
		if p.Flags == reference.ACK && n > 0 && f.tu.Proto == reference.TCP {
			p.Flags |= reference.PSH
		}
		data, err := Frame(buf, p, payload[:n])
		if err != nil {
			return fmt.Errorf("pcapgen: packet %d: %w", i+1, err)
		}
		ci := gopacket.CaptureInfo{Timestamp: c.Start.Add(time.Duration(i) * c.Gap), CaptureLength: len(data), Length: len(data)}
		if c.Late > 0 && late.Float64() < c.Late {
			held = append(held, heldPacket{due: i + LateBy, ci: ci, data: append([]byte(nil), data...)})
		} else if err := pw.WritePacket(ci, data); err != nil {
			return fmt.Errorf("pcapgen: packet %d: %w", i+1, err)
		}
		if err := flush(i); err != nil {
			return fmt.Errorf("pcapgen: packet %d: %w", i+1, err)
		}
	}
	if err := flush(c.Packets + LateBy); err != nil {
		return fmt.Errorf("pcapgen: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("pcapgen: %w", err)
	}
	return nil
}

// WriteFile writes the capture to path, through a temporary file renamed
// at the end, so that an interrupted run leaves no truncated capture under
// that name.
func (c BusySubnet) WriteFile(path string) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return fmt.Errorf("pcapgen: %w", err)
	}
	if err := c.Write(f); err != nil {
		f.Close()
		os.Remove(path + ".tmp")
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pcapgen: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("pcapgen: %w", err)
	}
	return nil
}

// imixSize draws a frame size: see BusySubnet.
func imixSize(r *rand.Rand) int {
	switch x := r.IntN(100); {
	case x < 59:
		if r.IntN(2) == 0 {
			return 64
		}
		return 65 + r.IntN(64)
	case x < 92:
		return 490 + r.IntN(87)
	default:
		return 1300 + r.IntN(215)
	}
}

// publicAddr draws a unicast address outside the private, shared,
// loopback, link-local, benchmarking, documentation and multicast ranges.
func publicAddr(r *rand.Rand) netip.Addr {
	for {
		a := netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.IntN(256)), byte(r.IntN(256)), byte(1 + r.IntN(254))})
		if !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast() && !reserved(a) {
			return a
		}
	}
}

var reservedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"), netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
}

func reserved(a netip.Addr) bool {
	for _, p := range reservedPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
