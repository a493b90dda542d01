package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
)

// pcapgoReader reads classic pcap records the way Reader did before it
// parsed them itself: through pcapgo's ZeroCopyReadPacketData over bufio,
// classifying pcapgo's errors. It is the reference readPCAP must agree with.
type pcapgoReader struct {
	src     *source
	br      *bufio.Reader
	pcap    *pcapgo.Reader
	snaplen int
	n       int
}

func newPcapgoReader(t testing.TB, raw []byte) *pcapgoReader {
	t.Helper()
	src := &source{r: bytes.NewReader(raw)}
	p := &pcapgoReader{src: src, br: bufio.NewReaderSize(src, readBufferSize)}
	var err error
	if p.pcap, err = pcapgo.NewReader(p.br); err != nil {
		t.Fatalf("pcapgo.NewReader: %v", err)
	}
	p.snaplen = MaxCaptureLength
	if s := p.pcap.Snaplen(); s != 0 && s < MaxCaptureLength {
		p.snaplen = int(s)
	}
	p.pcap.SetSnaplen(uint32(p.snaplen))
	return p
}

func (p *pcapgoReader) pos() int64 { return p.src.n - int64(p.br.Buffered()) }

func (p *pcapgoReader) fail(num int, off int64, err error) error {
	return &Error{File: "agree", Packet: num, Offset: off, Err: err}
}

func (p *pcapgoReader) tooLong(caplen int) error {
	return (&Reader{snaplen: p.snaplen}).tooLong(caplen)
}

func (p *pcapgoReader) Next() (Record, error) {
	start := p.pos()
	num := p.n + 1
	data, ci, err := p.pcap.ZeroCopyReadPacketData()
	read := p.pos() - start
	switch {
	case err == io.EOF && read == 0:
		return Record{}, io.EOF
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		if read < pcapRecord {
			err = fmt.Errorf("%w: record header ends after %d of %d bytes", ErrTruncated, read, pcapRecord)
		} else {
			err = fmt.Errorf("%w: record data ends after %d of %d bytes", ErrTruncated, read-pcapRecord, ci.CaptureLength)
		}
		return Record{}, p.fail(num, start, err)
	case err != nil:
		switch {
		case ci.CaptureLength > ci.Length:
			err = fmt.Errorf("%w: captured length %d exceeds wire length %d", ErrBadRecord, ci.CaptureLength, ci.Length)
		case ci.CaptureLength > p.snaplen:
			err = p.tooLong(ci.CaptureLength)
		default:
			err = fmt.Errorf("%w: %v", ErrBadRecord, err)
		}
		return Record{}, p.fail(num, start, err)
	case ci.CaptureLength > p.snaplen:
		return Record{}, p.fail(num, start, p.tooLong(ci.CaptureLength))
	}
	p.n = num
	return Record{Number: num, Time: ci.Timestamp, LinkType: p.pcap.LinkType(), Data: data, Length: ci.Length, Offset: start}, nil
}

// checkAgainstPcapgo reads raw with Reader and with pcapgoReader and wants
// the same records, bytes included, and the same final error. raw must be a
// classic pcap whose file header Reader accepts.
func checkAgainstPcapgo(t *testing.T, raw []byte) {
	t.Helper()
	r, err := NewReader("agree", bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	p := newPcapgoReader(t, raw)
	for i := 0; ; i++ {
		got, gotErr := r.Next()
		want, wantErr := p.Next()
		if !reflect.DeepEqual(gotErr, wantErr) {
			t.Fatalf("record %d: Next() error = %v, pcapgo %v", i+1, gotErr, wantErr)
		}
		if gotErr != nil {
			if _, again := r.Next(); again != gotErr {
				t.Fatalf("record %d: error %v, then %v: not sticky", i+1, gotErr, again)
			}
			return
		}
		if !bytes.Equal(got.Data, want.Data) || cap(got.Data) != len(got.Data) {
			t.Fatalf("record %d: Data = % x (cap %d), pcapgo % x", i+1, head(got.Data), cap(got.Data), head(want.Data))
		}
		got.Data, want.Data = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("record %d = %+v, pcapgo %+v", i+1, got, want)
		}
	}
}

func isPCAP(raw []byte) bool {
	r, err := NewReader("", bytes.NewReader(raw))
	return err == nil && r.Format() == PCAP
}

// TestReadPCAPAgreesWithPcapgo checks the hand-written pcap parser against
// pcapgo on every classic pcap of captures/public, whole and cut at every
// byte of its first records, and on files with damaged or extreme fields
// in each byte order and resolution.
func TestReadPCAPAgreesWithPcapgo(t *testing.T) {
	files, err := filepath.Glob(capturePath("*.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			checkAgainstPcapgo(t, raw)
			for cut := pcapHeader; cut < min(len(raw), 2000); cut++ {
				checkAgainstPcapgo(t, raw[:cut])
			}
		})
	}
	for _, magic := range []uint32{magicMicroBE, magicNanoBE} {
		for _, order := range []binary.AppendByteOrder{binary.LittleEndian, binary.BigEndian} {
			file := func(snaplen uint32, recs ...[4]uint32) []byte {
				b := order.AppendUint32(nil, magic)
				b = order.AppendUint16(b, 2)
				b = order.AppendUint16(b, 4)
				b = append(b, make([]byte, 8)...)
				b = order.AppendUint32(b, snaplen)
				b = order.AppendUint32(b, 1)
				for _, r := range recs {
					for _, f := range r {
						b = order.AppendUint32(b, f)
					}
					b = append(b, bytes.Repeat([]byte{byte(len(b))}, int(min(r[2], 70000)))...)
				}
				return b
			}
			name := fmt.Sprintf("magic %08x %T", magic, order)
			tests := []struct {
				name string
				file []byte
			}{
				{"plain", file(65535, [4]uint32{1, 2, 60, 60}, [4]uint32{3, 999_999_999, 60, 1500})},
				{"fraction of a second or more", file(65535, [4]uint32{1, 1_000_000, 60, 60}, [4]uint32{1, 999_999_999 + 2, 60, 60})},
				{"fraction wrapping in 32 bits", file(65535, [4]uint32{1, 4_294_968, 60, 60}, [4]uint32{1, 1 << 31, 60, 60}, [4]uint32{^uint32(0), ^uint32(0), 60, 60})},
				{"empty record", file(65535, [4]uint32{1, 0, 0, 0}, [4]uint32{1, 0, 0, 60})},
				{"caplen over wire length", file(65535, [4]uint32{1, 0, 60, 60}, [4]uint32{1, 0, 61, 60})},
				{"caplen over snaplen", file(50, [4]uint32{1, 0, 50, 60}, [4]uint32{1, 0, 51, 60})},
				{"caplen over the maximum", file(0, [4]uint32{1, 0, MaxCaptureLength + 1, MaxCaptureLength + 1})},
				{"caplen over both", file(0, [4]uint32{1, 0, MaxCaptureLength + 1, 5})},
				{"caplen absurd", file(1<<31, [4]uint32{1, 0, 1 << 31, ^uint32(0)})},
				{"larger than the read buffer", file(0, [4]uint32{1, 0, 70000, 70000}, [4]uint32{2, 0, 60, 60})},
			}
			for _, tt := range tests {
				t.Run(name+"/"+tt.name, func(t *testing.T) {
					checkAgainstPcapgo(t, tt.file)
					for cut := pcapHeader; cut < len(tt.file); cut += 1 + cut/50 {
						checkAgainstPcapgo(t, tt.file[:cut])
					}
				})
			}
		}
	}
}

// FuzzReadPCAP checks the hand-written pcap parser against pcapgo on
// arbitrary classic pcap input. Its seeds are FuzzReader's.
func FuzzReadPCAP(f *testing.F) {
	addCaptureSeeds(f, "*.pcap")
	f.Add(pcapFile(50, 1, pcapRec(1, 60, 60, bytes.Repeat([]byte{1}, 60))))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !isPCAP(raw) {
			return
		}
		checkAgainstPcapgo(t, raw)
	})
}

// sourceOnly hides a *Reader from Reorder, which then takes its records
// through Next like any Source's.
type sourceOnly struct{ Source }

// pcapNano builds a little-endian nanosecond pcap of recs, with the given
// wire lengths.
func pcapNano(recs []Record) []byte {
	b := binary.LittleEndian.AppendUint32(nil, magicNanoBE) // a1b23c4d written little-endian
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 1)
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint32(b, uint32(r.Time.Unix()))
		b = binary.LittleEndian.AppendUint32(b, uint32(r.Time.Nanosecond()))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Data)))
		b = binary.LittleEndian.AppendUint32(b, uint32(r.Length))
		b = append(b, r.Data...)
	}
	return b
}

// TestReorderPCAPFastPath checks that Reorder over a classic pcap *Reader,
// which takes records from its buffer, returns what it returns over the
// same Reader seen as a plain Source: the same records, bytes, numbers,
// offsets and times, and the same final error.
func TestReorderPCAPFastPath(t *testing.T) {
	size := func(i int) int { return 40 + i%90 }
	huge := genRecords(5, 3000, time.Microsecond, 3, size)
	for i := range huge {
		if i%100 == 7 {
			huge[i].Length = 1<<31 + i // does not fit the compact form
		}
	}
	tests := []struct {
		name   string
		file   []byte
		window time.Duration
	}{
		{"in order", pcapNano(genRecords(1, 20000, time.Microsecond, 0, size)), 2 * time.Millisecond},
		{"late records", pcapNano(genRecords(2, 20000, time.Microsecond, 1500, size)), 2 * time.Millisecond},
		{"ties", pcapNano(genRecords(3, 20000, time.Millisecond, 3, size)), 50 * time.Millisecond},
		{"all held", pcapNano(genRecords(4, 5000, time.Microsecond, 5, size)), 0},
		{"wire length beyond int32", pcapNano(huge), time.Millisecond},
		{"late beyond the window", pcapNano(genRecords(6, 5000, time.Millisecond, 30, size)), 25 * time.Millisecond},
		{"cut", func() []byte { b := pcapNano(genRecords(7, 5000, time.Microsecond, 100, size)); return b[:len(b)-30] }(), time.Millisecond},
		{"communityid", readFile(t, "zeek__communityid-tcp-snaplen96.pcap"), 0},
		{"communityid, small window", readFile(t, "zeek__communityid-tcp-snaplen96.pcap"), 100 * time.Microsecond},
		{"anyconnect", readFile(t, "ndpi__anyconnect-vpn.pcap"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fast := NewReorder(mustReader(t, tt.file), tt.window)
			slow := NewReorder(sourceOnly{mustReader(t, tt.file)}, tt.window)
			if fast.pcap == nil || slow.pcap != nil {
				t.Fatal("the fast path is not taken where it should be, or the reverse")
			}
			for i := 0; ; i++ {
				got, gotErr := fast.Next()
				want, wantErr := slow.Next()
				if oe, ok := wantErr.(*OrderError); ok {
					oe.File = "written" // the plain Source has no name; the Reader does
				}
				if !reflect.DeepEqual(gotErr, wantErr) {
					t.Fatalf("output %d: error = %v, want %v", i+1, gotErr, wantErr)
				}
				if gotErr != nil {
					t.Logf("%d records, then %v", i, gotErr)
					return
				}
				if !bytes.Equal(got.Data, want.Data) {
					t.Fatalf("output %d (packet %d): Data = % x, want % x", i+1, got.Number, head(got.Data), head(want.Data))
				}
				got.Data, want.Data = nil, nil
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("output %d = %+v, want %+v", i+1, got, want)
				}
			}
		})
	}
}

// Once the window is full, Reader and Reorder over a classic pcap allocate
// nothing per record.
func TestReadReorderAllocs(t *testing.T) {
	raw := pcapStream(20000, 10*time.Microsecond, benchFrame)
	nextAllocates(t, NewReorder(mustReader(t, raw), time.Millisecond), 5000) // 100 records held
}
