package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"testing"
	"time"
)

// ngNano builds a little-endian pcapng file of recs (Ethernet, one
// interface with nanosecond timestamps).
func ngNano(recs []Record) []byte {
	b := le.shb()
	idb := le.o.AppendUint16(nil, 1)
	idb = le.o.AppendUint16(idb, 0)
	idb = le.o.AppendUint32(idb, 0)
	idb = append(idb, 9, 0, 1, 0, 9, 0, 0, 0) // if_tsresol 9, end of options
	idb = append(idb, 0, 0, 0, 0)
	b = append(b, le.block(1, idb)...)
	for _, r := range recs {
		ts := uint64(r.Time.UnixNano())
		body := le.o.AppendUint32(nil, 0)
		body = le.o.AppendUint32(body, uint32(ts>>32))
		body = le.o.AppendUint32(body, uint32(ts))
		body = le.o.AppendUint32(body, uint32(len(r.Data)))
		body = le.o.AppendUint32(body, uint32(r.Length))
		body = append(body, r.Data...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		b = append(b, le.block(blockEnhancedPacket, body)...)
	}
	return b
}

// orderedOf scans file once and returns an Ordered over a second Reader
// of it, as a replay does with its two passes.
func orderedOf(t testing.TB, file []byte, window time.Duration) (*Ordered, *Order) {
	t.Helper()
	o, err := scanOrder(mustReader(t, file), window, nil)
	if err != nil {
		t.Logf("first pass: %v", err)
	}
	return NewOrdered(mustReader(t, file), bytes.NewReader(file), o), o
}

// sameStream reads two sources to their ends and fails at the first record
// or final error in which they differ.
func sameStream(t *testing.T, got, want Source) int {
	t.Helper()
	for i := 0; ; i++ {
		g, gErr := got.Next()
		w, wErr := want.Next()
		if !reflect.DeepEqual(gErr, wErr) {
			t.Fatalf("output %d: error = %v, want %v", i+1, gErr, wErr)
		}
		if gErr != nil {
			return i
		}
		if !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("output %d (packet %d): Data = % x, want % x", i+1, g.Number, head(g.Data), head(w.Data))
		}
		g.Data, w.Data = nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("output %d = %+v, want %+v", i+1, g, w)
		}
	}
}

// TestOrderedAgreesWithReorder: an Ordered over a file and its Order
// yields what a Reorder over the file yields, record for record (bytes,
// numbers, times, offsets, lengths, interfaces) and the same final error,
// on in-order files, files with late records and ties, files with a record
// beyond the window, cut files, pcapng files, and every public capture with
// the default window and a small one.
func TestOrderedAgreesWithReorder(t *testing.T) {
	size := func(i int) int { return 40 + i%90 }
	type tc struct {
		name   string
		file   []byte
		window time.Duration
		late   bool // the Order must have late records
	}
	tests := []tc{
		{"in order", pcapNano(genRecords(1, 20000, time.Microsecond, 0, size)), 2 * time.Millisecond, false},
		{"late records", pcapNano(genRecords(2, 20000, time.Microsecond, 1500, size)), 2 * time.Millisecond, true},
		{"ties", pcapNano(genRecords(3, 20000, time.Millisecond, 3, size)), 50 * time.Millisecond, true},
		{"late beyond the window", pcapNano(genRecords(6, 5000, time.Millisecond, 30, size)), 25 * time.Millisecond, true},
		{"cut", func() []byte { b := pcapNano(genRecords(7, 5000, time.Microsecond, 100, size)); return b[:len(b)-30] }(), time.Millisecond, true},
		{"pcapng, late records", ngNano(genRecords(8, 5000, time.Microsecond, 200, size)), time.Millisecond, true},
		{"pcapng, beyond the window", ngNano(genRecords(9, 5000, time.Millisecond, 30, size)), 25 * time.Millisecond, true},
		{"pcapng, cut", func() []byte { b := ngNano(genRecords(10, 3000, time.Microsecond, 50, size)); return b[:len(b)-7] }(), time.Millisecond, true},
	}
	files, _ := filepath.Glob(capturePath("*.pcap*"))
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewReader(path, bytes.NewReader(raw)); err != nil {
			continue // TestReaderCaptures covers the files whose header is bad
		}
		tests = append(tests, tc{filepath.Base(path), raw, 0, false}, tc{filepath.Base(path) + ", 100µs window", raw, 100 * time.Microsecond, false})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, o := orderedOf(t, tt.file, tt.window)
			if tt.late && o.Late() == 0 {
				t.Fatal("the first pass found no late record")
			}
			if !tt.late && tt.window == 0 && o.tooLate != nil {
				t.Fatalf("a record beyond the default window: %v", o.tooLate)
			}
			n := sameStream(t, got, NewReorder(mustReader(t, tt.file), tt.window))
			t.Logf("%d records, %d late", n, o.Late())
			// The same over the file mapped (OpenScan), as the replay reads
			// it: the look-ahead and the late records read from the mapping.
			path := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(path, tt.file, 0o644); err != nil {
				t.Fatal(err)
			}
			rd, err := OpenScan(path, "written")
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			if rd.format == PCAP && !rd.mapped {
				t.Fatal("not mapped")
			}
			sameStream(t, NewOrdered(rd, rd.ReaderAt(), o), NewReorder(mustReader(t, tt.file), tt.window))
		})
	}
}

// TestOrderedFileChanged: if the file changes between the two passes, the
// replay does not return records out of order or lose one: the stream ends
// with an error naming the record (its packet number and offset) that is
// not what the first pass saw, after every record before it.
func TestOrderedFileChanged(t *testing.T) {
	const size = 60
	offsetOf := func(number int) int64 { return pcapHeader + int64(number-1)*(pcapRecord+size) }
	setTime := func(file []byte, number int, at time.Time) {
		binary.LittleEndian.PutUint32(file[offsetOf(number):], uint32(at.Unix()))
		binary.LittleEndian.PutUint32(file[offsetOf(number)+4:], uint32(at.Nanosecond()))
	}
	inOrder := genRecords(11, 200, time.Microsecond, 0, func(int) int { return size })
	late := genRecords(12, 200, time.Microsecond, 5, func(int) int { return size })
	tests := []struct {
		name   string
		recs   []Record
		change func(file []byte)
		packet int
	}{
		// The first pass found every record in order: the replay finds
		// packet 100 late (earlier than packet 99).
		{"late where the first pass saw none", inOrder, func(f []byte) { setTime(f, 100, inOrder[89].Time) }, 100},
		// The first pass found records at most 5 µs late; packet 150 is
		// now 40 µs late (within the 1 ms window).
		{"later than the first pass saw", late, func(f []byte) { setTime(f, 150, t0.Add(109*time.Microsecond)) }, 150},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := pcapNano(tt.recs)
			o, err := scanOrder(mustReader(t, file), time.Millisecond, nil)
			if err != nil || o.tooLate != nil {
				t.Fatalf("first pass: %v, %v", err, o.tooLate)
			}
			changed := bytes.Clone(file)
			tt.change(changed)
			s := NewOrdered(mustReader(t, changed), bytes.NewReader(changed), o)
			var got []int
			for {
				rec, err := s.Next()
				if err == nil {
					got = append(got, rec.Number)
					continue
				}
				var ce *Error
				if !errors.As(err, &ce) || !errors.Is(err, ErrBadRecord) || ce.Packet != tt.packet || ce.Offset != offsetOf(tt.packet) || ce.File != "written" {
					t.Fatalf("error = %v, want one naming packet %d at offset %d", err, tt.packet, offsetOf(tt.packet))
				}
				t.Log(err)
				break
			}
			// Every record before the changed one was returned, in time
			// order, once.
			seen := map[int]bool{}
			for i, n := range got {
				if seen[n] || i > 0 && tt.recs[n-1].Time.Before(tt.recs[got[i-1]-1].Time) {
					t.Fatalf("record %d out of order or twice: %v", n, got)
				}
				seen[n] = true
			}
			for n := 1; n < tt.packet; n++ {
				if !seen[n] {
					t.Fatalf("record %d, before the changed one, was not returned (%d returned)", n, len(got))
				}
			}
		})
	}
}

// TestOrderedHoldsOneReach: the late records an Ordered holds at once are
// at most those the file has within one reach (how late the latest record
// is, at most the window) ahead of the record being returned, whatever the
// length of the file: a file four times as long holds no more. The bound
// is counted here from the records' times alone. A file in order makes no
// look-ahead: it is read once.
func TestOrderedHoldsOneReach(t *testing.T) {
	size := func(i int) int { return 40 + i%30 }
	// bound is the most late records between a record that is the latest
	// so far (at time k) and the first record after it whose latest time
	// reaches k plus the reach, the farthest an Ordered looks ahead.
	bound := func(recs []Record) (late, most int) {
		latest := make([]time.Time, len(recs))
		var reach time.Duration
		for i, r := range recs {
			latest[i] = r.Time
			if i > 0 && r.Time.Before(latest[i-1]) {
				latest[i] = latest[i-1]
				reach = max(reach, latest[i-1].Sub(r.Time))
				late++
			}
		}
		for i, r := range recs {
			if i > 0 && r.Time.Before(latest[i-1]) {
				continue
			}
			n := 0
			for j := i + 1; j < len(recs); j++ {
				if recs[j].Time.Before(latest[j-1]) {
					n++
				}
				if !latest[j].Before(r.Time.Add(reach)) {
					break
				}
			}
			most = max(most, n)
		}
		return late, most
	}
	first := -1 // the bound of the shorter file, which the longer one keeps to
	for _, n := range []int{20_000, 80_000} {
		// 1 µs apart, each record up to 50 µs early: about 98 % late
		// (jitter makes most records earlier than one before them).
		recs := genRecords(21, n, time.Microsecond, 50, size)
		late, most := bound(recs)
		if first < 0 {
			first = most
		}
		s, o := orderedOf(t, pcapNano(recs), time.Millisecond)
		if o.Late() != late {
			t.Fatalf("%d records: the first pass found %d late, want %d", n, o.Late(), late)
		}
		for {
			if _, err := s.Next(); err != nil {
				break
			}
		}
		t.Logf("%d records, %d late: held at most %d, bound %d", n, late, s.peak, most)
		if s.peak > min(most, first) || s.peak == 0 {
			t.Errorf("%d records, %d late: held %d at once, want 1 to %d", n, late, s.peak, min(most, first))
		}
	}
	s, o := orderedOf(t, pcapNano(genRecords(22, 20_000, time.Microsecond, 0, size)), time.Millisecond)
	for {
		if _, err := s.Next(); err != nil {
			break
		}
	}
	if !o.InOrder() || s.ahead != nil || s.peak != 0 {
		t.Errorf("in order: %v, look-ahead made: %v, held %d", o.InOrder(), s.ahead != nil, s.peak)
	}
}

// Reading an in-order capture through Ordered allocates nothing per record.
func TestOrderedAllocs(t *testing.T) {
	raw := pcapStream(20000, 10*time.Microsecond, benchFrame)
	s, o := orderedOf(t, raw, time.Millisecond)
	if !o.InOrder() {
		t.Fatal("the stream is not in order")
	}
	nextAllocates(t, s, 5000)
}

// FuzzOrdered: for any bytes and window, Ordered after a first pass
// yields what Reorder yields.
func FuzzOrdered(f *testing.F) {
	files, _ := filepath.Glob(capturePath("*.pcap*"))
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw[:min(len(raw), 2000)], int64(0))
		f.Add(raw[:min(len(raw), 2000)], int64(100*time.Microsecond))
	}
	size := func(i int) int { return 20 + i%30 }
	f.Add(pcapNano(genRecords(1, 50, time.Microsecond, 10, size)), int64(5*time.Microsecond))
	f.Add(ngNano(genRecords(2, 50, time.Microsecond, 10, size)), int64(3*time.Microsecond))
	f.Fuzz(func(t *testing.T, data []byte, window int64) {
		if _, err := NewReader("written", bytes.NewReader(data)); err != nil {
			return
		}
		w := time.Duration(window)
		got, _ := orderedOf(t, data, w)
		sameStream(t, got, NewReorder(mustReader(t, data), w))
	})
}

// TestOpenScanAgreesWithOpen: a Reader from OpenScan (a classic pcap file
// mapped into memory) yields what one from OpenAs yields, record for
// record and the same final error, on every public capture and on
// synthetic pcap files whole and cut inside a record header and inside a
// record's data.
func TestOpenScanAgreesWithOpen(t *testing.T) {
	paths, _ := filepath.Glob(capturePath("*.pcap*"))
	dir := t.TempDir()
	whole := pcapNano(genRecords(12, 3000, time.Microsecond, 10, func(i int) int { return 40 + i%90 }))
	for name, b := range map[string][]byte{"whole.pcap": whole, "cut-header.pcap": whole[:len(whole)-100], "cut-data.pcap": whole[:len(whole)-7], "empty.pcap": nil, "header-only.pcap": whole[:24]} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want, wErr := OpenAs(path, "f")
			got, gErr := OpenScan(path, "f")
			if !reflect.DeepEqual(gErr, wErr) {
				t.Fatalf("OpenScan error = %v, want %v", gErr, wErr)
			}
			if wErr != nil {
				return
			}
			defer want.Close()
			defer got.Close()
			if got.format == PCAP && !got.mapped && filepath.Ext(path) == ".pcap" {
				t.Error("a classic pcap file was not mapped")
			}
			n := sameStream(t, got, want)
			t.Logf("%d records", n)
		})
	}
}

// TestOpenScanFileShrinks: a mapped file cut short while it is read makes
// the read fault; with debug.SetPanicOnFault (as the replay's first pass
// sets) that is a recoverable runtime error, not a crash.
func TestOpenScanFileShrinks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shrinks.pcap")
	recs := genRecords(13, 20000, time.Microsecond, 0, func(int) int { return 200 })
	if err := os.WriteFile(path, pcapNano(recs), 0o644); err != nil {
		t.Fatal(err)
	}
	rd, err := OpenScan(path, "shrinks")
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if !rd.mapped {
		t.Fatal("not mapped")
	}
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	faulted := func() (f bool) {
		defer func() {
			if p := recover(); p != nil {
				_, f = p.(interface{ Addr() uintptr }) // a fault, with its address (debug.SetPanicOnFault)
				t.Log(p)
			}
		}()
		for {
			rec, err := rd.Next()
			if err != nil {
				t.Logf("Next: %v", err)
				return false
			}
			var sum byte
			for _, b := range rec.Data {
				sum += b
			}
			_ = sum
		}
	}()
	if !faulted {
		t.Fatal("reading past the new end did not fault")
	}
}

// TestOrderScanAgreesWithAdd: OrderScanner.Scan, which reads a classic
// pcap file's headers alone, learns the Order that Add learns from every
// Record, on the files of TestOrderedAgreesWithReorder (the replay of each
// from both is the same stream), and stops when tick says so.
func TestOrderScanAgreesWithAdd(t *testing.T) {
	size := func(i int) int { return 40 + i%90 }
	files := map[string][]byte{
		"in order":     pcapNano(genRecords(1, 20000, time.Microsecond, 0, size)),
		"late":         pcapNano(genRecords(2, 20000, time.Microsecond, 1500, size)),
		"ties":         pcapNano(genRecords(3, 20000, time.Millisecond, 3, size)),
		"beyond":       pcapNano(genRecords(6, 5000, time.Millisecond, 30, size)),
		"cut":          func() []byte { b := pcapNano(genRecords(7, 5000, time.Microsecond, 100, size)); return b[:len(b)-30] }(),
		"pcapng, late": ngNano(genRecords(8, 5000, time.Microsecond, 200, size)),
	}
	for name, file := range files {
		t.Run(name, func(t *testing.T) {
			for _, w := range []time.Duration{time.Millisecond, 25 * time.Millisecond} {
				rd := mustReader(t, file)
				s := NewOrderScanner(rd, w)
				scanErr := s.Scan(rd, 256, func() bool { return true })
				want, wantErr := scanOrder(mustReader(t, file), w, nil)
				if !reflect.DeepEqual(scanErr, wantErr) {
					t.Fatalf("window %v: Scan error %v, want %v", w, scanErr, wantErr)
				}
				got := s.Order()
				if got.Late() != want.Late() || !reflect.DeepEqual(got.tooLate, want.tooLate) {
					t.Fatalf("window %v: %d late, too late %v; want %d, %v", w, got.Late(), got.tooLate, want.Late(), want.tooLate)
				}
				sameStream(t, NewOrdered(mustReader(t, file), bytes.NewReader(file), got), NewOrdered(mustReader(t, file), bytes.NewReader(file), want))
			}
		})
	}
	rd := mustReader(t, files["in order"])
	s := NewOrderScanner(rd, time.Millisecond)
	ticks := 0
	if err := s.Scan(rd, 100, func() bool { ticks++; return ticks < 3 }); err != nil || rd.n != 299 {
		t.Fatalf("Scan stopped after %d records (%v), want 299", rd.n, err)
	}
}
