package capture

import (
	"errors"
	"io"
	"testing"
	"time"
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
			r, err := Open(capturePath(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			recs, err := readAll(t, NewReorder(r, tt.window))
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
	r := NewReorder(&fakeSource{times: times}, 0)
	for range 3000 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if a := testing.AllocsPerRun(10000, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per record, want 0", a)
	}
}
