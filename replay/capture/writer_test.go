package capture

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestWriterRoundTrip writes the records of two real captures, one of them
// with nanosecond timestamps and one with two link types, with comments,
// and reads them back with Reader and with pcapgo directly.
func TestWriterRoundTrip(t *testing.T) {
	var in []Record
	for _, name := range []string{"ndpi__quic_interop_V.pcapng", "pcapplusplus__many_interfaces-1.pcapng", "zeek__communityid-tcp-snaplen96.pcap"} {
		recs, err := openAll(t, name)
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, recs...)
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Interface{Name: "eth", LinkType: layers.LinkTypeEthernet}, Interface{Name: "lo0", LinkType: layers.LinkTypeNull, SnapLen: 65535})
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if in[i].LinkType == layers.LinkTypeNull {
			in[i].Interface = 1
		} else {
			in[i].Interface = 0
		}
		switch i % 3 {
		case 1:
			in[i].Comments = []string{"packet " + strings.Repeat("x", i%5)}
		case 2:
			in[i].Comments = []string{"two", "comments"}
		default:
			in[i].Comments = nil
		}
		if err := w.Write(in[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := readAll(t, mustReader(t, buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("read back %d records, want %d", len(out), len(in))
	}
	for i := range in {
		a, b := in[i], out[i]
		if !a.Time.Equal(b.Time) || !bytes.Equal(a.Data, b.Data) || a.Length != b.Length ||
			a.Interface != b.Interface || a.LinkType != b.LinkType || strings.Join(a.Comments, "|") != strings.Join(b.Comments, "|") {
			t.Fatalf("record %d: wrote %v %d/%d if%d %v %q, read %v %d/%d if%d %v %q", i+1,
				a.Time, len(a.Data), a.Length, a.Interface, a.LinkType, a.Comments,
				b.Time, len(b.Data), b.Length, b.Interface, b.LinkType, b.Comments)
		}
	}
	// pcapgo on its own agrees.
	ng, err := pcapgo.NewNgReader(bytes.NewReader(buf.Bytes()), pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		data, ci, opts, err := ng.ReadPacketDataWithOptions()
		if err != nil {
			t.Fatal(err)
		}
		if !ci.Timestamp.Equal(in[i].Time) || !bytes.Equal(data, in[i].Data) || len(opts.Comments) != len(in[i].Comments) {
			t.Fatalf("pcapgo record %d differs", i+1)
		}
	}
	if _, _, err := ng.ReadPacketData(); err != io.EOF {
		t.Fatalf("pcapgo: %v after the last record, want io.EOF", err)
	}
	if iface, _ := ng.Interface(1); iface.Name != "lo0" || iface.SnapLength != 65535 || iface.TimestampResolution != 9 {
		t.Errorf("interface 1 = %q snaplen %d tsresol %d, want lo0 65535 9", iface.Name, iface.SnapLength, iface.TimestampResolution)
	}
	// Set NATCHECK_KEEP_PCAPNG=dir to keep the file for a check with
	// capinfos and tshark.
	if dir := os.Getenv("NATCHECK_KEEP_PCAPNG"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "roundtrip.pcapng"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mustReader(t testing.TB, b []byte) *Reader {
	t.Helper()
	r, err := NewReader("written", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWriterRejects(t *testing.T) {
	data := make([]byte, 10)
	tests := []struct {
		name string
		rec  Record
	}{
		{"no such interface", Record{Interface: 2, Time: t0, Data: data}},
		{"negative interface", Record{Interface: -1, Time: t0, Data: data}},
		{"before 1970", Record{Time: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), Data: data}},
		{"after 2262", Record{Time: time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC), Data: data}},
		{"length under data", Record{Time: t0, Data: data, Length: 5}},
		{"comment too long", Record{Time: t0, Data: data, Comments: []string{strings.Repeat("c", 70000)}}},
	}
	for _, tt := range tests {
		w, err := NewWriter(io.Discard, Interface{LinkType: layers.LinkTypeEthernet})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(tt.rec); err == nil {
			t.Errorf("%s: Write succeeded, want an error", tt.name)
		}
	}
	if _, err := NewWriter(io.Discard); err == nil {
		t.Error("NewWriter with no interface succeeded, want an error")
	}
}

func BenchmarkWriter(b *testing.B) {
	recs, err := openAll(b, "ndpi__anyconnect-vpn.pcap")
	if err != nil {
		b.Fatal(err)
	}
	w, err := NewWriter(io.Discard, Interface{LinkType: layers.LinkTypeEthernet})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := w.Write(recs[i]); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(recs) {
			i = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// TestWriteEPBMatchesPcapgo: packets without comments, which Writer writes
// itself, come out byte for byte as pcapgo's NgWriter writes them, for
// every padding and on two interfaces.
func TestWriteEPBMatchesPcapgo(t *testing.T) {
	var ours, theirs bytes.Buffer
	ifaces := []Interface{{Name: "a", LinkType: layers.LinkTypeEthernet}, {Name: "b", LinkType: layers.LinkTypeRaw}}
	w, err := NewWriter(&ours, ifaces...)
	if err != nil {
		t.Fatal(err)
	}
	ng, err := pcapgo.NewNgWriterInterface(&theirs, pcapgo.NgInterface{Name: "a", LinkType: layers.LinkTypeEthernet, TimestampResolution: 9},
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "natcheck"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ng.AddInterface(pcapgo.NgInterface{Name: "b", LinkType: layers.LinkTypeRaw, TimestampResolution: 9}); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6789, time.UTC)
	for n := range 9 {
		data := bytes.Repeat([]byte{byte(n + 1)}, 60+n)
		rec := Record{Number: n + 1, Time: ts.Add(time.Duration(n) * time.Microsecond), Interface: n % 2, Data: data, Length: len(data) + n%3}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: rec.Time, CaptureLength: len(data), Length: rec.Length, InterfaceIndex: rec.Interface}
		if err := ng.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := ng.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours.Bytes(), theirs.Bytes()) {
		t.Fatalf("Writer wrote %d bytes, pcapgo %d; they differ", ours.Len(), theirs.Len())
	}
}
