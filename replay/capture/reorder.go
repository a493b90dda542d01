package capture

import "time"

// DefaultWindow is the reordering window Reorder uses when given none. A
// merged capture (mergecap, or dumpcap on several interfaces) puts records
// of different interfaces out of order by the time it takes to drain one
// interface's buffer, well under a second; a record later than that points
// to a spliced or damaged file rather than to merging.
const DefaultWindow = time.Second

// Reorder yields the records of a Source in timestamp order, records with
// equal timestamps in the order they were read. It holds each record until
// a record at least window later has been read, so a record may arrive up
// to window earlier than the latest record before it; an earlier one ends
// the stream with an *OrderError naming both records. Gaps of any length
// forward in time are fine.
//
// Held records own copies of their bytes, taken from buffers Reorder
// recycles, so reading does not allocate once the window is full. Memory
// grows with the number of records in one window. A Reorder is not safe for
// concurrent use.
type Reorder struct {
	src    Source
	window time.Duration
	heap   []heldRecord // a min-heap by (Time, seq)
	seq    uint64
	free   [][]byte // buffers of records already handed out
	out    []byte   // the buffer of the record last returned
	// latest is the time and number of the latest record read so far.
	latest     time.Time
	latestNum  int
	haveLatest bool
	err        error // the error that ended src, returned once heap is empty
}

type heldRecord struct {
	rec Record
	seq uint64
}

// NewReorder returns a Reorder over src with the given window, or
// DefaultWindow if window <= 0.
func NewReorder(src Source, window time.Duration) *Reorder {
	if window <= 0 {
		window = DefaultWindow
	}
	return &Reorder{src: src, window: window}
}

// Next returns the next record in time order, or the error that ended the
// source (io.EOF at its clean end) once every record read before it has
// been returned. The record's Data is valid until the next call to Next.
func (r *Reorder) Next() (Record, error) {
	if r.out != nil {
		r.free = append(r.free, r.out)
		r.out = nil
	}
	for r.err == nil {
		if len(r.heap) > 0 && !r.heap[0].rec.Time.After(r.latest.Add(-r.window)) {
			break // nothing still to come can be earlier than heap[0]
		}
		rec, err := r.src.Next()
		if err != nil {
			r.err = err
			break
		}
		if r.haveLatest && rec.Time.Before(r.latest.Add(-r.window)) {
			r.err = &OrderError{Packet: rec.Number, Time: rec.Time, Latest: r.latestNum, LatestTime: r.latest, Window: r.window}
			break
		}
		if !r.haveLatest || rec.Time.After(r.latest) {
			r.latest, r.latestNum, r.haveLatest = rec.Time, rec.Number, true
		}
		var buf []byte
		if n := len(r.free); n > 0 {
			buf, r.free = r.free[n-1], r.free[:n-1]
		}
		rec.Data = append(buf[:0], rec.Data...)
		r.push(heldRecord{rec: rec, seq: r.seq})
		r.seq++
	}
	if len(r.heap) == 0 {
		return Record{}, r.err
	}
	rec := r.pop().rec
	r.out = rec.Data
	return rec, nil
}

// Window returns the reordering window.
func (r *Reorder) Window() time.Duration { return r.window }

func (h heldRecord) before(o heldRecord) bool {
	if h.rec.Time.Equal(o.rec.Time) {
		return h.seq < o.seq
	}
	return h.rec.Time.Before(o.rec.Time)
}

// push and pop are a binary heap written out, as container/heap would box
// every record in an interface and allocate.
func (r *Reorder) push(x heldRecord) {
	r.heap = append(r.heap, x)
	i := len(r.heap) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !r.heap[i].before(r.heap[p]) {
			break
		}
		r.heap[i], r.heap[p] = r.heap[p], r.heap[i]
		i = p
	}
}

func (r *Reorder) pop() heldRecord {
	h := r.heap
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = heldRecord{}
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if rr := l + 1; rr < n && h[rr].before(h[l]) {
			m = rr
		}
		if !h[m].before(h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	r.heap = h
	return top
}
