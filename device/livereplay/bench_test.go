package livereplay_test

import (
	"cmp"
	"context"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/device/linuxnft"
	"github.com/natcheck/natcheck/device/livereplay"
	"github.com/natcheck/natcheck/device/sandbox/sandboxtest"
	"github.com/natcheck/natcheck/reference"
)

// benchFlows and benchInstances shape the benchmark's capture: 50,000 TCP
// flows of 8 packets (SYN, SYN-ACK, ACK, data each way, FIN each way, the
// last ACK) from 50 instances to 254 servers, each flow's packets 1 ms
// apart and about 1,000 flows interleaved: 400,000 packets, every reply
// needing the mapping its flow's SYN was given.
const (
	benchFlows     = 50_000
	benchInstances = 50
)

func benchConfig() reference.Config {
	c := reference.Config{Frontends: []netip.Addr{netip.MustParseAddr("203.0.113.1")}}
	for i := range benchInstances {
		c.Backends = append(c.Backends, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}))
	}
	return c
}

// writeBenchCapture writes the capture to path with the given MACs on
// outbound frames (replies go the other way) and returns its packet count.
func writeBenchCapture(tb testing.TB, path string, src, dst net.HardwareAddr) int {
	tb.Helper()
	var pkts []frameAt
	data, answer := make([]byte, 100), make([]byte, 200)
	for i := range benchFlows {
		in := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i%benchInstances + 1)}), uint16(10000+i/benchInstances))
		srv := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i%254 + 1)}), 443)
		c := reference.Tuple{Proto: reference.TCP, Src: in, Dst: srv}
		s := c.Reverse()
		cs, ss := uint32(i)*100_000, uint32(i)*100_000+50_000
		for j, x := range []struct {
			out   bool
			flags reference.TCPFlags
			seq   uint32
			ack   uint32
			pl    []byte
		}{
			{true, reference.SYN, cs, 0, nil},
			{false, reference.SYN | reference.ACK, ss, cs + 1, nil},
			{true, reference.ACK, cs + 1, ss + 1, nil},
			{true, reference.ACK | reference.PSH, cs + 1, ss + 1, data},
			{false, reference.ACK | reference.PSH, ss + 1, cs + 101, answer},
			{true, reference.FIN | reference.ACK, cs + 101, ss + 201, nil},
			{false, reference.FIN | reference.ACK, ss + 201, cs + 102, nil},
			{true, reference.ACK, cs + 102, ss + 202, nil},
		} {
			t := c
			if !x.out {
				t = s
			}
			pkts = append(pkts, frameAt{at: time.Duration(i+j*1000) * time.Microsecond, back: !x.out,
				seg: link.Segment{Tuple: t, Flags: x.flags, Seq: x.seq, Ack: x.ack, ID: uint16(i*8 + j), Payload: x.pl}})
		}
	}
	// In time order (a stable sort keeps each flow's packets in order).
	sortByTime(pkts, func(p frameAt) time.Duration { return p.at })
	writeCapture(tb, path, src, dst, pkts)
	return len(pkts)
}

// BenchmarkLiveReplay replays the capture through linux-nft as fast as
// the machine goes, learning every mapping with no marker in the packets
// and judging every flow against the engine (natcheck), and beside it,
// in the same run, tcpreplay --topspeed puts the same capture into the
// same device's inside link, learning nothing (the floor: one write per
// packet). Metric: packets/s.
func BenchmarkLiveReplay(b *testing.B) {
	sandboxtest.Require(b, linuxnft.Preflight)
	dir := b.TempDir()
	b.Run("natcheck/learning/tcp-8-packet-flows", func(b *testing.B) {
		path := filepath.Join(dir, "flows.pcap")
		n := writeBenchCapture(b, path, net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2})
		b.ReportAllocs()
		b.ResetTimer()
		var elapsed time.Duration
		for range b.N {
			res, err := livereplay.Run(context.Background(), []string{path}, livereplay.Config{Engine: benchConfig()})
			if err != nil {
				b.Fatal(err)
			}
			if res.Injected != int64(n) || res.Confirmed != res.Mappings || res.Mappings != benchFlows {
				b.Fatalf("injected %d of %d packets, %d mappings learnt (%d confirmed by conntrack), want %d", res.Injected, n, res.Mappings, res.Confirmed, benchFlows)
			}
			elapsed += res.Elapsed
		}
		b.ReportMetric(float64(n)*float64(b.N)/elapsed.Seconds(), "pkts/s")
	})
	b.Run("tcpreplay/topspeed", func(b *testing.B) {
		if _, err := exec.LookPath("tcpreplay"); err != nil {
			b.Skip("SKIPPED, not measured: tcpreplay is not installed (apt-get install tcpreplay)")
		}
		dev, err := linuxnft.Open(context.Background(), benchConfig(), linuxnft.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer dev.Close()
		l := dev.Links()
		path := filepath.Join(dir, "tcpreplay.pcap")
		n := writeBenchCapture(b, path, l.In.MAC, l.NATInside)
		l.In.CloseTap()
		b.ResetTimer()
		var secs float64
		for range b.N {
			var out []byte
			err := l.Inside.Do(func() error {
				var err error
				out, err = exec.Command("tcpreplay", "--topspeed", "-i", "in0", path).CombinedOutput()
				return err
			})
			if err != nil {
				b.Fatalf("tcpreplay: %v\n%s", err, out)
			}
			m := regexp.MustCompile(`Actual: (\d+) packets .* in ([0-9.]+) seconds`).FindSubmatch(out)
			if m == nil {
				b.Fatalf("tcpreplay: no 'Actual:' line:\n%s", out)
			}
			sent, _ := strconv.Atoi(string(m[1]))
			s, _ := strconv.ParseFloat(string(m[2]), 64)
			if sent != n {
				b.Fatalf("tcpreplay sent %d of %d packets", sent, n)
			}
			secs += s
		}
		b.ReportMetric(float64(n)*float64(b.N)/secs, "pkts/s")
	})
}

func sortByTime[T any](s []T, at func(T) time.Duration) {
	slices.SortStableFunc(s, func(a, b T) int { return cmp.Compare(at(a), at(b)) })
}
