package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// capturesDir holds the real captures; its README.md says where each came
// from.
const capturesDir = "../../captures/public"

func capturePath(name string) string { return filepath.Join(capturesDir, name) }

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(capturePath(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll reads every record of a Source, copying the data, and returns
// them with the error that ended the stream (nil for a clean io.EOF).
func readAll(t testing.TB, src Source) ([]Record, error) {
	t.Helper()
	var recs []Record
	for {
		rec, err := src.Next()
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return recs, err
		}
		rec.Data = bytes.Clone(rec.Data)
		recs = append(recs, rec)
	}
}

// openCapture opens a public capture, closed when the test ends.
func openCapture(t testing.TB, name string) *Reader {
	t.Helper()
	r, err := Open(capturePath(name))
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func openAll(t testing.TB, name string) ([]Record, error) {
	t.Helper()
	return readAll(t, openCapture(t, name))
}

// Expected values come from /work/shared/captures/README.md and from
// Wireshark 4.0.17: `capinfos -c`, and `tshark -T fields -e frame.time_epoch
// -e frame.len -e frame.cap_len -e frame.interface_id`.
func TestReaderCaptures(t *testing.T) {
	tests := []struct {
		file      string
		format    Format
		count     int
		linkType  layers.LinkType
		firstTime string // tshark frame.time_epoch of packet 1
		firstLen  int
		lastTime  string
	}{
		{"ndpi__anyconnect-vpn.pcap", PCAP, 589, layers.LinkTypeEthernet, "", 0, ""},
		{"pcapplusplus__many_interfaces-1.pcapng", PCAPNG, 64, layers.LinkTypeEthernet, "1439753725.701607000", 178, ""},
		{"ndpi__quic_interop_V.pcapng", PCAPNG, 246, layers.LinkTypeEthernet, "1603816434.507204968", 1294, "1603816444.721572231"},
		{"chrissanders__icmp_traceroute.pcapng", PCAPNG, 54, layers.LinkTypeEthernet, "", 0, ""},
		{"chrissanders__ip_frag_source.pcapng", PCAPNG, 6, layers.LinkTypeEthernet, "", 0, ""},
		{"ndpi__dns_fragmented.pcap", PCAP, 66, layers.LinkTypeEthernet, "", 0, ""},
		{"pcapplusplus__sll-any-device.pcap", PCAP, 518, layers.LinkTypeLinuxSLL, "", 0, ""},
		{"zeek__openjdk-zeek.org-sll2.pcap", PCAP, 6, layers.LinkTypeLinuxSLL2, "", 0, ""},
		{"suricata__tcp-empty-sack-rawip.pcap", PCAP, 42, layers.LinkTypeRaw, "", 0, ""},
		{"zeek__redis-attr-null-loopback.pcap", PCAP, 28, layers.LinkTypeNull, "", 0, ""},
		{"tcpdump__pptp-bigendian.pcap", PCAP, 23, layers.LinkTypeEthernet, "", 0, ""},
		{"pcapplusplus__nanosecs_big_endian.pcap", PCAP, 10, layers.LinkTypeEthernet, "1766361926.167647291", 74, "1766361926.168451894"},
		{"zeek__get-to-ssh-server-nsec.pcap", PCAP, 9, layers.LinkTypeEthernet, "1770126425.732560000", 74, "1770126426.041811000"},
		{"zeek__vlan-collisions-qinq.pcap", PCAP, 42, layers.LinkTypeEthernet, "", 0, ""},
		{"zeek__communityid-tcp-snaplen96.pcap", PCAP, 12, layers.LinkTypeEthernet, "1071580904.891921000", 74, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r := openCapture(t, tt.file)
			if got := r.Format(); got != tt.format {
				t.Errorf("Format() = %v, want %v", got, tt.format)
			}
			recs, err := readAll(t, r)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if len(recs) != tt.count {
				t.Fatalf("read %d records, want %d", len(recs), tt.count)
			}
			if got := recs[0].LinkType; got != tt.linkType {
				t.Errorf("record 1 LinkType = %v, want %v", got, tt.linkType)
			}
			for i, rec := range recs {
				if rec.Number != i+1 {
					t.Fatalf("record %d has Number %d", i+1, rec.Number)
				}
			}
			if tt.firstTime != "" {
				if got := epoch(recs[0].Time); got != tt.firstTime {
					t.Errorf("record 1 Time = %s, want %s", got, tt.firstTime)
				}
				if got := recs[0].Length; got != tt.firstLen {
					t.Errorf("record 1 Length = %d, want %d", got, tt.firstLen)
				}
			}
			if tt.lastTime != "" {
				if got := epoch(recs[len(recs)-1].Time); got != tt.lastTime {
					t.Errorf("last record Time = %s, want %s", got, tt.lastTime)
				}
			}
		})
	}
}

func epoch(t time.Time) string {
	ns := t.UnixNano()
	return fmt.Sprintf("%d.%09d", ns/1e9, ns%1e9)
}

// TestReaderOffsets checks every record's Offset against the file: the
// record header (pcap) or enhanced packet block (pcapng) found there must
// carry the record's lengths and bytes.
func TestReaderOffsets(t *testing.T) {
	files, err := filepath.Glob(capturePath("*.pcap*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			raw := readFile(t, name)
			recs, _ := openAll(t, name) // the cut file's error is tested elsewhere
			var order binary.ByteOrder = binary.LittleEndian
			if m := binary.BigEndian.Uint32(raw); m == magicMicroBE || m == magicNanoBE {
				order = binary.BigEndian
			}
			ng := binary.BigEndian.Uint32(raw) == magicNG
			if ng && binary.BigEndian.Uint32(raw[8:]) == ngByteOrderMagic {
				order = binary.BigEndian
			}
			prevEnd := int64(0)
			for _, rec := range recs {
				off := rec.Offset
				if off < prevEnd {
					t.Fatalf("packet %d: Offset %d inside the previous record", rec.Number, off)
				}
				var caplen, wire uint32
				var data []byte
				if ng {
					if typ := order.Uint32(raw[off:]); typ != blockEnhancedPacket {
						t.Fatalf("packet %d: block type %d at offset %d, want an EPB", rec.Number, typ, off)
					}
					caplen, wire = order.Uint32(raw[off+20:]), order.Uint32(raw[off+24:])
					data = raw[off+28 : off+28+int64(caplen)]
					prevEnd = off + int64(order.Uint32(raw[off+4:]))
				} else {
					caplen, wire = order.Uint32(raw[off+8:]), order.Uint32(raw[off+12:])
					data = raw[off+16 : off+16+int64(caplen)]
					prevEnd = off + 16 + int64(caplen)
				}
				if int(caplen) != len(rec.Data) || int(wire) != rec.Length || !bytes.Equal(data, rec.Data) {
					t.Fatalf("packet %d: file at offset %d has caplen %d len %d, record has %d %d (or other bytes)",
						rec.Number, off, caplen, wire, len(rec.Data), rec.Length)
				}
			}
		})
	}
}

// many_interfaces-1 has 11 interfaces; tshark puts 62 packets on en0
// (interface 0, Ethernet) and 2 on lo0 (interface 10, NULL). Packet 3, on
// lo0, is 287µs earlier than packet 2.
func TestReaderInterfaces(t *testing.T) {
	recs, err := openAll(t, "pcapplusplus__many_interfaces-1.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		iface int
		lt    layers.LinkType
	}
	got := map[key]int{}
	for _, rec := range recs {
		got[key{rec.Interface, rec.LinkType}]++
	}
	want := map[key]int{{0, layers.LinkTypeEthernet}: 62, {10, layers.LinkTypeNull}: 2}
	if len(got) != len(want) || got[key{0, layers.LinkTypeEthernet}] != 62 || got[key{10, layers.LinkTypeNull}] != 2 {
		t.Errorf("records per (interface, link type) = %v, want %v", got, want)
	}
	if p3 := recs[2]; p3.Interface != 10 || epoch(p3.Time) != "1439753725.701568000" {
		t.Errorf("packet 3 = interface %d at %s, want 10 at 1439753725.701568000", p3.Interface, epoch(p3.Time))
	}
}

// The joincap file is ok.pcap cut after 300 bytes: record 1 (208 bytes) is
// whole, record 2 says caplen 78 but has 36 bytes.
func TestReaderCutFile(t *testing.T) {
	r := openCapture(t, "joincap__unexpected_eof_on_second_packet.pcap")
	rec, err := r.Next()
	if err != nil || rec.Number != 1 || len(rec.Data) != 208 || rec.Offset != 24 {
		t.Fatalf("Next() = packet %d, %d bytes at %d, %v; want packet 1, 208 bytes at 24", rec.Number, len(rec.Data), rec.Offset, err)
	}
	for range 2 { // the error sticks
		_, err = r.Next()
		var ce *Error
		if !errors.As(err, &ce) || !errors.Is(err, ErrTruncated) {
			t.Fatalf("Next() error = %v, want a *capture.Error wrapping ErrTruncated", err)
		}
		if ce.Packet != 2 || ce.Offset != 24+16+208 || ce.File != capturePath("joincap__unexpected_eof_on_second_packet.pcap") {
			t.Errorf("error names packet %d at offset %d in %q, want packet 2 at 248", ce.Packet, ce.Offset, ce.File)
		}
		const want = "read capture ../../captures/public/joincap__unexpected_eof_on_second_packet.pcap: packet 2 at offset 248: truncated file: record data ends after 36 of 78 bytes"
		if err.Error() != want {
			t.Errorf("error = %q\nwant    %q", err, want)
		}
	}
}

// pcapFile builds a little-endian microsecond pcap file.
func pcapFile(snaplen, linkType uint32, recs ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, magicMicroBE) // a1b2c3d4 written little-endian
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint32(b, snaplen)
	b = binary.LittleEndian.AppendUint32(b, linkType)
	for _, r := range recs {
		b = append(b, r...)
	}
	return b
}

// pcapRec builds a pcap record; data may be shorter than caplen.
func pcapRec(sec uint32, caplen, length uint32, data []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, sec)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, caplen)
	b = binary.LittleEndian.AppendUint32(b, length)
	return append(b, data...)
}

// ngBuilder builds pcapng blocks in one byte order.
type ngBuilder struct{ o binary.AppendByteOrder }

var le = ngBuilder{binary.LittleEndian}

// block builds a block with a correct length.
func (n ngBuilder) block(typ uint32, body []byte) []byte {
	total := uint32(12 + len(body))
	b := n.o.AppendUint32(nil, typ)
	b = n.o.AppendUint32(b, total)
	b = append(b, body...)
	return n.o.AppendUint32(b, total)
}

func (n ngBuilder) shb() []byte {
	body := n.o.AppendUint32(nil, ngByteOrderMagic)
	body = n.o.AppendUint16(body, 1)
	body = n.o.AppendUint16(body, 0)
	body = n.o.AppendUint64(body, ^uint64(0))
	return n.block(blockSectionHeader, body)
}

func (n ngBuilder) idb(linkType uint16, snaplen uint32) []byte {
	body := n.o.AppendUint16(nil, linkType)
	body = n.o.AppendUint16(body, 0)
	body = n.o.AppendUint32(body, snaplen)
	return n.block(1, body)
}

// epb builds an enhanced packet block stamped with second sec.
func (n ngBuilder) epb(iface, caplen, length uint32, data []byte, sec uint64) []byte {
	ts := sec * 1e6
	body := n.o.AppendUint32(nil, iface)
	body = n.o.AppendUint32(body, uint32(ts>>32))
	body = n.o.AppendUint32(body, uint32(ts))
	body = n.o.AppendUint32(body, caplen)
	body = n.o.AppendUint32(body, length)
	body = append(body, data...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	return n.block(blockEnhancedPacket, body)
}

func ngSHB() []byte                       { return le.shb() }
func ngIDB(lt uint16, snap uint32) []byte { return le.idb(lt, snap) }
func ngEPB(iface, caplen, length uint32, data []byte) []byte {
	return le.epb(iface, caplen, length, data, 0)
}

// TestReaderSections reads a file of two sections, the first little-endian
// and the second big-endian, with a name resolution block and an odd
// length packet in between, and checks numbers, interfaces, times and
// offsets.
func TestReaderSections(t *testing.T) {
	be := ngBuilder{binary.BigEndian}
	p1, p2, p3 := bytes.Repeat([]byte{1}, 61), bytes.Repeat([]byte{2}, 40), bytes.Repeat([]byte{3}, 3)
	nrb := le.block(4, []byte{0, 0, 0, 0})
	parts := [][]byte{le.shb(), le.idb(1, 0), le.idb(0, 0), le.epb(1, 61, 100, p1, 10), nrb,
		be.shb(), be.idb(101, 0), be.epb(0, 40, 40, p2, 20), be.epb(0, 3, 3, p3, 30)}
	file := cat(parts...)
	offset := func(i int) int64 { return int64(len(cat(parts[:i]...))) }
	want := []Record{
		{Number: 1, Time: time.Unix(10, 0).UTC(), LinkType: layers.LinkTypeNull, Interface: 1, Data: p1, Length: 100, Offset: offset(3)},
		{Number: 2, Time: time.Unix(20, 0).UTC(), LinkType: layers.LinkTypeRaw, Interface: 0, Data: p2, Length: 40, Offset: offset(7)},
		{Number: 3, Time: time.Unix(30, 0).UTC(), LinkType: layers.LinkTypeRaw, Interface: 0, Data: p3, Length: 3, Offset: offset(8)},
	}
	got, err := readAll(t, mustReader(t, file))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Number != w.Number || !g.Time.Equal(w.Time) || g.LinkType != w.LinkType || g.Interface != w.Interface ||
			!bytes.Equal(g.Data, w.Data) || g.Length != w.Length || g.Offset != w.Offset {
			t.Errorf("record %d = %+v\nwant %+v", i+1, g, w)
		}
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestReaderDamaged(t *testing.T) {
	pkt := bytes.Repeat([]byte{0xab}, 60)
	good := pcapRec(1, 60, 60, pkt)
	shb, idb := ngSHB(), ngIDB(1, 0)
	epb := ngEPB(0, 60, 60, pkt)
	ngStart := int64(len(shb) + len(idb))
	badLen := ngEPB(0, 60, 60, pkt)
	binary.LittleEndian.PutUint32(badLen[4:], 30) // not a multiple of 4
	short := ngEPB(0, 60, 60, pkt)
	binary.LittleEndian.PutUint32(short[4:], 64) // shorter than its data
	tests := []struct {
		name       string
		file       []byte
		wantRecs   int
		wantErr    error
		wantPacket int
		wantOffset int64
	}{
		{"empty", nil, 0, ErrTruncated, 0, 0},
		{"three bytes", []byte{0xd4, 0xc3, 0xb2}, 0, ErrTruncated, 0, 0},
		{"text", []byte("hello, world\n"), 0, ErrBadMagic, 0, 0},
		{"gzip", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}, 0, ErrBadMagic, 0, 0},
		{"header cut", pcapFile(65535, 1)[:10], 0, ErrTruncated, 0, 0},
		{"version 2.2", func() []byte { b := pcapFile(65535, 1); b[6] = 2; return b }(), 0, ErrBadHeader, 0, 0},
		{"unknown link type", pcapFile(65535, 105, good), 0, ErrUnknownLinkType, 0, 0},
		{"no records", pcapFile(65535, 1), 0, nil, 0, 0},
		{"cut in record header", cat(pcapFile(65535, 1, good, good), good[:10]), 2, ErrTruncated, 3, 24 + 2*76},
		{"cut after record header", cat(pcapFile(65535, 1, good), good[:16]), 1, ErrTruncated, 2, 24 + 76},
		{"caplen over snaplen", pcapFile(50, 1, good), 0, ErrBadRecord, 1, 24},
		{"caplen over wire length", pcapFile(65535, 1, good, pcapRec(2, 60, 59, pkt)), 1, ErrBadRecord, 2, 100},
		{"caplen absurd", pcapFile(0, 1, pcapRec(1, 1<<31, 1<<31, pkt)), 0, ErrBadRecord, 1, 24},
		{"caplen absurd under huge snaplen", pcapFile(1<<31, 1, good, pcapRec(1, 1<<30, 1<<30, pkt)), 1, ErrBadRecord, 2, 100},
		{"pcapng", cat(shb, idb, epb, epb), 2, nil, 0, 0},
		{"pcapng cut in section header", shb[:20], 0, ErrTruncated, 0, 0},
		{"pcapng cut in block", cat(shb, idb, epb, epb[:50]), 1, ErrTruncated, 2, ngStart + int64(len(epb))},
		{"pcapng cut in block header", cat(shb, idb, epb, epb[:6]), 1, ErrTruncated, 2, ngStart + int64(len(epb))},
		{"pcapng block length not a multiple of 4", cat(shb, idb, epb, badLen), 1, ErrBadRecord, 2, ngStart + int64(len(epb))},
		{"pcapng block shorter than its data", cat(shb, idb, epb, short, epb), 1, ErrBadRecord, 2, ngStart + int64(len(epb))},
		{"pcapng missing interface", cat(shb, idb, ngEPB(3, 60, 60, pkt)), 0, ErrBadRecord, 1, ngStart},
		{"pcapng caplen over snaplen", cat(shb, ngIDB(1, 50), epb), 0, ErrBadRecord, 1, ngStart},
		{"pcapng caplen over wire length", cat(shb, idb, ngEPB(0, 60, 20, pkt)), 0, ErrBadRecord, 1, ngStart},
		{"pcapng packet before interface", cat(shb, epb), 0, ErrBadRecord, 1, int64(len(shb))},
		{"pcapng bad byte order", func() []byte { b := cat(shb, idb, epb); b[8] = 0; return b }(), 0, ErrBadHeader, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader("test", bytes.NewReader(tt.file))
			var recs []Record
			if err == nil {
				recs, err = readAll(t, r)
			}
			if len(recs) != tt.wantRecs {
				t.Errorf("read %d records, want %d", len(recs), tt.wantRecs)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("error = %v, want none", err)
				}
				return
			}
			var ce *Error
			if !errors.Is(err, tt.wantErr) || !errors.As(err, &ce) {
				t.Fatalf("error = %v, want a *capture.Error wrapping %v", err, tt.wantErr)
			}
			if ce.Packet != tt.wantPacket || ce.Offset != tt.wantOffset {
				t.Errorf("error at packet %d offset %d, want packet %d offset %d (%v)", ce.Packet, ce.Offset, tt.wantPacket, tt.wantOffset, err)
			}
			t.Log(err)
		})
	}
}

// A pcapng record on an interface of unknown link type is skipped with an
// error, and reading goes on.
func TestReaderUnknownLinkTypeInterface(t *testing.T) {
	pkt := bytes.Repeat([]byte{1}, 40)
	file := cat(ngSHB(), ngIDB(1, 0), ngIDB(105, 0), ngEPB(1, 40, 40, pkt), ngEPB(0, 40, 40, pkt))
	r, err := NewReader("two-ifaces", bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrUnknownLinkType) {
		t.Fatalf("Next() error = %v, want ErrUnknownLinkType", err)
	}
	rec, err := r.Next()
	if err != nil || rec.Number != 2 || rec.Interface != 0 {
		t.Fatalf("Next() = packet %d on interface %d, %v; want packet 2 on 0", rec.Number, rec.Interface, err)
	}
}

// TestReaderStreams checks that memory does not grow with the file: reading
// a long capture allocates nothing per record.
func TestReaderAllocs(t *testing.T) {
	for _, name := range []string{"ndpi__anyconnect-vpn.pcap", "ndpi__quic_interop_V.pcapng"} {
		raw := readFile(t, name)
		r, err := NewReader(name, &loop{data: raw, skip: headerLen(t, raw)})
		if err != nil {
			t.Fatal(err)
		}
		nextAllocates(t, r, 1000)
	}
}

// headerLen is the length of the file header (pcap) or of the blocks before
// the first packet block (pcapng).
func headerLen(t testing.TB, raw []byte) int {
	t.Helper()
	r, err := NewReader("", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	return int(rec.Offset)
}

// loop is an endless capture: the file, then its records again and again.
type loop struct {
	data []byte
	skip int
	off  int
}

func (l *loop) Read(p []byte) (int, error) {
	if l.off == len(l.data) {
		l.off = l.skip
	}
	n := copy(p, l.data[l.off:])
	l.off += n
	return n, nil
}

func BenchmarkReader(b *testing.B) {
	for _, name := range []string{"ndpi__anyconnect-vpn.pcap", "ndpi__quic_interop_V.pcapng"} {
		b.Run(name, func(b *testing.B) {
			raw := readFile(b, name)
			r, err := NewReader(name, &loop{data: raw, skip: headerLen(b, raw)})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var n int64
			for b.Loop() {
				rec, err := r.Next()
				if err != nil {
					b.Fatal(err)
				}
				n += int64(len(rec.Data))
			}
			b.SetBytes(n / int64(b.N))
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}

// FuzzReader feeds arbitrary bytes as a capture file: the Reader returns
// records or an error, never panics, and its records stay inside the input.
func FuzzReader(f *testing.F) {
	// Seeds: the start of each real capture, cut at a few places, and the
	// synthetic pcapng pieces.
	addCaptureSeeds(f, "*.pcap*")
	pkt := bytes.Repeat([]byte{0xab}, 20)
	f.Add(cat(ngSHB(), ngIDB(1, 0), ngIDB(0, 64), ngEPB(1, 20, 20, pkt), ngEPB(0, 20, 20, pkt)))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader("fuzz", bytes.NewReader(data))
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("NewReader error %v is not a *capture.Error", err)
			}
			return
		}
		prev := int64(-1)
		for range 10000 {
			rec, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var ce *Error
				if !errors.As(err, &ce) {
					t.Fatalf("Next error %v is not a *capture.Error", err)
				}
				if errors.Is(err, ErrUnknownLinkType) {
					continue
				}
				return
			}
			if rec.Offset <= prev || rec.Offset+int64(len(rec.Data)) > int64(len(data)) || len(rec.Data) > MaxCaptureLength {
				t.Fatalf("packet %d: %d bytes at offset %d, previous at %d, input %d bytes", rec.Number, len(rec.Data), rec.Offset, prev, len(data))
			}
			prev = rec.Offset
		}
	})
}

// addCaptureSeeds adds the first 600 and 80 bytes of each public capture
// matching glob to f's seed corpus.
func addCaptureSeeds(f *testing.F, glob string) {
	files, _ := filepath.Glob(capturePath(glob))
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw[:min(len(raw), 600)])
		f.Add(raw[:min(len(raw), 80)])
	}
}
