package capture

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors wrapped by *Error. Test for them with errors.Is.
var (
	// ErrBadMagic: the file starts with no pcap or pcapng magic number.
	ErrBadMagic = errors.New("not a pcap or pcapng file")
	// ErrBadHeader: a file header, section header or interface
	// description is malformed (an unknown version, an impossible
	// timestamp resolution, a bad byte-order magic).
	ErrBadHeader = errors.New("bad header")
	// ErrTruncated: the file ends in the middle of a header or a record.
	ErrTruncated = errors.New("truncated file")
	// ErrUnknownLinkType: records carry a link type this project cannot
	// decode (see KnownLinkType).
	ErrUnknownLinkType = errors.New("unknown link type")
	// ErrBadRecord: a record is impossible: its captured length exceeds
	// the snap length, its wire length or MaxCaptureLength, its block
	// length disagrees with its contents, or it names a missing interface.
	ErrBadRecord = errors.New("bad record")
)

// Error is the error a Reader returns for damaged input. It names the file,
// the record at fault and where that record starts, and wraps one of the
// sentinel errors above, or the I/O error of the underlying reader.
type Error struct {
	// File is the name given to Open or NewReader.
	File string
	// Packet is the 1-based number of the record being read, or 0 when
	// the file header itself is at fault.
	Packet int
	// Offset is the byte offset in the file of the record (pcap record
	// header or pcapng block) being read.
	Offset int64
	// Err says what is wrong; it wraps a sentinel error.
	Err error
}

// Error returns "read capture x.pcap: packet 2 at offset 362: truncated
// file: ...".
func (e *Error) Error() string {
	if e.Packet == 0 {
		return fmt.Sprintf("read capture %s: file header at offset %d: %v", e.File, e.Offset, e.Err)
	}
	return fmt.Sprintf("read capture %s: packet %d at offset %d: %v", e.File, e.Packet, e.Offset, e.Err)
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// OrderError is the error Reorder returns for a record that is earlier than
// its window allows: it is more than the window older than a record already
// read, so it cannot be put in order without emitting records out of order.
type OrderError struct {
	// File is the capture's name, when the source is a Reader.
	File string
	// Packet and Time are the number and timestamp of the late record,
	// Offset where it starts in the file.
	Packet int
	Time   time.Time
	Offset int64
	// Latest and LatestTime are the number and timestamp of the latest
	// record read before it.
	Latest     int
	LatestTime time.Time
	// Window is the reordering window in use.
	Window time.Duration
}

// Error returns "reorder capture: packet 9 is 2.5s earlier than packet 8,
// more than the 1s window".
func (e *OrderError) Error() string {
	file := ""
	if e.File != "" {
		file = " " + e.File
	}
	return fmt.Sprintf("reorder capture%s: packet %d at offset %d (%s) is %v earlier than packet %d (%s), more than the %v window",
		file, e.Packet, e.Offset, e.Time.Format(time.RFC3339Nano), e.LatestTime.Sub(e.Time), e.Latest,
		e.LatestTime.Format(time.RFC3339Nano), e.Window)
}
