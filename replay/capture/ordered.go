package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// Order is what one pass over a capture file learned about the order of
// its records: which arrive late (earlier than a record read before them,
// within the window) and, if one arrives later than the window allows,
// that record's OrderError. An Ordered replays the file in time order
// from it, holding nothing for the records that arrive in order, nearly
// all of a capture: its memory is proportional to the disorder (about 100
// bytes a late record), not to the window or the packet rate, as Reorder's
// is.
type Order struct {
	window time.Duration
	// late holds the late records in file order; byTime is the order to
	// emit them in: by time, records of equal times in file order.
	late   []lateRecord
	byTime []int32
	// tooLate ends the stream before the record it names.
	tooLate *OrderError
}

// lateRecord is where a late record is, and its fields but its bytes.
type lateRecord struct {
	t         time.Time
	key       stamp
	number    int
	offset    int64
	size      int // len(Data)
	length    int
	iface     int
	link      layers.LinkType
	comments  []string
	pcapng    bool
	dataStart int // bytes from offset to the data
}

// Late returns the number of records that arrive late.
func (o *Order) Late() int { return len(o.late) }

// InOrder reports whether every record is in time order: replaying the
// file needs no re-ordering at all.
func (o *Order) InOrder() bool { return len(o.late) == 0 && o.tooLate == nil }

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
	pcapng     bool
	done       bool
}

// NewOrderScanner returns a scanner of the records of rd (whose name and
// format it takes) with the given window, or DefaultWindow if window <= 0.
func NewOrderScanner(rd *Reader, window time.Duration) *OrderScanner {
	if window <= 0 {
		window = DefaultWindow
	}
	return &OrderScanner{o: Order{window: window}, name: rd.name, pcapng: rd.format == PCAPNG}
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
		l := lateRecord{t: rec.Time, key: key, number: rec.Number, offset: rec.Offset, size: len(rec.Data),
			length: rec.Length, iface: rec.Interface, link: rec.LinkType, comments: rec.Comments, pcapng: s.pcapng, dataStart: pcapRecord}
		if s.pcapng {
			l.dataStart = -1 // found from the block's type when read
		}
		s.o.late = append(s.o.late, l)
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

func endOfFile(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// Order returns what the scanner learned.
func (s *OrderScanner) Order() *Order {
	o := s.o
	o.byTime = make([]int32, len(o.late))
	for i := range o.byTime {
		o.byTime[i] = int32(i)
	}
	slices.SortStableFunc(o.byTime, func(a, b int32) int {
		ka, kb := o.late[a].key, o.late[b].key
		switch {
		case ka.before(kb):
			return -1
		case kb.before(ka):
			return 1
		}
		return 0
	})
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
// records that arrive in order come straight from the Reader's buffer; a
// late one is read again, from its offset, when its time comes. The file
// must not change between the passes: a record that does not match what
// the first pass saw ends the stream with an error.
type Ordered struct {
	rd   *Reader
	ra   io.ReaderAt
	o    *Order
	skip int // index in o.late of the next late record to skip in the stream
	emit int // index in o.byTime of the next late record to emit

	pending    Record // read from rd, waiting for late records before it
	hasPending bool
	buf        []byte
	err        error // ends the stream once the late records are out
}

var _ Source = (*Ordered)(nil)

// NewOrdered returns the records of rd in time order, from o, the Order
// of the same file; ra reads the file at offsets (it is usually the
// *os.File rd reads).
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
		if s.skip < len(s.o.late) && s.o.late[s.skip].number == rec.Number {
			if l := &s.o.late[s.skip]; !l.t.Equal(rec.Time) || l.size != len(rec.Data) {
				s.err = s.changed(l.number, l.offset)
				break
			}
			s.skip++
			continue // returned in its time
		}
		if s.lateBefore(stampOf(rec.Time)) {
			s.pending, s.hasPending = rec, true
			return s.late()
		}
		return rec, nil
	}
	if s.emit < len(s.o.byTime) {
		return s.late()
	}
	return Record{}, s.err
}

// lateBefore reports whether the next late record is due before a record
// at k read in order (at equal times the one read first goes first: the
// in-order one).
func (s *Ordered) lateBefore(k stamp) bool {
	return s.emit < len(s.o.byTime) && s.o.late[s.o.byTime[s.emit]].key.before(k)
}

// late reads and returns the next late record.
func (s *Ordered) late() (Record, error) {
	l := &s.o.late[s.o.byTime[s.emit]]
	s.emit++
	data, err := s.readAt(l)
	if err != nil {
		s.err, s.emit = err, len(s.o.byTime) // nothing more can be trusted
		s.hasPending = false
		return Record{}, err
	}
	return Record{Number: l.number, Time: l.t, LinkType: l.link, Interface: l.iface, Data: data,
		Length: l.length, Offset: l.offset, Comments: l.comments}, nil
}

// readAt reads a late record's bytes again, at its offset.
func (s *Ordered) readAt(l *lateRecord) ([]byte, error) {
	head := 28 // an enhanced or obsolete packet block's data starts 28 bytes in; a pcap record's 16
	if !l.pcapng {
		head = pcapRecord
	}
	n := head + l.size
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	b := s.buf[:n]
	if m, err := s.ra.ReadAt(b, l.offset); m < n && !(l.pcapng && m >= 12+l.size) {
		if err == nil || err == io.EOF {
			return nil, s.changed(l.number, l.offset)
		}
		return nil, &Error{File: s.rd.name, Packet: l.number, Offset: l.offset, Err: err}
	}
	start := head
	if l.pcapng {
		switch typ := binary.LittleEndian.Uint32(b); typ {
		case blockSimplePacket, blockSimplePacket << 24:
			start = 12
		case blockEnhancedPacket, blockEnhancedPacket << 24, blockPacket, blockPacket << 24:
		default:
			return nil, s.changed(l.number, l.offset)
		}
	} else {
		caplen := binary.LittleEndian.Uint32(b[8:])
		if s.rd.big {
			caplen = binary.BigEndian.Uint32(b[8:])
		}
		if int(caplen) != l.size {
			return nil, s.changed(l.number, l.offset)
		}
	}
	return b[start : start+l.size : start+l.size], nil
}

func (s *Ordered) changed(number int, offset int64) error {
	return &Error{File: s.rd.name, Packet: number, Offset: offset,
		Err: fmt.Errorf("%w: the record differs from the first read of the file (did the file change?)", ErrBadRecord)}
}
