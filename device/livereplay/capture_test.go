package livereplay_test

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/natcheck/natcheck/device/link"
)

// captureT0 is the time of the first packet of every capture the tests
// write.
var captureT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// frameAt is one frame of a test capture: seg at captureT0 + at, sent
// the other way round (from dst to src) when back is set.
type frameAt struct {
	at   time.Duration
	back bool
	seg  link.Segment
}

// writeCapture writes frames, in the order given, as a nanosecond pcap of
// Ethernet frames between src and dst at path.
func writeCapture(tb testing.TB, path string, src, dst net.HardwareAddr, frames []frameAt) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	for _, p := range frames {
		a, b := src, dst
		if p.back {
			a, b = dst, src
		}
		buf = link.AppendFrame(buf[:0], a, b, p.seg)
		ci := gopacket.CaptureInfo{Timestamp: captureT0.Add(p.at), CaptureLength: len(buf), Length: len(buf)}
		if err := w.WritePacket(ci, buf); err != nil {
			tb.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// testMACs are the MACs of the small captures: the replay sets its own.
var testMACs = [2]net.HardwareAddr{{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}}
