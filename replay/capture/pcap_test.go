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
	files, _ := filepath.Glob(capturePath("*.pcap"))
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw[:min(len(raw), 600)])
		f.Add(raw[:min(len(raw), 80)])
	}
	f.Add(pcapFile(50, 1, pcapRec(1, 60, 60, bytes.Repeat([]byte{1}, 60))))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !isPCAP(raw) {
			return
		}
		checkAgainstPcapgo(t, raw)
	})
}
