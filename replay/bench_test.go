package replay

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/natcheck/natcheck/internal/pcapgen"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
)

const benchPackets = 2_000_000

// benchSpecs are benchCapture's 50 instances, 10.0.0.1-10.0.0.50.
func benchSpecs() []netip.Prefix {
	var specs []netip.Prefix
	for i := range 50 {
		specs = append(specs, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 32))
	}
	return specs
}

// benchCapture writes (once per machine, cached in the temp folder) a
// 2,000,000-packet capture: 50 instances, 40,000 TCP flows to distinct
// servers, each a SYN, a SYN-ACK and 48 data segments alternating
// directions, gap apart, flows interleaved.
func benchCapture(b *testing.B, gap time.Duration) (string, []netip.Prefix) {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("natcheck-bench-%d-%v.pcap", benchPackets, gap))
	specs := benchSpecs()
	if st, err := os.Stat(path); err == nil && st.Size() > benchPackets*60 {
		return path, specs
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	pw := pcapgo.NewWriter(bw)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		b.Fatal(err)
	}
	const flows, perFlow, batch = 40_000, 50, 1000
	buf := gopacket.NewSerializeBuffer()
	n := 0
	// Flows run in batches of 1,000 interleaved flows.
	for base := 0; base < flows; base += batch {
		var frames [batch][2][]byte // per flow: outbound and inbound templates
		for j := range batch {
			i := base + j
			in := netip.AddrPortFrom(specs[i%50].Addr(), uint16(20000+i/50))
			srv := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 443)
			for k, tu := range [2]reference.Tuple{{Proto: reference.TCP, Src: in, Dst: srv}, {Proto: reference.TCP, Src: srv, Dst: in}} {
				data, err := pcapgen.Frame(buf, reference.Packet{Tuple: tu, Flags: reference.ACK}, []byte("natcheck-payload"))
				if err != nil {
					b.Fatal(err)
				}
				frames[j][k] = append([]byte(nil), data...)
			}
		}
		for k := range perFlow {
			for j := range batch {
				data := frames[j][k&1]
				ci := gopacket.CaptureInfo{Timestamp: synthT0.Add(time.Duration(n) * gap), CaptureLength: len(data), Length: len(data)}
				if err := pw.WritePacket(ci, data); err != nil {
					b.Fatal(err)
				}
				n++
			}
		}
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	if err := os.Rename(path+".tmp", path); err != nil {
		b.Fatal(err)
	}
	return path, specs
}

// busyCapture writes (once per machine, cached in the temp folder) the
// input class of issue 11 (pcapgen.Issue11) with the given number of
// packets: 200,000 flows (70 % TCP) of 20,000 hosts in 10.0.0.0/8, each
// packet's flow drawn at random, IMIX-like sizes, 1 µs apart. 2,000,000
// packets make a 704 MB file, 20,000,000 about 7 GB.
func busyCapture(b *testing.B, packets int) string { return busyCaptureLate(b, packets, 0) }

// busyCaptureLate is busyCapture with a fraction late of the records
// written late (pcapgen.BusySubnet.Late: each 1 ms late).
func busyCaptureLate(b *testing.B, packets int, late float64) string {
	b.Helper()
	c := pcapgen.Issue11()
	c.Packets, c.Late = packets, late
	name := fmt.Sprintf("natcheck-busy-%d-%d-%d.pcap", c.Packets, c.Flows, c.Seed)
	if late > 0 {
		name = fmt.Sprintf("natcheck-busy-%d-%d-%d-late%g.pcap", c.Packets, c.Flows, c.Seed, late)
	}
	path := filepath.Join(os.TempDir(), name)
	if st, err := os.Stat(path); err == nil && st.Size() > int64(packets)*64 {
		return path
	}
	if err := c.WriteFile(path); err != nil {
		b.Fatal(err)
	}
	return path
}

// busyConfig is how issue 11 replays its class: --backends 10.0.0.0/8,
// four frontend IPs, --ports-per-instance 8.
func busyConfig(out string, workers int, events io.Writer) Config {
	return Config{Engine: reference.Config{PortsPerInstance: 8, Frontends: []netip.Addr{
		netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2"),
		netip.MustParseAddr("203.0.113.3"), netip.MustParseAddr("203.0.113.4")}},
		Backends: []netip.Prefix{pcapgen.BusyBackends}, Output: out, Workers: workers, Events: events}
}

// BenchmarkReplayEndToEnd replays a capture end to end: read, decode,
// engine, verdict, and the translated outside view written as pcapng. It
// uses one engine per CPU: run it with -cpu 1 for one core and -cpu 2 for
// the speed-up of spreading instances over cores (never with -benchtime
// 1x: the one run would be the probe, made before -cpu takes effect).
//
//   - best-case/gap=1µs and best-case/gap=10µs: the 2,000,000-packet
//     capture of benchCapture, 70-byte TCP packets of 40,000 flows of 50
//     instances in batches of 1,000 (each lookup near the last), packets
//     1 µs apart (a million in the 1 s re-ordering window) or 10 µs apart;
//   - worst-case/busy-subnet/packets=2M: issue 11's class (busyCapture),
//     replayed as the issue says (busyConfig).
func BenchmarkReplayEndToEnd(b *testing.B) {
	for _, gap := range []time.Duration{time.Microsecond, 10 * time.Microsecond} {
		b.Run("best-case/gap="+gap.String(), func(b *testing.B) { benchReplay(b, gap) })
	}
	b.Run("worst-case/busy-subnet/packets=2M", func(b *testing.B) {
		benchBusy(b, 2_000_000, filepath.Join(b.TempDir(), "out.pcapng"))
	})
}

// BenchmarkReplayLength replays issue 11's class at 2, 10 and 20 million
// packets (the same 200,000 flows, a longer capture): the time per packet
// should not grow with the length. The outside view goes to /dev/null: at
// 20 million packets it is 7.5 GB, more than the kernel lets a process
// hold dirty before it throttles the writes to the disk's speed, which
// would measure the disk. Each capture is first put in the page cache by
// one sequential read after its pages are dropped (freshInPageCache), so
// that the three lengths are read from memory held alike. The first run
// writes about 11 GB of captures to the temp folder.
func BenchmarkReplayLength(b *testing.B) {
	for _, n := range []int{2_000_000, 10_000_000, 20_000_000} {
		b.Run(fmt.Sprintf("busy-subnet/packets=%dM", n/1_000_000), func(b *testing.B) {
			path := busyCapture(b, n)
			freshInPageCache(b, path)
			benchBusyPath(b, path, n, os.DevNull)
		})
	}
}

// BenchmarkReplayOrder replays issue 11's class at 2,000,000 packets as
// recorded in time order (the common case, which should pay nothing for
// the re-ordering a capture may need) and with 1 % and 10 % of its
// records written 1 ms late (busyCaptureLate), which should pay in
// proportion to their disorder; the records, once in time order, are the
// same in every case, and so is the result. The outside view goes to
// /dev/null, as in BenchmarkReplayLength.
func BenchmarkReplayOrder(b *testing.B) {
	for _, late := range []float64{0, 0.01, 0.1} {
		b.Run(orderName(late), func(b *testing.B) {
			benchBusyPath(b, busyCaptureLate(b, 2_000_000, late), 2_000_000, os.DevNull)
		})
	}
}

// BenchmarkOrderScan measures what checking a capture's order costs, the
// price an in-order capture pays for the re-ordering others need: the
// order-only first pass (capture.OrderScanner.Scan over the mapped file,
// as the replay runs it when the backends are addresses; with prefixes the
// order check rides on the detection pass, one OrderScanner.Add a record)
// over issue 11's class at 2,000,000 packets, in time order and with 1 %
// and 10 % of the records 1 ms late. Metrics: ns/record, the late records
// found, and B/op: the Order keeps no bytes per late record (a count and
// the latest lag), so B/op is the scan's own buffers whatever the
// disorder.
func BenchmarkOrderScan(b *testing.B) {
	for _, late := range []float64{0, 0.01, 0.1} {
		b.Run(orderName(late), func(b *testing.B) {
			path := busyCaptureLate(b, 2_000_000, late)
			var lateN, records int
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rd, err := capture.OpenScan(path, path)
				if err != nil {
					b.Fatal(err)
				}
				s := capture.NewOrderScanner(rd, 0)
				if err := s.Scan(rd, 1<<20, func() bool { return true }); err != nil {
					b.Fatal(err)
				}
				o := s.Order()
				lateN, records = o.Late(), 2_000_000
				rd.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records*b.N), "ns/record")
			b.ReportMetric(float64(lateN), "late-records")
		})
	}
}

// BenchmarkOrdered reads issue 11's class at 2,000,000 packets in time
// order through capture.Ordered, as the replay pass does, from the Order
// of a first pass (not timed): in order, and with 1 % and 10 % of the
// records 1 ms late. Metrics: ns/record, B/op and allocs/op of the
// replay's reading alone, and late-held, the most late records the
// Ordered held at once (its look-ahead runs one reach, 1 ms here, ahead:
// about 100 late records at 10 %, whatever the file's length).
func BenchmarkOrdered(b *testing.B) {
	for _, late := range []float64{0, 0.01, 0.1} {
		b.Run(orderName(late), func(b *testing.B) {
			path := busyCaptureLate(b, 2_000_000, late)
			o, err := capture.ScanOrder(path, 0, nil)
			if err != nil {
				b.Fatal(err)
			}
			var held, records int
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rd, err := capture.OpenScan(path, path) // mapped, as the replay reads it
				if err != nil {
					b.Fatal(err)
				}
				s := capture.NewOrdered(rd, rd.ReaderAt(), o)
				for records = 0; ; records++ {
					if _, err := s.Next(); err != nil {
						break
					}
				}
				held = s.MostHeld()
				rd.Close()
			}
			if records != 2_000_000 {
				b.Fatalf("%d records, want 2,000,000", records)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records*b.N), "ns/record")
			b.ReportMetric(float64(held), "late-held")
		})
	}
}

// benchBusy replays busyCapture(packets) with the outside view written to
// out.
func benchBusy(b *testing.B, packets int, out string) {
	benchBusyPath(b, busyCapture(b, packets), packets, out)
}

// benchBusyPath replays path, a capture of issue 11's class of the given
// number of packets, with the outside view written to out.
func benchBusyPath(b *testing.B, path string, packets int, out string) {
	workers := runtime.GOMAXPROCS(0)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		res, err := Run([]string{path}, busyConfig(out, workers, nil))
		if err != nil {
			b.Fatal(err)
		}
		if res.Counts.Packets != int64(packets) {
			b.Fatalf("counts %+v", res.Counts)
		}
	}
	b.ReportMetric(float64(packets*b.N)/time.Since(start).Seconds(), "pkts/s")
	b.ReportMetric(float64(workers), "workers")
}

func benchReplay(b *testing.B, gap time.Duration) {
	path, specs := benchCapture(b, gap)
	out := filepath.Join(b.TempDir(), "out.pcapng")
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		res, err := Run([]string{path}, Config{Engine: oneFrontend(0), Backends: specs, Output: out, Workers: runtime.GOMAXPROCS(0)})
		if err != nil {
			b.Fatal(err)
		}
		if res.Counts.Packets != benchPackets || res.Counts.Translated != benchPackets {
			b.Fatalf("counts %+v", res.Counts)
		}
	}
	b.ReportMetric(float64(benchPackets*b.N)/time.Since(start).Seconds(), "pkts/s")
}

// BenchmarkCensus measures the first pass's census of a record (which
// addresses the capture holds, for --backends prefixes and detection) on
// the first 100,000 records of issue 11's class: best-case/plain-ipv4 as
// recorded (Ethernet/IPv4, read at fixed offsets) and worst-case/vlan
// with an 802.1Q tag in every frame (each decoded in full). Metrics:
// ns/record; allocs/op and B/op are the census's, 0 either way once its
// set holds the capture's addresses.
func BenchmarkCensus(b *testing.B) {
	c := pcapgen.Issue11()
	c.Packets = 100_000
	var buf bytes.Buffer
	if err := c.Write(&buf); err != nil {
		b.Fatal(err)
	}
	rd, err := capture.NewReader("busy", &buf)
	if err != nil {
		b.Fatal(err)
	}
	var plain, vlan []capture.Record
	for {
		rec, err := rd.Next()
		if err != nil {
			break
		}
		rec.Data = slices.Clone(rec.Data)
		plain = append(plain, rec)
		tagged := rec
		tagged.Data = slices.Concat(rec.Data[:12], []byte{0x81, 0x00, 0x00, 0x07}, rec.Data[12:])
		vlan = append(vlan, tagged)
	}
	if len(plain) != c.Packets {
		b.Fatalf("%d records", len(plain))
	}
	for _, bc := range []struct {
		name string
		recs []capture.Record
	}{{"best-case/plain-ipv4", plain}, {"worst-case/vlan", vlan}} {
		b.Run(bc.name, func(b *testing.B) {
			cs := newCensus()
			for _, rec := range bc.recs {
				cs.record(rec) // the set holds every address before the timing
			}
			b.ReportAllocs()
			for b.Loop() {
				for _, rec := range bc.recs {
					cs.record(rec)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(bc.recs)), "ns/record")
			if n := len(cs.openers.all()); n < c.Hosts*9/10 {
				b.Fatalf("%d hosts found opening flows, want most of the %d", n, c.Hosts)
			}
		})
	}
}

// orderName names a sub-benchmark over issue 11's class at 2,000,000
// packets with a fraction late of its records late (none: the best case,
// in order).
func orderName(late float64) string {
	if late == 0 {
		return "busy-subnet/packets=2M/best-case/in-order"
	}
	return fmt.Sprintf("busy-subnet/packets=2M/late=%g%%", late*100)
}
