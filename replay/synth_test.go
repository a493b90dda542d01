package replay

import (
	"encoding/binary"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/natcheck/natcheck/internal/pcapgen"
	"github.com/natcheck/natcheck/reference"
)

// synthPacket is one packet of a synthetic capture.
type synthPacket struct {
	at       time.Duration
	src, dst netip.AddrPort
	proto    reference.Proto
	flags    reference.TCPFlags
}

var synthT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// packet is p as the engine sees it, at synthT0 + p.at.
func (p synthPacket) packet() reference.Packet {
	return reference.Packet{Time: synthT0.Add(p.at), Tuple: reference.Tuple{Proto: p.proto, Src: p.src, Dst: p.dst}, Flags: p.flags}
}

// writeSynth writes packets as a pcap file with a 16-byte payload each.
func writeSynth(tb testing.TB, w io.Writer, packets []synthPacket) {
	tb.Helper()
	ps := make([]reference.Packet, len(packets))
	for i, p := range packets {
		ps[i] = p.packet()
	}
	if err := pcapgen.WritePCAP(w, ps, []byte("natcheck-payload")); err != nil {
		tb.Fatal(err)
	}
}

func synthFile(tb testing.TB, packets []synthPacket) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "synth.pcap")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	writeSynth(tb, f, packets)
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// ipChecksumOK recomputes an IPv4 header checksum from scratch.
func ipChecksumOK(hdr []byte) bool {
	var s uint32
	for i := 0; i+1 < len(hdr); i += 2 {
		s += uint32(binary.BigEndian.Uint16(hdr[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s) == 0xffff
}
