package capture

import (
	"bytes"
	"math"
	"time"

	"github.com/gopacket/gopacket/layers"
)

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
// A record no earlier than every record read before it, nearly every record
// of a capture, is queued in a FIFO at O(1) cost; only records that arrive
// late go into a heap. Queued records cost their captured bytes, packed in
// large recycled chunks, plus 48 bytes each; a record with comments, or
// whose fields do not fit that compact form, costs a whole Record more.
// Reading does not allocate once the window is full. A Reorder is not safe
// for concurrent use.
type Reorder struct {
	name   string // the file, for errors
	src    Source
	window time.Duration
	// pcap is src when it is a *Reader of a classic pcap file: its records
	// are taken straight from its buffer (see readPCAP).
	pcap *Reader

	// In-order records: fifo holds their fields in read order, data their
	// bytes in the same order, wide the whole Record of those marked wide.
	fifo heldQueue
	data byteQueue
	wide queue[Record]

	// Late records, each with its own copy of its bytes.
	heap []heapRecord // a min-heap by (key, seq)
	seq  uint64
	free [][]byte // heap buffers of records already handed out
	out  []byte   // the heap buffer of the record last returned

	// latest is the time and number of the latest record read so far, and
	// floor is latest-window: a record earlier than floor is too late, and
	// a held record no later than floor can be released.
	latest     time.Time
	latestKey  stamp
	latestNum  int
	floor      stamp
	haveLatest bool
	latestUTC  bool  // latest is time.Unix(latestKey).UTC(), not yet made
	err        error // the error that ended src, returned once nothing is held
}

// NewReorder returns a Reorder over src with the given window, or
// DefaultWindow if window <= 0.
func NewReorder(src Source, window time.Duration) *Reorder {
	if window <= 0 {
		window = DefaultWindow
	}
	r := &Reorder{src: src, window: window}
	if rd, ok := src.(*Reader); ok {
		r.name = rd.name // errors name the file
		if rd.format == PCAP {
			r.pcap = rd
		}
	}
	return r
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
		if k, ok := r.first(); ok && !r.floor.before(k) {
			break // nothing still to come can be earlier than k
		}
		if r.pcap != nil {
			r.readPCAP()
			continue
		}
		rec, err := r.src.Next()
		if err != nil {
			r.err = err
			break
		}
		r.add(rec, stampOf(rec.Time))
	}
	// Of equal times the FIFO head was read first: a record read after it
	// at the same time would have been in order too, so not in the heap.
	if r.fifo.len() > 0 && (len(r.heap) == 0 || !r.heap[0].key.before(r.fifo.front().key())) {
		return r.popFIFO(), nil
	}
	if len(r.heap) == 0 {
		return Record{}, r.err
	}
	rec := r.pop().rec
	r.out = rec.Data
	return rec, nil
}

// add takes in a record read from src, whose time is key.
func (r *Reorder) add(rec Record, key stamp) {
	switch {
	case !r.haveLatest || r.latestKey.before(key):
		r.latest, r.latestKey, r.latestNum, r.haveLatest, r.latestUTC = rec.Time, key, rec.Number, true, false
		r.floor = key.add(-r.window)
		r.pushFIFO(rec, key)
	case !key.before(r.latestKey):
		r.pushFIFO(rec, key) // equal to latest: still in order
	case key.before(r.floor):
		latest := r.latest
		if r.latestUTC {
			latest = r.latestKey.time()
		}
		r.err = &OrderError{File: r.name, Packet: rec.Number, Time: rec.Time, Offset: rec.Offset, Latest: r.latestNum, LatestTime: latest, Window: r.window}
	default:
		var buf []byte
		if n := len(r.free); n > 0 {
			buf, r.free = r.free[n-1], r.free[:n-1]
		}
		rec.Data = append(buf[:0], rec.Data...)
		r.push(heapRecord{rec: rec, key: key, seq: r.seq})
		r.seq++
	}
}

// readPCAP takes in the next record of r.pcap. An in-order record, nearly
// every one, goes from the Reader's buffer to the FIFO without becoming a
// Record: no time.Time is made and checked, and its bytes are copied once.
// With 80-byte records this halves the cost of Reader and Reorder
// (BenchmarkReadReorder).
func (r *Reorder) readPCAP() {
	h, data, err := r.pcap.readPCAP()
	if err != nil {
		r.err = err
		return
	}
	key := stamp{h.sec, h.nsec}
	if r.haveLatest && key.before(r.latestKey) || h.length > math.MaxInt32 {
		r.add(Record{Number: r.pcap.n, Time: key.time(), LinkType: r.pcap.linkType,
			Data: data, Length: int(h.length), Offset: h.offset}, key)
		return
	}
	if !r.haveLatest || r.latestKey.before(key) {
		r.latestKey, r.latestNum, r.haveLatest, r.latestUTC = key, r.pcap.n, true, true
		r.floor = key.add(-r.window)
	}
	r.fifo.push(held{sec: h.sec, nsec: h.nsec, number: int64(r.pcap.n), offset: h.offset,
		size: uint32(len(data)), length: int32(h.length), link: r.pcap.linkType})
	r.data.write(data)
}

// Window returns the reordering window.
func (r *Reorder) Window() time.Duration { return r.window }

// first returns the time of the earliest record held, if any.
func (r *Reorder) first() (stamp, bool) {
	switch {
	case r.fifo.len() > 0 && len(r.heap) > 0:
		if k := r.fifo.front().key(); !r.heap[0].key.before(k) {
			return k, true
		}
		return r.heap[0].key, true
	case r.fifo.len() > 0:
		return r.fifo.front().key(), true
	case len(r.heap) > 0:
		return r.heap[0].key, true
	}
	return stamp{}, false
}

// stamp is a time as seconds and nanoseconds since the Unix epoch: ordered
// like time.Time, but free of pointers and cheaper to compare.
type stamp struct {
	sec  int64
	nsec int32
}

func stampOf(t time.Time) stamp { return stamp{t.Unix(), int32(t.Nanosecond())} }

func (s stamp) before(o stamp) bool {
	return s.sec < o.sec || s.sec == o.sec && s.nsec < o.nsec
}

// add returns s+d, as stampOf(t.Add(d)) does for the t of s.
func (s stamp) add(d time.Duration) stamp {
	sec, nsec := s.sec+int64(d/1e9), s.nsec+int32(d%1e9)
	switch {
	case nsec >= 1e9:
		sec, nsec = sec+1, nsec-1e9
	case nsec < 0:
		sec, nsec = sec-1, nsec+1e9
	}
	return stamp{sec, nsec}
}

// time returns s as Reader makes times: in UTC.
func (s stamp) time() time.Time { return time.Unix(s.sec, int64(s.nsec)).UTC() }

// held is an in-order record in compact form. It holds no pointers, so the
// garbage collector does not scan the million of them a busy window holds;
// its bytes are in Reorder.data, size long, after those of the record
// before it.
type held struct {
	sec, number, offset int64
	nsec                int32
	size                uint32 // len(Data)
	length, iface       int32
	link                layers.LinkType
	wide                uint8 // heldCompact, heldWide or heldWideData
}

const (
	heldCompact  = iota // every field is here
	heldWide            // the fields are in Reorder.wide, the bytes in Reorder.data
	heldWideData        // the fields and bytes are in Reorder.wide
)

func (h *held) key() stamp { return stamp{h.sec, h.nsec} }

func (r *Reorder) pushFIFO(rec Record, key stamp) {
	h := held{sec: key.sec, nsec: key.nsec, number: int64(rec.Number), offset: rec.Offset,
		length: int32(rec.Length), iface: int32(rec.Interface), link: rec.LinkType}
	// The time is rebuilt as Reader makes it, time.Unix(...).UTC(); == tells
	// when that would lose a location or a monotonic reading.
	compact := rec.Comments == nil && int(h.length) == rec.Length && int(h.iface) == rec.Interface &&
		key.time() == rec.Time
	switch {
	case uint64(len(rec.Data)) > math.MaxUint32:
		h.wide = heldWideData
		rec.Data = bytes.Clone(rec.Data)
		r.wide.push(rec)
	case compact:
		h.size = uint32(len(rec.Data))
		r.data.write(rec.Data)
	default:
		h.size, h.wide = uint32(len(rec.Data)), heldWide
		r.data.write(rec.Data)
		rec.Data = nil
		r.wide.push(rec)
	}
	r.fifo.push(h)
}

func (r *Reorder) popFIFO() Record {
	h := r.fifo.pop()
	if h.wide == heldWideData {
		return r.wide.pop() // its bytes are not in r.data
	}
	data := r.data.read(int(h.size))
	if h.wide == heldWide {
		rec := r.wide.pop()
		rec.Data = data
		return rec
	}
	return Record{
		Number:    int(h.number),
		Time:      h.key().time(),
		LinkType:  h.link,
		Interface: int(h.iface),
		Data:      data,
		Length:    int(h.length),
		Offset:    h.offset,
	}
}

// heldBlock is the number of records in one block of a heldQueue: 48 KiB.
const heldBlock = 1024

// heldQueue is a FIFO of held records in fixed blocks, so that it grows
// without copying what it holds and keeps at most one block spare.
type heldQueue struct {
	blocks      queue[*[heldBlock]held]
	head, tail  int // next to pop in the first block, next free in the last
	spare       *[heldBlock]held
	first, last *[heldBlock]held
}

func (q *heldQueue) len() int {
	if q.blocks.len() == 0 {
		return 0
	}
	return (q.blocks.len()-1)*heldBlock + q.tail - q.head
}

func (q *heldQueue) push(h held) {
	if q.last == nil || q.tail == heldBlock {
		b := q.spare
		if b == nil {
			b = new([heldBlock]held)
		}
		q.spare = nil
		q.blocks.push(b)
		q.last, q.tail = b, 0
		if q.blocks.len() == 1 {
			q.first, q.head = b, 0
		}
	}
	q.last[q.tail] = h
	q.tail++
}

// front returns the record pop would return; the queue must not be empty.
func (q *heldQueue) front() *held { return &q.first[q.head] }

func (q *heldQueue) pop() held {
	h := q.first[q.head]
	q.head++
	switch {
	case q.blocks.len() == 1 && q.head == q.tail:
		q.head, q.tail = 0, 0 // empty: start the block over
	case q.head == heldBlock:
		q.spare = q.blocks.pop()
		q.first, q.head = q.blocks.front(), 0
	}
	return h
}

// Data chunks grow from minChunk to maxChunk bytes; only maxChunk ones are
// recycled, at most spareChunks of them, so a burst leaves little behind.
const (
	minChunk    = 4 << 10
	maxChunk    = 1 << 20
	spareChunks = 2
)

// byteQueue holds the bytes of queued records back to back in chunks, in
// the order they were written. A record that does not fit in the rest of
// the last chunk starts a new one; read applies the same rule, so records
// need not say where their bytes are.
type byteQueue struct {
	chunks     queue[[]byte]
	roff, woff int // read offset in the first chunk, write offset in the last
	spare      [][]byte
	next       int // size of the next new chunk
}

func (q *byteQueue) write(p []byte) {
	n := q.chunks.len()
	if n == 0 || q.woff+len(p) > len(q.chunks.back()) {
		q.chunks.push(q.newChunk(len(p)))
		q.woff = 0
		if n == 0 {
			q.roff = 0
		}
	}
	q.woff += copy(q.chunks.back()[q.woff:], p)
}

// read returns the next n bytes, which stay put until the next read.
func (q *byteQueue) read(n int) []byte {
	if n == 0 {
		return q.chunks.front()[q.roff:q.roff:q.roff]
	}
	c := q.chunks.front()
	if q.roff+n > len(c) {
		q.chunks.pop()
		if len(c) == maxChunk && len(q.spare) < spareChunks {
			q.spare = append(q.spare, c)
		}
		c, q.roff = q.chunks.front(), 0
	}
	p := c[q.roff : q.roff+n : q.roff+n] // capped: appending must not spill into the next record
	q.roff += n
	return p
}

func (q *byteQueue) newChunk(n int) []byte {
	if k := len(q.spare); k > 0 && n <= maxChunk {
		c := q.spare[k-1]
		q.spare[k-1] = nil
		q.spare = q.spare[:k-1]
		return c
	}
	size := max(q.next, minChunk)
	q.next = min(2*size, maxChunk)
	return make([]byte, max(size, n))
}

// queue is a FIFO in a slice. It moves its elements down rather than
// growing when at least half the slice is free, so it stops allocating
// once its capacity is twice the most it holds.
type queue[T any] struct {
	s     []T
	first int
}

func (q *queue[T]) len() int { return len(q.s) - q.first }
func (q *queue[T]) front() T { return q.s[q.first] }
func (q *queue[T]) back() T  { return q.s[len(q.s)-1] }

func (q *queue[T]) push(x T) {
	if len(q.s) == cap(q.s) && q.first >= len(q.s)/2 && q.first > 0 {
		n := copy(q.s, q.s[q.first:])
		clear(q.s[n:])
		q.s, q.first = q.s[:n], 0
	}
	q.s = append(q.s, x)
}

func (q *queue[T]) pop() T {
	x := q.s[q.first]
	var zero T
	q.s[q.first] = zero
	q.first++
	if q.first == len(q.s) {
		q.s, q.first = q.s[:0], 0
	}
	return x
}

// heapRecord is a record that arrived late, with its own copy of its bytes.
type heapRecord struct {
	rec Record
	key stamp
	seq uint64
}

func (h *heapRecord) before(o *heapRecord) bool {
	if h.key == o.key {
		return h.seq < o.seq
	}
	return h.key.before(o.key)
}

// push and pop keep r.heap a min-heap (heapPush, heapPop).
func (r *Reorder) push(x heapRecord) { r.heap = heapPush(r.heap, x) }

func (r *Reorder) pop() heapRecord {
	var top heapRecord
	r.heap, top = heapPop(r.heap)
	return top
}

// ordered is an element of a heap: a pointer to T that orders itself
// against another.
type ordered[T any] interface {
	*T
	before(*T) bool
}

// heapPush and heapPop keep h a binary min-heap by before, written out
// rather than through container/heap, which would box every element in an
// interface and allocate. heapPop zeroes the slot it frees, so the backing
// array keeps no reference to what it handed out.
func heapPush[T any, P ordered[T]](h []T, x T) []T {
	h = append(h, x)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !P(&h[i]).before(&h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	return h
}

func heapPop[T any, P ordered[T]](h []T) ([]T, T) {
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	var zero T
	h[n] = zero
	h = h[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && P(&h[r]).before(&h[l]) {
			m = r
		}
		if !P(&h[m]).before(&h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return h, top
}
