package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Format is the container format of a capture file.
type Format uint8

// Container formats, told apart by the magic number at the start of a file.
const (
	// PCAP is the classic libpcap format: magic a1b2c3d4 (microseconds) or
	// a1b23c4d (nanoseconds), in either byte order.
	PCAP Format = iota + 1
	// PCAPNG is the pcap next generation format: a section header block,
	// type 0a0d0d0a.
	PCAPNG
)

// String returns "pcap" or "pcapng".
func (f Format) String() string {
	switch f {
	case PCAP:
		return "pcap"
	case PCAPNG:
		return "pcapng"
	}
	return fmt.Sprintf("format-%d", uint8(f))
}

// MaxCaptureLength is the longest record a Reader accepts, whatever snap
// length the file declares. It is libpcap's MAXIMUM_SNAPLEN, the largest
// record tcpdump and Wireshark read; a longer one is taken as damage rather
// than allocated.
const MaxCaptureLength = 262144

// readBufferSize is the size of the buffer between the file and pcapgo. It
// is larger than bufio's default so that pcapgo reads straight from it
// (bufio.NewReader returns a *bufio.Reader of at least its default size
// unchanged), which is what lets Reader know its exact position in the file.
const readBufferSize = 64 << 10

// Magic numbers as the first four bytes of a file read big-endian.
const (
	magicMicroBE = 0xa1b2c3d4
	magicMicroLE = 0xd4c3b2a1
	magicNanoBE  = 0xa1b23c4d
	magicNanoLE  = 0x4d3cb2a1
	magicNG      = 0x0a0d0d0a
	pcapHeader   = 24 // bytes in a classic pcap file header
	pcapRecord   = 16 // bytes in a classic pcap record header
)

// KnownLinkType reports whether records of link type lt can be decoded by
// this project (replay/frame): Ethernet, BSD loopback (NULL and LOOP),
// Linux cooked SLL and SLL2, and raw IP (LINKTYPE_RAW 101, DLT_RAW 12 and
// 14, LINKTYPE_IPV4 228, LINKTYPE_IPV6 229). A Reader reports records of
// any other link type with ErrUnknownLinkType.
func KnownLinkType(lt layers.LinkType) bool {
	switch lt {
	case layers.LinkTypeNull, layers.LinkTypeEthernet, 12, 14, layers.LinkTypeRaw,
		layers.LinkTypeLoop, layers.LinkTypeLinuxSLL, layers.LinkTypeIPv4,
		layers.LinkTypeIPv6, layers.LinkTypeLinuxSLL2:
		return true
	}
	return false
}

// Record is one packet read from a capture file.
type Record struct {
	// Number is the 1-based position of the record among the packet
	// records of the file.
	Number int
	// Time is the capture timestamp, in UTC, exact to the resolution of
	// the file (to the nanosecond for nanosecond captures). It is the zero
	// Time for a pcapng simple packet block, which carries none.
	Time time.Time
	// LinkType says how Data starts: Ethernet, Linux SLL, raw IP, ...
	LinkType layers.LinkType
	// Interface is the index of the pcapng interface the packet was
	// captured on, within its section; always 0 for classic pcap.
	Interface int
	// Data holds the captured bytes. Records returned by Reader.Next
	// alias a buffer owned by the Reader that the next call to Next
	// overwrites: copy Data to keep it.
	Data []byte
	// Length is the length of the packet on the wire; Length > len(Data)
	// when the capture was cut to a snap length.
	Length int
	// Offset is the byte offset in the file of the record: its 16-byte
	// record header for pcap, its packet block for pcapng.
	Offset int64
	// Comments are the packet's pcapng opt_comment options, if any.
	Comments []string
}

// Source is a stream of records: a *Reader, or a *Reorder over one. Next
// returns io.EOF at the clean end of the stream.
type Source interface {
	Next() (Record, error)
}

var (
	_ Source = (*Reader)(nil)
	_ Source = (*Reorder)(nil)
)

// Reader reads the records of a pcap or pcapng file one at a time. Its
// memory use is bounded by the largest record (at most MaxCaptureLength)
// plus a fixed read buffer, whatever the size of the file. A Reader is not
// safe for concurrent use.
type Reader struct {
	name   string
	closer io.Closer
	at     io.ReaderAt
	// mapped: buf is the whole file, mapped read-only (OpenScan); fill
	// has nothing more to read and must not move bytes. Pages before
	// released have been dropped from resident memory.
	mapped   bool
	released int
	src      *source
	br       *bufio.Reader
	format   Format
	ng       *pcapgo.NgReader

	// Classic pcap records are parsed here, from buf[rd:wr], the bytes of
	// the file from offset off on (see readPCAP).
	buf      []byte
	rd, wr   int
	off      int64
	rerr     error // the error that ended reading the file (io.EOF at its end)
	big      bool  // the file is big-endian
	nanos    uint32
	linkType layers.LinkType
	// snaplen is the effective snap length of a classic pcap file.
	snaplen int
	// n is the number of the last record read.
	n int
	// err is the error that ended the stream; Next returns it again.
	err error
}

// Open opens the capture file at path. Close the Reader to close the file.
func Open(path string) (*Reader, error) { return OpenAs(path, path) }

// OpenAs opens the capture file at path, naming it name in errors (a
// temporary copy of standard input is named "standard input").
func OpenAs(path, name string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture: %w", err)
	}
	r, err := NewReader(name, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer, r.at = f, f
	return r, nil
}

// OpenScan opens the capture file at path, named name in errors, for a
// pass that only reads the records' bytes: a classic pcap file is mapped
// into memory, read-only, and its records' Data point into the mapping, so
// that reading copies nothing (a pcapng file, or a file that cannot be
// mapped, is read as by OpenAs). The Data of such records must not be
// written to: copy a record to change it. The file must not shrink while it
// is read: reading a mapped page past its new end faults (see
// runtime/debug.SetPanicOnFault). Close unmaps it.
func OpenScan(path, name string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture: %w", err)
	}
	var mapped []byte
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		mapped = mapFile(f, st.Size())
	}
	if mapped == nil {
		f.Close()
		return OpenAs(path, name)
	}
	r, err := NewReader(name, bytes.NewReader(mapped))
	if err == nil && r.format != PCAP {
		// pcapng goes through pcapgo, which copies every block out of
		// a bufio.Reader anyway, and a mapping read that way would keep
		// every page it passed resident: read(2) instead.
		unmapFile(mapped)
		f.Close()
		return OpenAs(path, name)
	}
	f.Close() // the mapping stays valid
	if err != nil {
		unmapFile(mapped)
		return nil, err
	}
	// Past the file header the records are read from the mapping.
	r.buf, r.rd, r.wr, r.rerr = mapped, pcapHeader, len(mapped), io.EOF
	r.mapped = true
	r.closer = unmapper(mapped)
	return r, nil
}

// A mapped file's pages are released from resident memory every
// releaseEvery bytes read, so that at most twice that stays resident (it
// counts in the process's RSS); pageSize aligns the cut (a multiple of
// the page size of every platform Go maps files on).
const (
	releaseEvery = 8 << 20
	pageSize     = 64 << 10
)

// Offset returns how far into the file the Reader has read, in bytes.
func (r *Reader) Offset() int64 {
	if r.ng != nil {
		return r.pos()
	}
	return r.off
}

// Stable reports whether the Data of the records Next returns stay valid
// until Close (a mapped file, OpenScan), rather than until the next call.
func (r *Reader) Stable() bool { return r.mapped }

// unmapper closes a mapping.
type unmapper []byte

func (u unmapper) Close() error { unmapFile(u); return nil }

// ReaderAt returns the file an Open Reader reads, for reading records
// again at their offsets (NewOrdered); nil for a Reader made by NewReader.
func (r *Reader) ReaderAt() io.ReaderAt { return r.at }

// NewReader reads a capture from r, reading its file header (pcap) or first
// section header (pcapng) now. name is used in errors only.
func NewReader(name string, r io.Reader) (*Reader, error) {
	src := &source{r: r}
	rd := &Reader{name: name, src: src, br: bufio.NewReaderSize(src, readBufferSize)}
	magic, err := rd.br.Peek(4)
	if len(magic) < 4 {
		if err == nil || err == io.EOF {
			err = fmt.Errorf("%w: the file has %d bytes, too short for a magic number", ErrTruncated, len(magic))
		}
		return nil, rd.headerError(err)
	}
	switch m := binary.BigEndian.Uint32(magic); m {
	case magicMicroBE, magicMicroLE, magicNanoBE, magicNanoLE:
		rd.format = PCAP
		err = rd.openPCAP(m)
	case magicNG:
		rd.format = PCAPNG
		err = rd.openPCAPNG()
	default:
		hint := ""
		if magic[0] == 0x1f && magic[1] == 0x8b {
			hint = " (gzip: decompress it first)"
		}
		err = fmt.Errorf("%w: magic %08x%s", ErrBadMagic, m, hint)
	}
	if err != nil {
		return nil, rd.headerError(err)
	}
	return rd, nil
}

func (r *Reader) openPCAP(magic uint32) error {
	hdr, err := r.br.Peek(pcapHeader)
	if err != nil {
		return r.ioError(fmt.Errorf("%w: file header ends after %d of %d bytes", ErrTruncated, len(hdr), pcapHeader))
	}
	var order binary.ByteOrder = binary.BigEndian
	if magic == magicMicroLE || magic == magicNanoLE {
		order = binary.LittleEndian
	}
	if major, minor := order.Uint16(hdr[4:]), order.Uint16(hdr[6:]); major != 2 || minor != 4 {
		return fmt.Errorf("%w: pcap version %d.%d, want 2.4", ErrBadHeader, major, minor)
	}
	// The upper 16 bits of the link type field hold FCS information.
	lt := layers.LinkType(order.Uint32(hdr[20:]) & 0xffff)
	if !KnownLinkType(lt) {
		return fmt.Errorf("%w: link type %d (%s)", ErrUnknownLinkType, uint16(lt), lt)
	}
	snaplen := order.Uint32(hdr[16:])
	r.snaplen = MaxCaptureLength
	if snaplen != 0 && snaplen < MaxCaptureLength {
		r.snaplen = int(snaplen)
	}
	r.big = order == binary.BigEndian
	r.nanos = 1000
	if magic == magicNanoBE || magic == magicNanoLE {
		r.nanos = 1
	}
	r.linkType = lt
	// From here on the records are read from src into r.buf: take over
	// what bufio read ahead, past the file header.
	ahead, _ := r.br.Peek(r.br.Buffered())
	r.buf = make([]byte, max(readBufferSize, len(ahead)))
	r.wr = copy(r.buf, ahead[pcapHeader:])
	r.off = pcapHeader
	r.br = nil
	return nil
}

func (r *Reader) openPCAPNG() error {
	r.src.scan = &blockScanner{}
	// Feed the scanner what bufio read ahead while peeking the magic.
	buf, _ := r.br.Peek(r.br.Buffered())
	r.src.scan.feed(buf, 0)
	ng, err := pcapgo.NewNgReader(r.br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return r.ioError(fmt.Errorf("%w: section header ends after %d bytes", ErrTruncated, r.pos()))
		}
		if errors.Is(err, pcapgo.ErrNgVersionMismatch) {
			return fmt.Errorf("%w: pcapng version is not 1.0", ErrBadHeader)
		}
		return fmt.Errorf("%w: section header: %v", ErrBadHeader, err)
	}
	r.ng = ng
	return nil
}

// Format returns the container format of the file.
func (r *Reader) Format() Format { return r.format }

// InterfaceName returns the if_name option of the pcapng interface i of
// the current section ("" when it has none, for classic pcap, and for an
// interface not yet described).
func (r *Reader) InterfaceName(i int) string {
	if r.ng == nil {
		return ""
	}
	iface, err := r.ng.Interface(i)
	if err != nil {
		return ""
	}
	return iface.Name
}

// Close closes the file opened by Open. It does nothing for a Reader made
// by NewReader.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	return err
}

// Next returns the next record, or io.EOF at the clean end of the file. The
// record's Data is valid until the next call to Next. Damaged input yields
// an *Error; after any error but one wrapping ErrUnknownLinkType (a pcapng
// record on an interface whose link type is unknown, which is skipped) the
// Reader keeps returning that error.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	var rec Record
	var err error
	if r.ng != nil {
		rec, err = r.nextNG()
	} else {
		rec, err = r.nextPCAP()
	}
	if err != nil {
		if !errors.Is(err, ErrUnknownLinkType) {
			r.err = err
		}
		return Record{}, err
	}
	return rec, nil
}

// pos is the offset in the file of the next byte pcapgo will read (pcapng).
func (r *Reader) pos() int64 { return r.src.n - int64(r.br.Buffered()) }

func (r *Reader) nextPCAP() (Record, error) {
	h, data, err := r.readPCAP()
	if err != nil {
		return Record{}, err
	}
	return Record{
		Number:   r.n,
		Time:     time.Unix(h.sec, int64(h.nsec)).UTC(),
		LinkType: r.linkType,
		Data:     data,
		Length:   int(h.length),
		Offset:   h.offset,
	}, nil
}

// pcapHead is the header of a classic pcap record, decoded.
type pcapHead struct {
	sec    int64 // the time, normalised: 0 <= nsec < 1e9
	nsec   int32
	length uint32 // on the wire
	offset int64  // of the record header in the file
}

// readPCAP reads the next classic pcap record. Its data aliases r.buf
// until the next call, and r.n is its number. Errors are sticky, as for
// Next.
//
// The records are parsed here rather than by pcapgo's
// ZeroCopyReadPacketData, which copies every record out of bufio into a
// buffer of its own through io.ReadFull and an interface call per field:
// that took 58 of the 85 ns per record of Reader.Next
// (BenchmarkReplayEndToEnd, 80-byte records); this takes about 15 ns, and
// Reorder copies the data once, from here into its queue. The checks, their
// order, the errors and the timestamps are those of pcapgo under
// SetSnaplen(snaplen), as TestReadPCAPAgreesWithPcapgo checks; pcapng stays
// with pcapgo.
func (r *Reader) readPCAP() (pcapHead, []byte, error) {
	if r.err != nil {
		return pcapHead{}, nil, r.err
	}
	h := pcapHead{offset: r.off}
	if r.wr-r.rd < pcapRecord && r.fill(pcapRecord) < pcapRecord {
		got := r.wr - r.rd
		if got == 0 && r.rerr == io.EOF {
			r.err = io.EOF
			return h, nil, io.EOF
		}
		return h, nil, r.failPCAP(h.offset,
			fmt.Errorf("%w: record header ends after %d of %d bytes", ErrTruncated, got, pcapRecord))
	}
	p := r.buf[r.rd : r.rd+pcapRecord]
	var sec, frac, caplen, length uint32
	if r.big {
		sec, frac = binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])
		caplen, length = binary.BigEndian.Uint32(p[8:]), binary.BigEndian.Uint32(p[12:])
	} else {
		sec, frac = binary.LittleEndian.Uint32(p), binary.LittleEndian.Uint32(p[4:])
		caplen, length = binary.LittleEndian.Uint32(p[8:]), binary.LittleEndian.Uint32(p[12:])
	}
	switch {
	case caplen > length:
		return h, nil, r.failPCAP(h.offset,
			fmt.Errorf("%w: captured length %d exceeds wire length %d", ErrBadRecord, caplen, length))
	case caplen > MaxCaptureLength:
		return h, nil, r.failPCAP(h.offset, r.tooLong(int(caplen)))
	}
	n := pcapRecord + int(caplen)
	if r.wr-r.rd < n && r.fill(n) < n {
		return h, nil, r.failPCAP(h.offset,
			fmt.Errorf("%w: record data ends after %d of %d bytes", ErrTruncated, r.wr-r.rd-pcapRecord, caplen))
	}
	if int(caplen) > r.snaplen {
		// The record was read whole: an I/O error after it is not its fault.
		r.err = r.recordError(r.n+1, h.offset, r.tooLong(int(caplen)))
		return h, nil, r.err
	}
	if r.mapped && r.rd-r.released >= 2*releaseEvery {
		// The records read more than releaseEvery bytes ago are done
		// with: their pages leave the process's resident memory, which
		// would otherwise grow to the file's size (the page cache keeps
		// them; reading them again maps them again).
		cut := (r.rd - releaseEvery) &^ (pageSize - 1)
		releaseMapped(r.buf[r.released:cut])
		r.released = cut
	}
	data := r.buf[r.rd+pcapRecord : r.rd+n : r.rd+n] // capped: appending must not reach the next record
	r.rd += n
	r.off += int64(n)
	r.n++
	// As pcapgo: the fraction times the resolution in 32 bits (wrapping,
	// for a microsecond field of 2^32/1000 or more), then time.Unix.
	ns := frac * r.nanos
	h.sec, h.nsec = int64(sec)+int64(ns/1e9), int32(ns%1e9)
	h.length = length
	return h, data, nil
}

// failPCAP ends the stream with the error of the record at offset, or with
// the file's I/O error if reading it failed.
func (r *Reader) failPCAP(offset int64, err error) error {
	switch {
	case r.src.err != nil:
		err = r.src.err
	case r.rerr != nil && r.rerr != io.EOF:
		err = fmt.Errorf("%w: %v", ErrBadRecord, r.rerr) // io.ErrNoProgress
	}
	r.err = r.recordError(r.n+1, offset, err)
	return r.err
}

// fill reads until at least n bytes are buffered or the file ends, and
// returns how many are. n is at most pcapRecord+MaxCaptureLength, which
// bounds the buffer.
func (r *Reader) fill(n int) int {
	if r.mapped {
		return r.wr - r.rd
	}
	if r.rd > 0 {
		r.wr = copy(r.buf, r.buf[r.rd:r.wr])
		r.rd = 0
	}
	if n > len(r.buf) {
		r.buf = append(r.buf, make([]byte, n-len(r.buf))...)
	}
	for empty := 0; r.wr < n && r.rerr == nil; {
		m, err := r.src.Read(r.buf[r.wr:])
		r.wr += m
		switch {
		case err != nil:
			r.rerr = err
		case m > 0:
			empty = 0
		default:
			if empty++; empty == 100 { // as bufio
				r.rerr = io.ErrNoProgress
			}
		}
	}
	return r.wr
}

func (r *Reader) tooLong(caplen int) error {
	if r.snaplen == MaxCaptureLength {
		return fmt.Errorf("%w: captured length %d exceeds the maximum %d", ErrBadRecord, caplen, MaxCaptureLength)
	}
	return fmt.Errorf("%w: captured length %d exceeds the snap length %d", ErrBadRecord, caplen, r.snaplen)
}

func (r *Reader) nextNG() (Record, error) {
	num := r.n + 1
	scan := r.src.scan
	data, ci, opts, err := r.ng.ZeroCopyReadPacketDataWithOptions()
	end := r.pos()
	last, ok := scan.consume(end)
	if err != nil {
		offset := scan.at(end)
		switch {
		case err == io.EOF && scan.broken == nil && scan.have == 0:
			return Record{}, io.EOF
		case scan.broken != nil && scan.brokenAt <= end:
			return Record{}, r.recordError(num, scan.brokenAt, scan.broken)
		case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
			err = r.ioError(fmt.Errorf("%w: block ends after %d bytes", ErrTruncated, end-offset))
		case r.src.err != nil:
			err = r.src.err
		default:
			err = fmt.Errorf("%w: %v", ErrBadRecord, err)
		}
		return Record{}, r.recordError(num, offset, err)
	}
	r.n = num
	if !ok || last.off+int64(last.total) != end || !isPacketBlock(last.typ) {
		if scan.broken != nil {
			return Record{}, r.recordError(num, scan.brokenAt, scan.broken)
		}
		return Record{}, r.recordError(num, last.off,
			fmt.Errorf("%w: block length %d disagrees with its contents", ErrBadRecord, last.total))
	}
	if ci.CaptureLength > MaxCaptureLength {
		return Record{}, r.recordError(num, last.off, r.tooLong(ci.CaptureLength))
	}
	if ci.CaptureLength > ci.Length && last.typ != blockSimplePacket {
		return Record{}, r.recordError(num, last.off,
			fmt.Errorf("%w: captured length %d exceeds wire length %d", ErrBadRecord, ci.CaptureLength, ci.Length))
	}
	lt, _ := ci.AncillaryData[0].(layers.LinkType)
	iface, _ := r.ng.Interface(ci.InterfaceIndex)
	if iface.SnapLength != 0 && ci.CaptureLength > int(iface.SnapLength) {
		return Record{}, r.recordError(num, last.off,
			fmt.Errorf("%w: captured length %d exceeds the snap length %d of interface %d", ErrBadRecord, ci.CaptureLength, iface.SnapLength, ci.InterfaceIndex))
	}
	if !KnownLinkType(lt) {
		// Not sticky: the record was read whole, the next one may be fine.
		return Record{}, r.recordError(num, last.off,
			fmt.Errorf("%w: interface %d has link type %d (%s)", ErrUnknownLinkType, ci.InterfaceIndex, uint16(lt), lt))
	}
	return Record{
		Number:    num,
		Time:      ci.Timestamp,
		LinkType:  lt,
		Interface: ci.InterfaceIndex,
		Data:      data,
		Length:    ci.Length,
		Offset:    last.off,
		Comments:  opts.Comments,
	}, nil
}

func (r *Reader) recordError(num int, offset int64, err error) error {
	return &Error{File: r.name, Packet: num, Offset: offset, Err: err}
}

func (r *Reader) headerError(err error) error {
	return &Error{File: r.name, Err: err}
}

// ioError returns the underlying reader's error if it failed, else err.
func (r *Reader) ioError(err error) error {
	if r.src.err != nil {
		return r.src.err
	}
	return err
}

// source counts the bytes read from the file and, for pcapng, finds the
// blocks in them as they stream past: pcapgo gives no offsets, and the
// bytes it has consumed are r.src.n minus what bufio holds.
type source struct {
	r    io.Reader
	n    int64
	err  error // the first error of r other than io.EOF
	scan *blockScanner
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 && s.scan != nil {
		s.scan.feed(p[:n], s.n)
	}
	s.n += int64(n)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// pcapng block types the scanner tells apart.
const (
	blockPacket         = 0x00000002 // obsolete Packet Block
	blockSimplePacket   = 0x00000003
	blockEnhancedPacket = 0x00000006
	blockSectionHeader  = 0x0a0d0d0a
	ngByteOrderMagic    = 0x1a2b3c4d
)

func isPacketBlock(typ uint32) bool {
	return typ == blockPacket || typ == blockSimplePacket || typ == blockEnhancedPacket
}

// minBlockLength is the shortest valid total length of a block of a type:
// the fixed fields plus the type, length and trailing length words.
func minBlockLength(typ uint32) uint32 {
	switch typ {
	case blockSectionHeader:
		return 28
	case blockPacket, blockEnhancedPacket:
		return 32
	case blockSimplePacket:
		return 16
	}
	return 12
}

// ngBlock is the position of one pcapng block in the file.
type ngBlock struct {
	off   int64
	total uint32
	typ   uint32
}

// blockScanner walks the block headers of a pcapng stream as it is read. It
// holds the blocks read ahead of pcapgo, at most readBufferSize/12 of them.
type blockScanner struct {
	next     int64 // offset of the block whose header is being collected
	hdr      [24]byte
	have     int // bytes of hdr collected
	big      bool
	blocks   []ngBlock // blocks seen, oldest first; blocks[head:] are not yet consumed
	head     int
	broken   error // why the block structure is invalid, from brokenAt on
	brokenAt int64
}

// feed scans p, the bytes of the stream from offset base.
func (s *blockScanner) feed(p []byte, base int64) {
	end := base + int64(len(p))
	for s.broken == nil && s.next+int64(s.have) < end {
		i := s.next + int64(s.have) - base
		s.have += copy(s.hdr[s.have:s.need()], p[i:])
		if s.have < s.need() {
			continue // the loop stops when p is used up
		}
		s.parse()
	}
}

// need is how many header bytes the scanner wants: the type and length
// words and the byte-order magic, and for a packet block the captured
// length too, to check that the block holds it.
func (s *blockScanner) need() int {
	if s.have >= 12 {
		if typ := s.order().Uint32(s.hdr[0:]); typ == blockEnhancedPacket || typ == blockPacket {
			return 24
		}
	}
	return 12
}

func (s *blockScanner) order() binary.ByteOrder {
	if s.big {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func (s *blockScanner) parse() {
	if s.have == 12 && binary.BigEndian.Uint32(s.hdr[0:]) == blockSectionHeader { // the same both ways
		switch {
		case binary.BigEndian.Uint32(s.hdr[8:]) == ngByteOrderMagic:
			s.big = true
		case binary.LittleEndian.Uint32(s.hdr[8:]) == ngByteOrderMagic:
			s.big = false
		default:
			s.fail(fmt.Errorf("%w: section header byte-order magic %x", ErrBadHeader, s.hdr[8:12]))
			return
		}
	}
	order := s.order()
	typ := order.Uint32(s.hdr[0:])
	total := order.Uint32(s.hdr[4:])
	if total%4 != 0 || total < minBlockLength(typ) {
		s.fail(fmt.Errorf("%w: block type %#x has impossible length %d", ErrBadRecord, typ, total))
		return
	}
	if s.have == 24 {
		if caplen := uint64(order.Uint32(s.hdr[20:])); 32+(caplen+3)&^3 > uint64(total) {
			s.fail(fmt.Errorf("%w: packet block of %d bytes cannot hold %d captured bytes", ErrBadRecord, total, caplen))
			return
		}
	}
	s.blocks = append(s.blocks, ngBlock{off: s.next, total: total, typ: typ})
	s.next += int64(total)
	s.have = 0
}

func (s *blockScanner) fail(err error) {
	s.broken, s.brokenAt = err, s.next
}

// consume drops the blocks that end at or before pos, returning the last.
func (s *blockScanner) consume(pos int64) (last ngBlock, ok bool) {
	for s.head < len(s.blocks) && s.blocks[s.head].off+int64(s.blocks[s.head].total) <= pos {
		last, ok = s.blocks[s.head], true
		s.head++
	}
	// Reclaim the consumed prefix once it is most of the slice, so that
	// compaction costs O(1) per block.
	if s.head == len(s.blocks) {
		s.blocks, s.head = s.blocks[:0], 0
	} else if s.head > 64 && s.head > len(s.blocks)/2 {
		n := copy(s.blocks, s.blocks[s.head:])
		s.blocks, s.head = s.blocks[:n], 0
	}
	return last, ok
}

// at returns the offset of the block that holds pos, once consume(pos) ran.
func (s *blockScanner) at(pos int64) int64 {
	if s.head < len(s.blocks) && s.blocks[s.head].off <= pos {
		return s.blocks[s.head].off
	}
	if s.broken != nil && s.brokenAt <= pos {
		return s.brokenAt
	}
	return s.next
}

// again returns a new Reader of the same file from its first record, for a
// second cursor over it (Ordered's look-ahead): over the same mapping if r
// is mapped, which copies nothing, else reading ra.
func (r *Reader) again(ra io.ReaderAt) (*Reader, error) {
	if r.mapped {
		return &Reader{name: r.name, src: &source{}, format: PCAP, mapped: true, buf: r.buf, rd: pcapHeader, wr: len(r.buf),
			off: pcapHeader, rerr: io.EOF, big: r.big, nanos: r.nanos, linkType: r.linkType, snaplen: r.snaplen}, nil
	}
	if ra == nil {
		return nil, &Error{File: r.name, Err: errors.New("the file cannot be read again at an offset")}
	}
	return NewReader(r.name, io.NewSectionReader(ra, 0, math.MaxInt64))
}
