package replay

import (
	"encoding/binary"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
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

// appendFrame appends an Ethernet/IPv4/TCP-or-UDP frame with valid
// checksums and 16 payload bytes, built with gopacket's serializer.
func appendFrame(buf gopacket.SerializeBuffer, p synthPacket) []byte {
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocol(p.proto), SrcIP: p.src.Addr().AsSlice(), DstIP: p.dst.Addr().AsSlice()}
	payload := gopacket.Payload([]byte("natcheck-payload"))
	var l4 gopacket.SerializableLayer
	if p.proto == reference.UDP {
		u := &layers.UDP{SrcPort: layers.UDPPort(p.src.Port()), DstPort: layers.UDPPort(p.dst.Port())}
		_ = u.SetNetworkLayerForChecksum(ip)
		l4 = u
	} else {
		t := &layers.TCP{SrcPort: layers.TCPPort(p.src.Port()), DstPort: layers.TCPPort(p.dst.Port()), Seq: 1000, Window: 65535,
			SYN: p.flags&reference.SYN != 0, ACK: p.flags&reference.ACK != 0, FIN: p.flags&reference.FIN != 0, RST: p.flags&reference.RST != 0}
		_ = t.SetNetworkLayerForChecksum(ip)
		l4 = t
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, l4, payload); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// writeSynth writes packets as a classic microsecond pcap file.
func writeSynth(tb testing.TB, w io.Writer, packets []synthPacket) {
	tb.Helper()
	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		tb.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	for _, p := range packets {
		data := appendFrame(buf, p)
		ci := gopacket.CaptureInfo{Timestamp: synthT0.Add(p.at), CaptureLength: len(data), Length: len(data)}
		if err := pw.WritePacket(ci, data); err != nil {
			tb.Fatal(err)
		}
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
