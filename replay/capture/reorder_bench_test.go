package capture

import (
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// streamSource yields n records of size bytes each, step apart from t0, in
// time order, with Data aliasing one buffer as Reader does.
type streamSource struct {
	n, i int
	step time.Duration
	buf  []byte
}

func (s *streamSource) Next() (Record, error) {
	if s.i == s.n {
		return Record{}, io.EOF
	}
	s.i++
	s.buf[0], s.buf[1] = byte(s.i), byte(s.i>>8)
	return Record{
		Number:   s.i,
		Time:     t0.Add(time.Duration(s.i) * s.step),
		LinkType: layers.LinkTypeEthernet,
		Data:     s.buf,
		Length:   len(s.buf),
		Offset:   24 + int64(s.i-1)*int64(16+len(s.buf)),
	}, nil
}

// BenchmarkReorder reorders an in-order stream of 1,000,000 records of 80
// bytes, 1 µs apart, with the default 1 s window: the whole stream is held
// at once, the case of a large capture replayed end to end. One op is the
// whole stream.
func BenchmarkReorder(b *testing.B) {
	const records = 1_000_000
	src := &streamSource{n: records, step: time.Microsecond, buf: make([]byte, 80)}
	b.ReportAllocs()
	start := time.Now()
	for range b.N {
		src.i = 0
		if n := drain(b, NewReorder(src, 0)); n != records {
			b.Fatalf("%d records out, want %d", n, records)
		}
	}
	el := time.Since(start)
	b.ReportMetric(float64(el.Nanoseconds())/float64(records*b.N), "ns/record")
	b.ReportMetric(float64(records*b.N)/el.Seconds(), "records/s")
}
