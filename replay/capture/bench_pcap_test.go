package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

// benchFrame is an 80-byte Ethernet/IPv4/TCP frame, the size of the
// records of the replay benchmark capture.
var benchFrame = func() []byte {
	f := make([]byte, 80)
	copy(f, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00}) // Ethernet, IPv4
	copy(f[14:], []byte{0x45, 0, 0, 66, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 198, 18, 0, 1})
	copy(f[34:], []byte{0x4e, 0x20, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff})
	return f
}()

// pcapStream returns a little-endian microsecond pcap of n copies of frame,
// gap apart from t0, each stamped with its number in its first bytes.
func pcapStream(n int, gap time.Duration, frame []byte) []byte {
	b := append(make([]byte, 0, pcapHeader+n*(pcapRecord+len(frame))), pcapFile(65535, 1)...)
	for i := range n {
		t := t0.Add(time.Duration(i) * gap)
		b = binary.LittleEndian.AppendUint32(b, uint32(t.Unix()))
		b = binary.LittleEndian.AppendUint32(b, uint32(t.Nanosecond()/1000))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
		b = append(b, frame...)
		binary.BigEndian.PutUint32(b[len(b)-len(frame):], uint32(i))
	}
	return b
}

// BenchmarkReaderPCAP reads an endless in-order classic pcap of 80-byte
// records. One op is one record.
func BenchmarkReaderPCAP(b *testing.B) {
	raw := pcapStream(10000, 10*time.Microsecond, benchFrame)
	r, err := NewReader("bench", &loop{data: raw, skip: pcapHeader})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkReadReorder reads a 1,000,000-record in-memory pcap of 80-byte
// records through a Reader and a Reorder with the default 1 s window, the
// first stage of natcheck replay. One op is the whole capture.
func BenchmarkReadReorder(b *testing.B) {
	const records = 1_000_000
	for _, gap := range []time.Duration{time.Microsecond, 10 * time.Microsecond} {
		b.Run(fmt.Sprintf("gap=%v", gap), func(b *testing.B) {
			raw := pcapStream(records, gap, benchFrame)
			b.ReportAllocs()
			for b.Loop() {
				rd, err := NewReader("bench", bytes.NewReader(raw))
				if err != nil {
					b.Fatal(err)
				}
				if n := drain(b, NewReorder(rd, 0)); n != records {
					b.Fatalf("%d records out, want %d", n, records)
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(records*b.N)
			b.ReportMetric(ns, "ns/record")
			b.ReportMetric(1e9/ns, "records/s")
		})
	}
}
