package replay

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/natcheck/natcheck/internal/pcapgen"
	"github.com/natcheck/natcheck/reference"
)

const benchPackets = 2_000_000

// benchCapture writes (once per machine, cached in the temp folder) a
// 2,000,000-packet capture: 50 instances, 40,000 TCP flows to distinct
// servers, each a SYN, a SYN-ACK and 48 data segments alternating
// directions, gap apart, flows interleaved.
func benchCapture(b *testing.B, gap time.Duration) (string, []netip.Prefix) {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("natcheck-bench-%d-%v.pcap", benchPackets, gap))
	var specs []netip.Prefix
	for i := range 50 {
		specs = append(specs, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 32))
	}
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

// BenchmarkReplayEndToEnd replays the 2,000,000-packet capture: read,
// decode, engine, verdict, and the translated outside view written as
// pcapng. Packets are 1 µs apart (a million in the 1 s re-ordering window)
// or 10 µs apart (100,000: a busy link). It uses one engine per CPU: run
// it with -cpu 1 for one core and -cpu 2 for the speed-up of spreading
// instances over cores.
func BenchmarkReplayEndToEnd(b *testing.B) {
	for _, gap := range []time.Duration{time.Microsecond, 10 * time.Microsecond} {
		b.Run("gap="+gap.String(), func(b *testing.B) { benchReplay(b, gap) })
	}
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
