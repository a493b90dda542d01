package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Interface describes one capture interface of a pcapng file being written.
type Interface struct {
	// Name is the interface's if_name option; empty writes none.
	Name string
	// LinkType says how the packets of the interface start.
	LinkType layers.LinkType
	// SnapLen is the interface's snap length; 0 means unlimited.
	SnapLen uint32
}

// writeBufferSize is the buffer in front of the file; pcapgo writes each
// record in three or four small pieces.
const writeBufferSize = 256 << 10

// maxComment is the longest comment a pcapng option can hold.
const maxComment = 0xffff

// Writer writes packets to a pcapng file: one section, the interfaces given
// to NewWriter, timestamps in nanoseconds (if_tsresol 9). Writes are
// buffered: call Flush or Close at the end. A Writer is not safe for
// concurrent use.
type Writer struct {
	ng     *pcapgo.NgWriter
	bw     *bufio.Writer
	ifaces int
	closer io.Closer
}

// Create creates the pcapng file at path. Close the Writer to flush and
// close the file.
func Create(path string, ifaces ...Interface) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create capture: %w", err)
	}
	w, err := NewWriter(f, ifaces...)
	if err != nil {
		f.Close()
		return nil, err
	}
	w.closer = f
	return w, nil
}

// NewWriter writes a section header and the interface descriptions to w,
// and returns a Writer for the packets. It needs at least one interface;
// packets name theirs by index in ifaces.
func NewWriter(w io.Writer, ifaces ...Interface) (*Writer, error) {
	if len(ifaces) == 0 {
		return nil, fmt.Errorf("new capture writer: no interface")
	}
	bw := bufio.NewWriterSize(w, writeBufferSize)
	ngIface := func(i Interface) pcapgo.NgInterface {
		return pcapgo.NgInterface{Name: i.Name, LinkType: i.LinkType, SnapLength: i.SnapLen, TimestampResolution: 9}
	}
	// NewNgWriterInterface keeps bw (a *bufio.Writer larger than bufio's
	// default) rather than wrapping it in another buffer.
	ng, err := pcapgo.NewNgWriterInterface(bw, ngIface(ifaces[0]),
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "natcheck"}})
	if err != nil {
		return nil, fmt.Errorf("new capture writer: %w", err)
	}
	for _, i := range ifaces[1:] {
		if _, err := ng.AddInterface(ngIface(i)); err != nil {
			return nil, fmt.Errorf("new capture writer: %w", err)
		}
	}
	return &Writer{ng: ng, bw: bw, ifaces: len(ifaces)}, nil
}

// earliest and latest bound the timestamps a pcapng block can carry in
// nanoseconds: unsigned since 1970, and time.Time.UnixNano's range.
var (
	earliest  = time.Unix(0, 0)
	latest    = time.Unix(0, 1<<63-1)
	latestSec = latest.Unix()
)

// Write writes rec as an enhanced packet block on interface rec.Interface,
// with rec.Time, rec.Data, rec.Length (0 means len(rec.Data)) and one
// opt_comment option per entry of rec.Comments. The other fields of rec are
// ignored. Write does not allocate unless rec has comments.
func (w *Writer) Write(rec Record) error {
	if rec.Interface < 0 || rec.Interface >= w.ifaces {
		return fmt.Errorf("write packet %d: interface %d, have %d", rec.Number, rec.Interface, w.ifaces)
	}
	// One comparison of seconds first: the common case, cheaply.
	if sec := rec.Time.Unix(); sec <= 0 || sec >= latestSec {
		if rec.Time.Before(earliest) || rec.Time.After(latest) {
			return fmt.Errorf("write packet %d: time %v cannot be written in pcapng nanoseconds", rec.Number, rec.Time)
		}
	}
	length := rec.Length
	if length == 0 {
		length = len(rec.Data)
	}
	if length < len(rec.Data) {
		return fmt.Errorf("write packet %d: length %d is less than the %d captured bytes", rec.Number, length, len(rec.Data))
	}
	if uint64(len(rec.Data)) > 1<<32-1-64 || uint64(length) > 1<<32-1 {
		return fmt.Errorf("write packet %d: %d bytes is too long for pcapng", rec.Number, len(rec.Data))
	}
	for _, c := range rec.Comments {
		if len(c) > maxComment {
			return fmt.Errorf("write packet %d: comment of %d bytes, longer than the %d a pcapng option holds", rec.Number, len(c), maxComment)
		}
	}
	var err error
	if len(rec.Comments) == 0 {
		err = w.writeEPB(rec.Interface, rec.Time.UnixNano(), rec.Data, length)
	} else {
		ci := gopacket.CaptureInfo{Timestamp: rec.Time, CaptureLength: len(rec.Data), Length: length, InterfaceIndex: rec.Interface}
		err = w.ng.WritePacketWithOptions(ci, rec.Data, pcapgo.NgPacketOptions{Comments: rec.Comments})
	}
	if err != nil {
		return fmt.Errorf("write packet %d: %w", rec.Number, err)
	}
	return nil
}

// Flush writes buffered data to the underlying writer.
func (w *Writer) Flush() error {
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("flush capture: %w", err)
	}
	return nil
}

// Close flushes the Writer and closes the file made by Create; for a
// Writer made by NewWriter it only flushes.
func (w *Writer) Close() error {
	err := w.Flush()
	if w.closer != nil {
		if cerr := w.closer.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close capture: %w", cerr)
		}
		w.closer = nil
	}
	return err
}

// writeEPB writes an enhanced packet block with no options, byte for byte
// as pcapgo's NgWriter.WritePacket does (TestWriteEPBMatchesPcapgo), in one
// append to the buffered writer that pcapgo writes to as well. pcapgo
// builds an options list and makes four writes for every packet, which
// was a fifth of the replay's per-packet cost; the blocks that carry
// options, and the section and interface headers, are still pcapgo's.
func (w *Writer) writeEPB(iface int, ts int64, data []byte, wireLen int) error {
	length := 28 + uint32(len(data)) + 4
	padding := (4 - length&3) & 3
	length += padding
	b := w.bw.AvailableBuffer()
	b = binary.LittleEndian.AppendUint32(b, 6) // enhanced packet block
	b = binary.LittleEndian.AppendUint32(b, length)
	b = binary.LittleEndian.AppendUint32(b, uint32(iface))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts>>32))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = binary.LittleEndian.AppendUint32(b, uint32(wireLen))
	b = append(b, data...)
	b = append(b, "\x00\x00\x00"[:padding]...)
	b = binary.LittleEndian.AppendUint32(b, length)
	_, err := w.bw.Write(b)
	return err
}
