package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// Order is what one pass over a capture file learned about the order of
// its records: how many arrive late (earlier than a record read before
// them, within the window), how late the latest of them is (its reach),
// and, if one arrives later than the window allows, that record's
// OrderError. It holds nothing per record: an Ordered replays the file in
// time order from it, finding the late records again with a look-ahead
// cursor that runs only the reach ahead of the records it returns, so that
// its memory follows the late records within the reach (at most the
// window), not the length of the file; a file in order is read once.
type Order struct {
	window time.Duration
	late   int
	// reach is how much earlier than the latest record before it the
	// latest-arriving late record is: no record is later than that, so a
	// cursor whose latest time is t has read every record earlier than
	// t-reach.
	reach time.Duration
	// tooLate ends the stream before the record it names.
	tooLate *OrderError
}

// Late returns the number of records that arrive late.
func (o *Order) Late() int { return o.late }

// InOrder reports whether every record is in time order: replaying the
// file needs no re-ordering at all.
func (o *Order) InOrder() bool { return o.late == 0 && o.tooLate == nil }

// OrderScanner learns the Order of a file from its records, given in file
// order. It applies Reorder's rules: a record earlier than the latest one
// read is late; one earlier than the latest less the window ends the
// stream with an *OrderError.
type OrderScanner struct {
	o          Order
	name       string
	latest     time.Time
	latestKey  stamp
	latestNum  int
	floor      stamp
	haveLatest bool
	done       bool
}

// NewOrderScanner returns a scanner of the records of rd (whose name it
// takes) with the given window, or DefaultWindow if window <= 0.
func NewOrderScanner(rd *Reader, window time.Duration) *OrderScanner {
	if window <= 0 {
		window = DefaultWindow
	}
	return &OrderScanner{o: Order{window: window}, name: rd.name}
}

// Add takes the next record of the file. It returns false when rec comes
// later than the window allows: the stream ends there, and Add should not
// be called again.
func (s *OrderScanner) Add(rec *Record) bool {
	key := stampOf(rec.Time)
	switch {
	case !s.haveLatest || s.latestKey.before(key):
		s.latest, s.latestKey, s.latestNum, s.haveLatest = rec.Time, key, rec.Number, true
		s.floor = key.add(-s.o.window)
	case !key.before(s.latestKey):
		// equal to the latest: in order
	case key.before(s.floor):
		latest := s.latest
		if latest.IsZero() {
			latest = s.latestKey.time() // Scan keeps only the key of an in-order record
		}
		s.o.tooLate = &OrderError{File: s.name, Packet: rec.Number, Time: rec.Time, Offset: rec.Offset,
			Latest: s.latestNum, LatestTime: latest, Window: s.o.window}
		s.done = true
		return false
	default:
		s.o.late++
		s.o.reach = max(s.o.reach, s.latestKey.sub(key))
	}
	return true
}

// Scan takes every record of rd, the Reader the scanner was made for, to
// the end of the file or the first record later than the window allows;
// every `every` records it calls tick, which returns false to stop early.
// It returns the error that ended reading, nil at the end of the file. A
// classic pcap file's records are taken from their headers alone, with no
// Record made for those in order, nearly all: checking the order of an
// in-order capture costs a few nanoseconds a record.
func (s *OrderScanner) Scan(rd *Reader, every int, tick func() bool) error {
	for n := 1; !s.done; n++ {
		if n%every == 0 && !tick() {
			return nil
		}
		if rd.ng != nil {
			rec, err := rd.Next()
			if err != nil {
				return endOfFile(err)
			}
			s.Add(&rec)
			continue
		}
		h, data, err := rd.readPCAP()
		if err != nil {
			return endOfFile(err)
		}
		key := stamp{h.sec, h.nsec}
		if s.haveLatest && !key.before(s.latestKey) {
			if s.latestKey.before(key) {
				s.latestKey, s.latestNum, s.latest = key, rd.n, time.Time{}
				s.floor = key.add(-s.o.window)
			}
			continue // in order: nothing to keep
		}
		if s.haveLatest && s.latest.IsZero() {
			s.latest = s.latestKey.time()
		}
		rec := Record{Number: rd.n, Time: key.time(), LinkType: rd.linkType, Data: data, Length: int(h.length), Offset: h.offset}
		s.Add(&rec)
	}
	return nil
}

// sub returns s-o for s not before o, at most math.MaxInt64.
func (s stamp) sub(o stamp) time.Duration {
	d := s.sec - o.sec
	if d < 0 || d >= math.MaxInt64/int64(time.Second)-1 {
		return math.MaxInt64
	}
	return time.Duration(d)*time.Second + time.Duration(s.nsec-o.nsec)
}

func endOfFile(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// Order returns what the scanner learned.
func (s *OrderScanner) Order() *Order {
	o := s.o
	return &o
}

// ScanOrder reads the capture at path once and returns its Order. visit,
// if not nil, sees every record in file order (its Data valid during the
// call), as a first pass that learns something else about the capture
// would. The error is the one that ended reading early, if any; a record
// later than the window is not an error here but part of the Order.
func ScanOrder(path string, window time.Duration, visit func(Record)) (*Order, error) {
	rd, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return scanOrder(rd, window, visit)
}

func scanOrder(rd *Reader, window time.Duration, visit func(Record)) (*Order, error) {
	s := NewOrderScanner(rd, window)
	for {
		rec, err := rd.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return s.Order(), err
		}
		if !s.Add(&rec) {
			return s.Order(), nil
		}
		if visit != nil {
			visit(rec)
		}
	}
}

// Ordered yields the records of a Reader in time order, records of equal
// times in the order they were read, as a Reorder over it with the same
// window would, from the Order a first pass learned (ScanOrder). The
// records that arrive in order come straight from the Reader. When the
// Order has late records, a second cursor over the same file (the
// look-ahead) runs ahead of the Reader until its latest time passes the
// time of the record about to be returned by the Order's reach, and keeps
// the late records it meets in a heap by time of compact entries (where
// the record is, 40 bytes); a late record is read again, from its offset,
// when its time comes, and the Reader skips it. The file must not change
// between the passes: a record that does not match what the first pass
// saw ends the stream with an error naming it.
type Ordered struct {
	rd *Reader
	ra io.ReaderAt
	o  *Order

	// The Reader's own view of the order: the latest time it has read
	// (a record earlier than that is late, returned from the heap).
	latest     stamp
	haveLatest bool

	// The look-ahead, made at the first call when the Order has late
	// records: a Reader of the same file, its latest time and that less
	// the reach; aheadDone once it met the end of the file, an error or
	// the record later than the window.
	ahead      *Reader
	aheadKey   stamp
	aheadFloor stamp
	aheadHave  bool
	aheadDone  bool
	aheadN     int // the number of the last record it read
	// heap holds the late records the look-ahead met and not yet
	// returned, a min-heap by (time, number); wide the fields of those
	// whose entry cannot hold them (pcapng comments, a time with a
	// location), by number. peak is the most entries it ever held.
	heap []lateEntry
	wide map[int]Record
	peak int
	// lateN are the numbers of the late records the look-ahead met that
	// the Reader has not reached yet: it must find the same ones late.
	lateN queue[int64]

	pending    Record // read from rd, waiting for late records before it
	hasPending bool
	buf        []byte
	err        error // ends the stream once the late records are out
}

var _ Source = (*Ordered)(nil)

// lateEntry is a late record the look-ahead met: its time, where it is and
// what its header said, in 40 bytes with no pointers.
type lateEntry struct {
	sec    int64
	nsec   int32
	size   uint32 // len(Data)
	offset int64
	number int64
	length uint32
	iface  uint16 // wideEntry: the fields are in Ordered.wide
	link   layers.LinkType
}

// wideEntry marks a lateEntry whose Record is kept whole in Ordered.wide.
const wideEntry = math.MaxUint16

func (e *lateEntry) key() stamp { return stamp{e.sec, e.nsec} }

func (e *lateEntry) before(o *lateEntry) bool {
	if e.sec != o.sec || e.nsec != o.nsec {
		return e.key().before(o.key())
	}
	return e.number < o.number
}

// NewOrdered returns the records of rd in time order, from o, the Order
// of the same file; ra reads the file at offsets (it is usually the
// *os.File rd reads; a mapped Reader's mapping is read instead).
func NewOrdered(rd *Reader, ra io.ReaderAt, o *Order) *Ordered {
	return &Ordered{rd: rd, ra: ra, o: o}
}

// Next returns the next record in time order, or the error that ended the
// file (io.EOF at its clean end) once every record before it has been
// returned. The record's Data is valid until the next call to Next.
func (s *Ordered) Next() (Record, error) {
	if s.hasPending {
		if s.lateBefore(stampOf(s.pending.Time)) {
			return s.late()
		}
		s.hasPending = false
		return s.pending, nil
	}
	for s.err == nil {
		rec, err := s.rd.Next()
		if err != nil {
			s.err = err
			break
		}
		if t := s.o.tooLate; t != nil && rec.Number == t.Packet {
			s.err = t
			break
		}
		key := stampOf(rec.Time)
		late := s.haveLatest && key.before(s.latest)
		if !late {
			s.latest, s.haveLatest = key, true
		}
		if s.o.late > 0 {
			if !s.advance(s.latest, rec.Number, rec.Offset) {
				break
			}
			if aheadLate := s.lateN.len() > 0 && s.lateN.front() == int64(rec.Number); aheadLate != late {
				s.err = s.changed(rec.Number, rec.Offset) // the look-ahead read it otherwise
				break
			} else if late {
				s.lateN.pop()
			}
		} else if late {
			s.err = s.changed(rec.Number, rec.Offset) // the first pass found none
			break
		}
		if late {
			continue // the look-ahead has it in the heap
		}
		if s.lateBefore(key) {
			s.pending, s.hasPending = rec, true
			return s.late()
		}
		return rec, nil
	}
	if len(s.heap) > 0 {
		return s.late()
	}
	return Record{}, s.err
}

// advance runs the look-ahead past record number, and on until every
// record it has not read is at or after k (its latest time less the reach
// is not before k), or to where it stops. It returns false, with s.err
// set, if the file is not what the first pass read, or not what the
// look-ahead read.
func (s *Ordered) advance(k stamp, number int, offset int64) bool {
	if s.ahead == nil {
		ahead, err := s.rd.again(s.ra)
		if err != nil {
			s.err = err
			return false
		}
		s.ahead = ahead
	}
	for !s.aheadDone && (s.aheadN < number || !s.aheadHave || s.aheadFloor.before(k)) {
		rd := s.ahead
		var rec Record
		var key stamp
		if rd.ng == nil {
			h, data, err := rd.readPCAP()
			if err != nil {
				s.aheadDone = true // the end, or an error the Reader meets there too
				break
			}
			s.aheadN = rd.n
			key = stamp{h.sec, h.nsec}
			if !s.aheadHave || !key.before(s.aheadKey) {
				s.inOrderAhead(key)
				continue
			}
			rec = Record{Number: rd.n, Time: key.time(), LinkType: rd.linkType, Data: data, Length: int(h.length), Offset: h.offset}
		} else {
			var err error
			if rec, err = rd.Next(); err != nil {
				s.aheadDone = true // the end, or an error the Reader meets there too
				break
			}
			s.aheadN = rec.Number
			key = stampOf(rec.Time)
			if !s.aheadHave || !key.before(s.aheadKey) {
				s.inOrderAhead(key)
				continue
			}
		}
		if t := s.o.tooLate; t != nil && rec.Number == t.Packet {
			s.aheadN = rec.Number - 1
			s.aheadDone = true
			break
		}
		if s.o.reach < s.aheadKey.sub(key) {
			// Later than any late record of the first pass: the records
			// before it are found, and the Reader stops at it.
			s.aheadN, s.aheadDone = rec.Number-1, true
			break
		}
		s.push(rec, key)
		s.lateN.push(int64(rec.Number))
	}
	if s.aheadN < number {
		// The look-ahead stopped before this record, which the Reader
		// read: the file changed under them.
		s.err = s.changed(number, offset)
		return false
	}
	return true
}

func (s *Ordered) inOrderAhead(key stamp) {
	if !s.aheadHave || s.aheadKey.before(key) {
		s.aheadKey, s.aheadHave = key, true
		s.aheadFloor = key.add(-s.o.reach)
	}
}

// push keeps a late record the look-ahead met, whose time is key.
func (s *Ordered) push(rec Record, key stamp) {
	e := lateEntry{sec: key.sec, nsec: key.nsec, size: uint32(len(rec.Data)), offset: rec.Offset, number: int64(rec.Number),
		length: uint32(rec.Length), iface: uint16(rec.Interface), link: rec.LinkType}
	if rec.Comments != nil || rec.Interface < 0 || rec.Interface >= wideEntry || rec.Length < 0 || uint64(rec.Length) > math.MaxUint32 ||
		rec.Time != key.time() {
		e.iface = wideEntry
		if s.wide == nil {
			s.wide = make(map[int]Record)
		}
		rec.Data = nil
		s.wide[rec.Number] = rec
	}
	s.heap = heapPush(s.heap, e)
	s.peak = max(s.peak, len(s.heap))
}

// pop removes and returns the earliest late entry.
func (s *Ordered) pop() lateEntry {
	var top lateEntry
	s.heap, top = heapPop(s.heap)
	return top
}

// MostHeld returns the most late records the Ordered has held at once
// (read by its look-ahead, not yet returned): 0 for a file in order.
func (s *Ordered) MostHeld() int { return s.peak }

// lateBefore reports whether the next late record is due before a record
// at k read in order (at equal times the one read first goes first: the
// in-order one).
func (s *Ordered) lateBefore(k stamp) bool {
	return len(s.heap) > 0 && s.heap[0].key().before(k)
}

// late reads and returns the next late record.
func (s *Ordered) late() (Record, error) {
	e := s.pop()
	data, err := s.readAt(&e)
	if err != nil {
		s.err, s.heap = err, nil // nothing more can be trusted
		s.hasPending = false
		return Record{}, err
	}
	if e.iface == wideEntry {
		rec := s.wide[int(e.number)]
		delete(s.wide, int(e.number))
		rec.Data = data
		return rec, nil
	}
	return Record{Number: int(e.number), Time: e.key().time(), LinkType: e.link, Interface: int(e.iface), Data: data,
		Length: int(e.length), Offset: e.offset}, nil
}

// readAt reads a late record's bytes again, at its offset: from the
// mapping when the Reader is mapped (no copy), else through ra.
func (s *Ordered) readAt(e *lateEntry) ([]byte, error) {
	pcapng := s.rd.format == PCAPNG
	head := 28 // an enhanced or obsolete packet block's data starts 28 bytes in; a pcap record's 16
	if !pcapng {
		head = pcapRecord
	}
	size := int(e.size)
	n := head + size
	var b []byte
	if s.rd.mapped && e.offset >= 0 && e.offset+int64(n) <= int64(len(s.rd.buf)) {
		b = s.rd.buf[e.offset : e.offset+int64(n)]
	} else {
		if cap(s.buf) < n {
			s.buf = make([]byte, n)
		}
		b = s.buf[:n]
		if m, err := s.ra.ReadAt(b, e.offset); m < n && !(pcapng && m >= 12+size) {
			if err == nil || err == io.EOF {
				return nil, s.changed(int(e.number), e.offset)
			}
			return nil, &Error{File: s.rd.name, Packet: int(e.number), Offset: e.offset, Err: err}
		}
	}
	start := head
	if pcapng {
		switch typ := binary.LittleEndian.Uint32(b); typ {
		case blockSimplePacket, blockSimplePacket << 24:
			start = 12
		case blockEnhancedPacket, blockEnhancedPacket << 24, blockPacket, blockPacket << 24:
		default:
			return nil, s.changed(int(e.number), e.offset)
		}
	} else {
		caplen := binary.LittleEndian.Uint32(b[8:])
		if s.rd.big {
			caplen = binary.BigEndian.Uint32(b[8:])
		}
		if int(caplen) != size {
			return nil, s.changed(int(e.number), e.offset)
		}
	}
	return b[start : start+size : start+size], nil
}

func (s *Ordered) changed(number int, offset int64) error {
	return &Error{File: s.rd.name, Packet: number, Offset: offset,
		Err: fmt.Errorf("%w: the record differs from the first read of the file (did the file change?)", ErrBadRecord)}
}
