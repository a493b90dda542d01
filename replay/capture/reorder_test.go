package capture

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket/layers"
)

// fakeSource yields records with the given times (seconds from t0) and
// numbers 1..n, each with one byte of data equal to its number.
type fakeSource struct {
	times []float64
	i     int
	buf   [1]byte
}

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (s *fakeSource) Next() (Record, error) {
	if s.i == len(s.times) {
		return Record{}, io.EOF
	}
	s.i++
	s.buf[0] = byte(s.i) // aliased, as Reader does
	d := time.Duration(s.times[s.i-1] * float64(time.Second))
	return Record{Number: s.i, Time: t0.Add(d), Data: s.buf[:]}, nil
}

func TestReorder(t *testing.T) {
	tests := []struct {
		name    string
		times   []float64
		window  time.Duration
		want    []int // record numbers in output order
		wantErr *OrderError
	}{
		{"in order", []float64{0, 1, 2, 3}, 0, []int{1, 2, 3, 4}, nil},
		{"one late", []float64{0, 0.5, 0.2, 0.7}, 0, []int{1, 3, 2, 4}, nil},
		{"equal times stay stable", []float64{1, 1, 0.5, 1, 0.5}, 0, []int{3, 5, 1, 2, 4}, nil},
		{"long gap", []float64{0, 100000, 99999.5, 2e6}, 0, []int{1, 3, 2, 4}, nil},
		{"exactly the window", []float64{1, 2, 1, 3}, time.Second, []int{1, 3, 2, 4}, nil},
		// Records read before the late one are all returned, then the error.
		{"beyond the window", []float64{0, 2, 3, 1.5, 4}, time.Second, []int{1, 2, 3}, &OrderError{Packet: 4, Latest: 3}},
		{"window option", []float64{0, 10, 5, 11}, 6 * time.Second, []int{1, 3, 2, 4}, nil},
		{"interleaved late records", []float64{0, 0.3, 0.1, 0.2, 0.5, 0.4, 0.45, 1.6, 0.7}, 0, []int{1, 3, 4, 2, 6, 7, 5, 9, 8}, nil},
		// 1 comes first and 4 and 6 equal the latest time when read, so they
		// go in the FIFO; 3 and 5 are late, go into the heap, and still
		// follow 1, which the 1.5 s window holds until they are read.
		{"ties between in-order and late", []float64{1, 2, 1, 2, 1, 2, 3}, 1500 * time.Millisecond, []int{1, 3, 5, 2, 4, 6, 7}, nil},
		{"late after interleaving", []float64{0, 0.5, 0.2, 2, 1.5, 0.9}, time.Second, []int{1, 3, 2, 5, 4}, &OrderError{Packet: 6, Latest: 4}},
		{"latest keeps the first of equal times", []float64{0, 2, 2, 0.5}, time.Second, []int{1, 2, 3}, &OrderError{Packet: 4, Latest: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReorder(&fakeSource{times: tt.times}, tt.window)
			recs, err := readAll(t, r)
			var got []int
			for i, rec := range recs {
				got = append(got, rec.Number)
				if rec.Data[0] != byte(rec.Number) {
					t.Errorf("record %d carries the bytes of record %d", rec.Number, rec.Data[0])
				}
				if i > 0 && rec.Time.Before(recs[i-1].Time) {
					t.Errorf("record %d is earlier than the one before it", rec.Number)
				}
			}
			if !equalInts(got, tt.want) {
				t.Errorf("order = %v, want %v", got, tt.want)
			}
			var oe *OrderError
			switch {
			case tt.wantErr == nil && err != nil:
				t.Errorf("error = %v, want none", err)
			case tt.wantErr != nil && !errors.As(err, &oe):
				t.Errorf("error = %v, want an *OrderError", err)
			case tt.wantErr != nil && (oe.Packet != tt.wantErr.Packet || oe.Latest != tt.wantErr.Latest):
				t.Errorf("OrderError names packets %d and %d, want %d and %d", oe.Packet, oe.Latest, tt.wantErr.Packet, tt.wantErr.Latest)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The real merged capture: many_interfaces-1 has packet 3 (lo0) 287µs
// before packet 2 (en0); communityid-tcp-snaplen96 has packets 8 and 10
// earlier than 7 and 9 (tshark frame.time_epoch), which the shared README
// does not mention.
func TestReorderCaptures(t *testing.T) {
	tests := []struct {
		file      string
		window    time.Duration
		wantFirst []int
		wantErr   *OrderError
	}{
		{"pcapplusplus__many_interfaces-1.pcapng", 0, []int{3, 1}, nil},
		// 7 .184844, 8 .184698, 9 .184920, 10 .184736
		{"zeek__communityid-tcp-snaplen96.pcap", 0, []int{1, 2, 3, 4, 5, 6, 8, 10, 7, 9, 11, 12}, nil},
		{"ndpi__dns_fragmented.pcap", 0, []int{1, 2, 3, 4}, nil}, // a gap of 1,827,507 s
		{"zeek__communityid-tcp-snaplen96.pcap", 100 * time.Microsecond, nil, &OrderError{Packet: 8, Latest: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			recs, err := readAll(t, NewReorder(openCapture(t, tt.file), tt.window))
			for i := 1; i < len(recs); i++ {
				if recs[i].Time.Before(recs[i-1].Time) {
					t.Errorf("packet %d is earlier than packet %d before it", recs[i].Number, recs[i-1].Number)
				}
			}
			var oe *OrderError
			if tt.wantErr != nil {
				if !errors.As(err, &oe) || oe.Packet != tt.wantErr.Packet || oe.Latest != tt.wantErr.Latest {
					t.Fatalf("error = %v, want packet %d earlier than packet %d", err, tt.wantErr.Packet, tt.wantErr.Latest)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, n := range tt.wantFirst {
				if recs[i].Number != n {
					t.Fatalf("output %d is packet %d, want %d", i+1, recs[i].Number, n)
				}
			}
		})
	}
}

// Once the window is full, Reorder recycles its buffers.
func TestReorderAllocs(t *testing.T) {
	times := make([]float64, 20000)
	for i := range times {
		times[i] = float64(i) * 0.001
		if i%7 == 3 {
			times[i] -= 0.0025 // a little out of order
		}
	}
	nextAllocates(t, NewReorder(&fakeSource{times: times}, 0), 3000)
}

// recordSource yields recs in order, then err (io.EOF if nil). Like Reader,
// it returns Data in one buffer that it overwrites on the next call.
type recordSource struct {
	recs []Record
	err  error
	i    int
	buf  []byte
}

func (s *recordSource) Next() (Record, error) {
	if s.i == len(s.recs) {
		if s.err == nil {
			return Record{}, io.EOF
		}
		return Record{}, s.err
	}
	rec := s.recs[s.i]
	s.i++
	for i := range s.buf {
		s.buf[i] = 0xee // whoever kept the last record's bytes sees this
	}
	s.buf = append(s.buf[:0], rec.Data...)
	rec.Data = s.buf
	return rec, nil
}

// reorderModel is what Reorder must return for recs: the records before the
// first one more than window earlier than the latest before it, in a stable
// sort by time, then that record's OrderError or else the source's error.
func reorderModel(recs []Record, window time.Duration, srcErr error) ([]Record, error) {
	if srcErr == nil {
		srcErr = io.EOF
	}
	var latest Record
	for i, rec := range recs {
		if i > 0 && rec.Time.Before(latest.Time.Add(-window)) {
			srcErr = &OrderError{Packet: rec.Number, Time: rec.Time, Offset: rec.Offset, Latest: latest.Number, LatestTime: latest.Time, Window: window}
			recs = recs[:i]
			break
		}
		if i == 0 || rec.Time.After(latest.Time) {
			latest = rec
		}
	}
	want := slices.Clone(recs)
	slices.SortStableFunc(want, func(a, b Record) int { return a.Time.Compare(b.Time) })
	return want, srcErr
}

// checkReorder reads every record of NewReorder over recs and compares
// records, bytes included, and the final error with reorderModel.
func checkReorder(t *testing.T, recs []Record, window time.Duration, srcErr error) {
	t.Helper()
	r := NewReorder(&recordSource{recs: recs, err: srcErr}, window)
	want, wantErr := reorderModel(recs, r.Window(), srcErr)
	for i := 0; ; i++ {
		got, err := r.Next()
		if err != nil {
			if i != len(want) {
				t.Fatalf("Next() = %v after %d records, want %d records first", err, i, len(want))
			}
			if !reflect.DeepEqual(err, wantErr) {
				t.Fatalf("Next() = %v at the end, want %v", err, wantErr)
			}
			return
		}
		if i == len(want) {
			t.Fatalf("Next() = packet %d after the %d records, want %v", got.Number, len(want), wantErr)
		}
		if !bytes.Equal(got.Data, want[i].Data) {
			t.Fatalf("output %d (packet %d): Data = % x, want % x", i+1, got.Number, head(got.Data), head(want[i].Data))
		}
		gotf, wantf := got, want[i]
		gotf.Data, wantf.Data = nil, nil
		if !reflect.DeepEqual(gotf, wantf) {
			t.Fatalf("output %d = %+v, want %+v", i+1, gotf, wantf)
		}
		// Data is the caller's until the next call: appending to it must not
		// reach the bytes of records still held.
		_ = append(got.Data, 0xff, 0xff, 0xff, 0xff)
	}
}

func head(p []byte) []byte { return p[:min(len(p), 16)] }

// genRecords makes n records 1..n step apart, each moved by a random
// multiple of step in [-jitter, 0] (so some arrive late), with size(i)
// bytes of data that differ from record to record.
func genRecords(seed uint64, n int, step time.Duration, jitter int, size func(i int) int) []Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	recs := make([]Record, n)
	for i := range recs {
		d := time.Duration(i) * step
		if jitter > 0 {
			d -= time.Duration(rng.IntN(jitter+1)) * step
		}
		data := make([]byte, size(i))
		for j := range data {
			data[j] = byte(i*7 + j)
		}
		if len(data) >= 4 {
			data[0], data[1], data[2], data[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		}
		recs[i] = Record{Number: i + 1, Time: t0.Add(d), LinkType: layers.LinkTypeEthernet,
			Data: data, Length: len(data) + i%3, Offset: int64(i) * 100}
	}
	return recs
}

// TestReorderModel checks Reorder against reorderModel on streams that make
// the FIFO's blocks and the data chunks fill, wrap, grow and be recycled,
// with late records in the heap between them.
func TestReorderModel(t *testing.T) {
	mixed := []int{0, 1, 80, 1500, 9000, 60, 70000, 3, 200000}
	tests := []struct {
		name   string
		recs   []Record
		window time.Duration
		srcErr error
	}{
		{"in order, small", genRecords(1, 20000, time.Microsecond, 0, func(int) int { return 80 }), 2 * time.Millisecond, nil},
		{"late records, small", genRecords(2, 20000, time.Microsecond, 1500, func(i int) int { return i % 97 }), 2 * time.Millisecond, nil},
		{"many ties", genRecords(3, 20000, time.Millisecond, 3, func(i int) int { return 1 + i%5 }), 50 * time.Millisecond, nil},
		{"sizes across chunks", genRecords(4, 3000, time.Millisecond, 0, func(i int) int { return mixed[i%len(mixed)] }), 40 * time.Millisecond, nil},
		{"sizes across chunks, late", genRecords(5, 3000, time.Millisecond, 20, func(i int) int { return mixed[i*5%len(mixed)] }), 40 * time.Millisecond, nil},
		{"larger than a chunk", genRecords(6, 40, time.Millisecond, 2, func(i int) int { return maxChunk + i*100 - 2000 }), 10 * time.Millisecond, nil},
		{"all held", genRecords(7, 5000, time.Microsecond, 5, func(i int) int { return 300 + i%400 }), time.Second, nil},
		{"late beyond the window", genRecords(8, 5000, time.Millisecond, 30, func(i int) int { return 64 + i%50 }), 25 * time.Millisecond, nil},
		{"source error", genRecords(9, 5000, time.Microsecond, 100, func(int) int { return 100 }), time.Millisecond, errors.New("disk on fire")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkReorder(t, tt.recs, tt.window, tt.srcErr)
		})
	}
}

// Records whose fields do not fit the compact form come out unchanged too.
func TestReorderWide(t *testing.T) {
	zone := time.FixedZone("UTC+2", 2*3600)
	recs := []Record{
		{Number: 1, Time: t0, Data: []byte{1}},
		{Number: 2, Time: t0.Add(time.Millisecond), Data: []byte{2}, Comments: []string{"a comment"}},
		{Number: 3, Time: t0.Add(2 * time.Millisecond).In(zone), Data: []byte{3}},
		{Number: 4, Time: t0.Add(3 * time.Millisecond), Data: []byte{4, 4}, Interface: 1 << 40, Length: 1 << 40},
		{Number: 5, Time: t0.Add(time.Millisecond / 2), Data: []byte{5}, Comments: []string{"late", "and commented"}},
		{Number: 6, Time: t0.Add(4 * time.Millisecond), Data: []byte{}, Comments: []string{}},
		{Number: 7, Time: t0.Add(5 * time.Millisecond), Interface: -1, Length: -1, Offset: -1},
		{Number: 8, Time: time.Now().Round(time.Second)}, // monotonic reading
		{Number: 1 << 50, Time: time.Now().Round(time.Second).Add(time.Second), Data: []byte{9}},
	}
	checkReorder(t, recs, time.Second, nil)

	// The zero Time (a pcapng simple packet block) fits the compact form.
	zero := []Record{{Number: 1, Data: []byte{1}}, {Number: 2, Data: []byte{2}}, {Number: 3, Time: t0}}
	checkReorder(t, zero, 0, nil)
}

// The doc comment of Reorder promises 48 bytes per held record besides its
// data.
func TestReorderHeldSize(t *testing.T) {
	if got := unsafe.Sizeof(held{}); got != 48 {
		t.Errorf("unsafe.Sizeof(held{}) = %d, want 48", got)
	}
}

// Once the window is full, an in-order stream reuses its FIFO blocks and
// data chunks.
func TestReorderAllocsInOrder(t *testing.T) {
	src := &streamSource{n: 1 << 20, step: time.Microsecond, buf: make([]byte, 80)}
	nextAllocates(t, NewReorder(src, 5*time.Millisecond), 100000) // 5,000 records, 400 kB held
}

// FuzzReorder checks Reorder against reorderModel on streams whose time
// steps and data sizes come from the input.
func FuzzReorder(f *testing.F) {
	f.Add(uint8(10), []byte{})                          // no records
	f.Add(uint8(10), []byte{5, 5, 5, 5})                // in order
	f.Add(uint8(10), []byte{5, 0x80 | 3, 7, 0x80, 2})   // late within the window
	f.Add(uint8(10), []byte{5, 0x80 | 30, 7, 0x80, 2})  // late beyond it
	f.Add(uint8(1), []byte{0, 0, 0x80 | 1, 0, 0x80, 1}) // ties
	f.Fuzz(func(t *testing.T, window uint8, steps []byte) {
		var recs []Record
		d := time.Duration(0)
		for i, b := range steps {
			// The low 7 bits move time in ms, back if the top bit is set.
			step := time.Duration(b&0x7f) * time.Millisecond
			if b&0x80 != 0 {
				step = -step
			}
			d += step
			data := bytes.Repeat([]byte{byte(i)}, int(b)*37)
			recs = append(recs, Record{Number: i + 1, Time: t0.Add(d), Data: data, Length: len(data)})
		}
		checkReorder(t, recs, time.Duration(window)*time.Millisecond, nil)
	})
}

// drain reads src to its end and returns how many records it gave.
func drain(tb testing.TB, src Source) int {
	tb.Helper()
	n := 0
	for {
		_, err := src.Next()
		if err == io.EOF {
			return n
		}
		if err != nil {
			tb.Fatal(err)
		}
		n++
	}
}

// nextAllocates fails t when src.Next allocates once warm records have
// been read (buffers grown, a Reorder's window full).
func nextAllocates(t *testing.T, src Source, warm int) {
	t.Helper()
	for range warm {
		if _, err := src.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if a := testing.AllocsPerRun(10000, func() {
		if _, err := src.Next(); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per record, want 0", a)
	}
}
