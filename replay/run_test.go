package replay

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/internal/pcapgen"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
)

const public = "../captures/public/"

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func oneFrontend(perInstance int) reference.Config {
	return reference.Config{Frontends: []netip.Addr{netip.MustParseAddr("203.0.113.1")}, PortsPerInstance: perInstance}
}

// TestReplayExhaustion: ten connections from one instance to one server
// with 8 ports each: the 9th and 10th are refused (B9); the replies of
// the refused ones find no flow (B8); the outside view holds only what the
// NAT let through, with correct checksums and SNAT sources in the
// instance's allocation.
func TestReplayExhaustion(t *testing.T) {
	var pk []synthPacket
	for i := range 10 {
		pk = append(pk, synthPacket{at: time.Duration(i) * time.Millisecond, src: ap(fmt.Sprintf("10.0.0.1:%d", 40000+i)), dst: ap("198.51.100.10:443"), proto: reference.TCP, flags: reference.SYN})
	}
	for i := range 10 {
		pk = append(pk, synthPacket{at: 20*time.Millisecond + time.Duration(i)*time.Millisecond, src: ap("198.51.100.10:443"), dst: ap(fmt.Sprintf("10.0.0.1:%d", 40000+i)), proto: reference.TCP, flags: reference.SYN | reference.ACK})
	}
	// Another instance is unaffected (B5) and a UDP mapping works (B7).
	pk = append(pk, synthPacket{at: 40 * time.Millisecond, src: ap("10.0.0.2:5353"), dst: ap("198.51.100.10:443"), proto: reference.TCP, flags: reference.SYN},
		synthPacket{at: 41 * time.Millisecond, src: ap("10.0.0.2:5353"), dst: ap("198.51.100.53:53"), proto: reference.UDP})
	in := synthFile(t, pk)
	out := filepath.Join(t.TempDir(), "out.pcapng")
	var events strings.Builder
	specs, _ := ParseBackends("10.0.0.1,10.0.0.2")
	res, err := Run([]string{in}, Config{Engine: oneFrontend(8), Backends: specs, Output: out, Events: &events})
	if err != nil {
		t.Fatal(err)
	}
	n := res.Counts
	if n.Packets != 22 || n.Outbound != 12 || n.Replies != 10 || n.RepliesNoFlow != 2 || n.Translated != 18 || n.Dropped != 4 {
		t.Errorf("counts %+v, want 22 packets, 12 outbound, 10 replies (2 without flow), 18 translated, 4 dropped", n)
	}
	if res.Drops["exhausted"] != 2 || res.Drops["unsolicited"] != 2 {
		t.Errorf("drops %v, want 2 exhausted and 2 unsolicited", res.Drops)
	}
	var tcp0 *InstanceReport
	for i := range res.Instances {
		if res.Instances[i].Instance == 0 && res.Instances[i].Proto == "tcp" {
			tcp0 = &res.Instances[i]
		}
	}
	if tcp0 == nil || tcp0.ExhaustionDrops != 2 || tcp0.FirstExhaustion == nil || tcp0.FirstExhaustion.Packet != 9 || tcp0.Peak != 8 {
		t.Fatalf("instance 0 tcp: %+v, want 2 exhaustion drops first at packet 9, peak 8", tcp0)
	}
	if !tcp0.FirstExhaustion.Time.Equal(synthT0.Add(8 * time.Millisecond)) {
		t.Errorf("first exhaustion at %v, want +8ms", tcp0.FirstExhaustion.Time)
	}
	verdicts := strings.Join(res.Verdicts(), "\n")
	if !strings.Contains(verdicts, "instance 0 (10.0.0.1): EXHAUSTED: 2 new flows refused (B9), first at packet 9") ||
		!strings.Contains(verdicts, "instance 1 (10.0.0.2): ok") {
		t.Errorf("verdicts:\n%s", verdicts)
	}
	if c := strings.Count(events.String(), `"behavior":"B9"`); c != 2 {
		t.Errorf("events file has %d B9 lines, want 2:\n%s", c, events.String())
	}

	// The outside view: what left the NAT and what came back to it.
	rd, err := capture.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	plan := res.Plan.Instances
	written := 0
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		written++
		pkt := gopacket.NewPacket(rec.Data, rec.LinkType, gopacket.Default)
		ip4 := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ipChecksumOK(ip4.Contents) {
			t.Errorf("packet %d: bad IPv4 checksum", rec.Number)
		}
		var sport, dport uint16
		if tl, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
			sport, dport = uint16(tl.SrcPort), uint16(tl.DstPort)
			if err := verifyL4(ip4, tl); err != nil {
				t.Errorf("packet %d: %v", rec.Number, err)
			}
		} else if ul, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
			sport, dport = uint16(ul.SrcPort), uint16(ul.DstPort)
		}
		src, _ := netip.AddrFromSlice(ip4.SrcIP)
		dst, _ := netip.AddrFromSlice(ip4.DstIP)
		snat := netip.AddrPortFrom(src, sport)
		if src.Is4() && src == netip.MustParseAddr("203.0.113.1") {
			if !inPlan(plan, snat) {
				t.Errorf("packet %d: SNAT %v outside every allocation", rec.Number, snat)
			}
		} else if dst != netip.MustParseAddr("203.0.113.1") || !inPlan(plan, netip.AddrPortFrom(dst, dport)) {
			t.Errorf("packet %d: %v -> %v:%d is neither from nor to a SNAT endpoint", rec.Number, src, dst, dport)
		}
	}
	if written != 18 || int64(written) != res.Counts.Written {
		t.Errorf("outside view has %d packets (result says %d), want 18", written, res.Counts.Written)
	}
}

func inPlan(plan []reference.InstancePlan, a netip.AddrPort) bool {
	for _, in := range plan {
		for _, r := range in.Ranges {
			if r.IP == a.Addr() && a.Port() >= r.First && a.Port() <= r.Last {
				return true
			}
		}
	}
	return false
}

// verifyL4 recomputes the TCP checksum from scratch with gopacket.
func verifyL4(ip4 *layers.IPv4, tl *layers.TCP) error {
	got := tl.Checksum
	buf := gopacket.NewSerializeBuffer()
	c := *tl
	_ = c.SetNetworkLayerForChecksum(ip4)
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, &c, gopacket.Payload(tl.Payload)); err != nil {
		return err
	}
	if want := uint16(buf.Bytes()[16])<<8 | uint16(buf.Bytes()[17]); want != got {
		return fmt.Errorf("tcp checksum %04x, want %04x", got, want)
	}
	return nil
}

// TestReplayRealCaptures replays real captures of every link type and
// format; the expected figures come from each file's README line in
// captures/public (tshark/capinfos counts).
func TestReplayRealCaptures(t *testing.T) {
	for _, tc := range []struct {
		file     string
		backends string
		packets  int64
		check    func(t *testing.T, r *Result)
	}{
		{"ndpi__anyconnect-vpn.pcap", "", 589, func(t *testing.T, r *Result) {
			if fmt.Sprint(r.Backends) != "[10.0.0.227]" || r.Counts.IPv6 != 27 {
				t.Errorf("backends %v, IPv6 %d; want [10.0.0.227] detected and 27 IPv6 frames passed over", r.Backends, r.Counts.IPv6)
			}
		}},
		{"pcapplusplus__sll-any-device.pcap", "10.0.0.8", 518, func(t *testing.T, r *Result) {
			if r.Counts.Translated == 0 || r.Counts.IPv6 != 1 {
				t.Errorf("SLL: %d translated, %d IPv6; want traffic of 10.0.0.8 and 1 IPv6 frame", r.Counts.Translated, r.Counts.IPv6)
			}
		}},
		{"zeek__openjdk-zeek.org-sll2.pcap", "", 6, func(t *testing.T, r *Result) {
			if fmt.Sprint(r.Backends) != "[192.168.64.6]" || r.Counts.Translated != 6 {
				t.Errorf("SLL2: backends %v, %d translated; want 192.168.64.6 and all 6", r.Backends, r.Counts.Translated)
			}
		}},
		{"suricata__tcp-empty-sack-rawip.pcap", "", 42, func(t *testing.T, r *Result) {
			if fmt.Sprint(r.Backends) != "[192.168.0.54]" || r.Instances[0].Releases.RST != 0 || r.Counts.Translated != 42 {
				t.Errorf("raw IP: backends %v, %+v; want 192.168.0.54 and all 42 packets translated", r.Backends, r.Counts)
			}
		}},
		{"chrissanders__ip_frag_source.pcapng", "10.10.0.3", 6, func(t *testing.T, r *Result) {
			if r.Counts.Fragments != 6 || r.Drops["fragment"] != 6 || r.Counts.Translated != 0 {
				t.Errorf("fragments: %+v drops %v; want 6 fragments dropped (B15)", r.Counts, r.Drops)
			}
		}},
		{"chrissanders__icmp_traceroute.pcapng", "192.168.100.138", 54, func(t *testing.T, r *Result) {
			if r.Drops["unsupported-protocol"] == 0 || r.Counts.Translated != 0 {
				t.Errorf("ICMP: %+v drops %v; want echo requests dropped (B15)", r.Counts, r.Drops)
			}
		}},
		{"zeek__vlan-collisions-qinq.pcap", "141.142.228.5", 42, func(t *testing.T, r *Result) {
			if r.Counts.Outbound+r.Counts.Replies != 42 {
				t.Errorf("VLAN/QinQ: %+v; want all 42 tagged and untagged frames through the NAT", r.Counts)
			}
		}},
		{"zeek__communityid-tcp-snaplen96.pcap", "128.232.110.120", 12, func(t *testing.T, r *Result) {
			if r.Counts.Cut != 0 || r.Counts.Translated != 12 {
				t.Errorf("snaplen 96: %+v; want the 3 cut records used (their headers are whole)", r.Counts)
			}
		}},
		{"tcpdump__pptp-bigendian.pcap", "10.1.1.11", 23, nil},
		{"pcapplusplus__nanosecs_big_endian.pcap", "127.0.0.1", 10, func(t *testing.T, r *Result) {
			if r.Start.Nanosecond()%1000 == 0 && r.End.Nanosecond()%1000 == 0 {
				t.Errorf("nanosecond capture read at microsecond resolution: %v .. %v", r.Start, r.End)
			}
		}},
		{"zeek__get-to-ssh-server-nsec.pcap", "136.216.42.40", 9, nil},
		{"zeek__redis-attr-null-loopback.pcap", "127.0.0.1", 28, func(t *testing.T, r *Result) {
			if r.Counts.IPv6 != 4 {
				t.Errorf("NULL: %d IPv6, want 4", r.Counts.IPv6)
			}
		}},
		{"pcapplusplus__many_interfaces-1.pcapng", "", 64, func(t *testing.T, r *Result) {
			if fmt.Sprint(r.Backends) != "[192.168.1.139]" {
				t.Errorf("pcapng interfaces: backends %v", r.Backends)
			}
		}},
		{"ndpi__quic_interop_V.pcapng", "", 246, func(t *testing.T, r *Result) {
			if r.Counts.UDP == 0 || r.Counts.IPv6 == 0 {
				t.Errorf("QUIC: %+v", r.Counts)
			}
		}},
		{"ndpi__dns_fragmented.pcap", "", 66, func(t *testing.T, r *Result) {
			if len(r.Backends) != 0 {
				t.Errorf("a server-side capture of public addresses has no private backend: %v", r.Backends)
			}
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			specs, err := ParseBackends(tc.backends)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Run([]string{public + tc.file}, Config{Engine: oneFrontend(0), Backends: specs})
			if tc.file == "ndpi__dns_fragmented.pcap" {
				if err == nil || !strings.Contains(err.Error(), "no backend instances") {
					t.Errorf("Run = %v, want a no-backend error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Counts.Packets != tc.packets {
				t.Errorf("%d packets, want %d", res.Counts.Packets, tc.packets)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}

// TestReplayBadInput: every packet before a fault is replayed and
// reported; the error names the file, the packet and the byte offset.
func TestReplayBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pcap")
	os.WriteFile(garbage, []byte("this is not a capture file at all"), 0o644)
	cut := public + "joincap__unexpected_eof_on_second_packet.pcap"
	// A good first packet, then a record header claiming 70,000 bytes in a
	// file whose snap length is 65,535.
	var good strings.Builder
	writeSynth(t, &good, []synthPacket{{src: ap("10.0.0.1:1000"), dst: ap("198.51.100.1:443"), proto: reference.TCP, flags: reference.SYN}})
	impossible := filepath.Join(dir, "impossible.pcap")
	rec := make([]byte, 16)
	binary.LittleEndian.PutUint32(rec[8:], 70000)
	binary.LittleEndian.PutUint32(rec[12:], 70000)
	os.WriteFile(impossible, append(append([]byte(good.String()), rec...), make([]byte, 70000)...), 0o644)
	// A pcap header naming link type 147 (reserved for private use).
	unknown := filepath.Join(dir, "unknown-linktype.pcap")
	hdr := []byte(good.String()[:24])
	binary.LittleEndian.PutUint32(hdr[20:], 147)
	os.WriteFile(unknown, hdr, 0o644)
	for _, tc := range []struct {
		file    string
		want    []string
		packets int64
	}{
		{cut, []string{"joincap__unexpected_eof_on_second_packet.pcap", "packet 2", "offset"}, 1},
		{garbage, []string{"garbage.pcap", "not a pcap or pcapng file"}, 0},
		{impossible, []string{"impossible.pcap", "packet 2 at offset", "bad record"}, 1},
		{unknown, []string{"unknown-linktype.pcap", "unknown link type"}, 0},
		{filepath.Join(dir, "missing.pcap"), []string{"missing.pcap", "no such file"}, 0},
	} {
		specs, _ := ParseBackends("10.0.0.1")
		res, err := Run([]string{tc.file}, Config{Engine: oneFrontend(0), Backends: specs})
		if err == nil {
			t.Errorf("Run(%s) = nil error", tc.file)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Run(%s) error %q lacks %q", tc.file, err, w)
			}
		}
		if res == nil || res.Counts.Packets != tc.packets {
			t.Errorf("Run(%s): result %v, want %d packets processed before the fault", tc.file, res, tc.packets)
		}
		// Detection (the default) reads the input twice: the first pass
		// must not hide the fault behind "no backend instances".
		res, err = Run([]string{tc.file}, Config{Engine: oneFrontend(0)})
		if err == nil || strings.Contains(err.Error(), "no backend instances") {
			t.Errorf("Run(%s) with detection: error %v, want the fault itself", tc.file, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Run(%s) with detection: error %q lacks %q", tc.file, err, w)
			}
		}
		if res.Counts.Packets > tc.packets {
			t.Errorf("Run(%s) with detection: %d packets, want at most %d", tc.file, res.Counts.Packets, tc.packets)
		}
	}
	// The other inputs issue 12 found hidden: empty, random bytes, text
	// named .pcap, a folder.
	empty := filepath.Join(dir, "empty.pcap")
	os.WriteFile(empty, nil, 0o644)
	random := filepath.Join(dir, "random.pcap")
	os.WriteFile(random, bytes.Repeat([]byte{0x8f, 0x3a, 0x11, 0xc4}, 300), 0o644)
	for _, tc := range []struct{ file, want string }{
		{empty, "the file has 0 bytes"}, {random, "not a pcap or pcapng file"}, {garbage, "not a pcap or pcapng file"}, {dir, "is a directory"},
	} {
		_, err := Run([]string{tc.file}, Config{Engine: oneFrontend(0)})
		var ce *capture.Error
		if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%s) with detection: error %v, want a capture error with %q", tc.file, err, tc.want)
		}
	}
}

// TestReplayStandardInput: "-" reads Config.Stdin, with detection (two
// passes: it is kept in a temporary file) and without (one pass, as it
// streams); the report is the file's, named "standard input".
func TestReplayStandardInput(t *testing.T) {
	path := public + "ndpi__anyconnect-vpn.pcap"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, backends := range []string{"", "10.0.0.227"} {
		specs, _ := ParseBackends(backends)
		want, err := Run([]string{path}, Config{Engine: oneFrontend(8), Backends: specs})
		if err != nil {
			t.Fatal(err)
		}
		got, err := Run([]string{Stdin}, Config{Engine: oneFrontend(8), Backends: specs, Stdin: bytes.NewReader(data)})
		if err != nil {
			t.Fatalf("backends %q: Run(-): %v", backends, err)
		}
		if got.Files[0] != StdinName || got.Counts != want.Counts || !slices.Equal(got.Verdicts(), want.Verdicts()) {
			t.Errorf("backends %q: Run(-) = %v, %+v, %q; want %q, %+v, %q", backends, got.Files, got.Counts, got.Verdicts(), StdinName, want.Counts, want.Verdicts())
		}
	}
	tmp := t.TempDir()
	if _, err := Run([]string{Stdin, Stdin}, Config{Engine: oneFrontend(8), Stdin: bytes.NewReader(data), TempDir: tmp}); err == nil || !strings.Contains(err.Error(), "named twice") {
		t.Errorf("Run(-, -) = %v, want an error", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("refused inputs left %v in the temporary folder: the copy of standard input was kept", left)
	}
}

// TestReplayStop: a closed Config.Stop stops the replay at a record
// boundary: an error matching ErrInterrupted, the packets before it
// replayed, the outside view a whole pcapng file and the events whole
// lines.
func TestReplayStop(t *testing.T) {
	var ps []synthPacket
	for i := range 3000 {
		ps = append(ps, synthPacket{at: time.Duration(i) * time.Millisecond, src: ap(fmt.Sprintf("10.0.0.1:%d", 1024+i)),
			dst: ap("198.51.100.1:443"), proto: reference.TCP, flags: reference.SYN})
	}
	in := synthFile(t, ps)
	for _, workers := range []int{1, 2} {
		for _, backends := range []string{"", "10.0.0.1"} {
			stop := make(chan struct{})
			close(stop)
			out := filepath.Join(t.TempDir(), "out.pcapng")
			var ev bytes.Buffer
			specs, _ := ParseBackends(backends)
			res, err := Run([]string{in}, Config{Engine: oneFrontend(0), Backends: specs, Workers: workers, Output: out, Events: &ev, Stop: stop})
			if !errors.Is(err, ErrInterrupted) {
				t.Fatalf("workers %d, backends %q: Run = %v, want ErrInterrupted", workers, backends, err)
			}
			if backends == "" {
				continue // stopped in the detection pass: nothing replayed
			}
			if res.Counts.Packets == 0 || res.Counts.Packets >= 3000 {
				t.Errorf("workers %d: %d packets replayed, want some, not all", workers, res.Counts.Packets)
			}
			rd, err := capture.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for {
				if _, err := rd.Next(); err != nil {
					if !errors.Is(err, io.EOF) {
						t.Errorf("workers %d: the outside view is not whole: %v", workers, err)
					}
					break
				}
				n++
			}
			rd.Close()
			if int64(n) != res.Counts.Written {
				t.Errorf("workers %d: %d packets in the outside view, want %d", workers, n, res.Counts.Written)
			}
			lines := strings.Split(ev.String(), "\n")
			if lines[len(lines)-1] != "" {
				t.Errorf("workers %d: the events end mid-line", workers)
			}
			for _, l := range lines[:len(lines)-1] {
				if !json.Valid([]byte(l)) {
					t.Errorf("workers %d: event line %q is not JSON", workers, l)
					break
				}
			}
		}
	}
}

// TestReplayOutsideRecordedPackets: a packet addressed to a frontend IP was
// recorded on the outside and goes through the inbound path as it is:
// translated when it matches a flow (B8), dropped otherwise.
func TestReplayOutsideRecordedPackets(t *testing.T) {
	in := synthFile(t, []synthPacket{
		{at: 0, src: ap("10.0.0.1:40000"), dst: ap("198.51.100.10:443"), proto: reference.TCP, flags: reference.SYN},
		{at: time.Millisecond, src: ap("198.51.100.10:443"), dst: ap("203.0.113.1:1024"), proto: reference.TCP, flags: reference.SYN | reference.ACK},
		{at: 2 * time.Millisecond, src: ap("198.51.100.10:443"), dst: ap("203.0.113.1:1025"), proto: reference.TCP, flags: reference.ACK},
	})
	specs, _ := ParseBackends("10.0.0.1")
	res, err := Run([]string{in}, Config{Engine: oneFrontend(0), Backends: specs})
	if err != nil {
		t.Fatal(err)
	}
	if n := res.Counts; n.Replies != 2 || n.Translated != 2 || n.Dropped != 1 || res.Drops["unsolicited"] != 1 {
		t.Errorf("counts %+v drops %v; want the SYN-ACK to 1024 translated and the packet to 1025 unsolicited", n, res.Drops)
	}
}

// TestReplayWorkersGiveTheSameResult: instances own their ports (B5), so
// spreading them over engines changes nothing in the report, the events
// or the outside view.
func TestReplayWorkersGiveTheSameResult(t *testing.T) {
	file := public + "ndpi__anyconnect-vpn.pcap"
	var reports, events []string
	var outs [][]byte
	for _, n := range []int{1, 2, 3} {
		var ev strings.Builder
		out := filepath.Join(t.TempDir(), "out.pcapng")
		specs, _ := ParseBackends("10.0.0.0/24")
		res, err := Run([]string{file}, Config{Engine: oneFrontend(8), Backends: specs, Output: out, Events: &ev, Workers: n})
		if err != nil {
			t.Fatal(err)
		}
		var rep strings.Builder
		if err := WriteText(&rep, res); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		reports, events, outs = append(reports, rep.String()), append(events, ev.String()), append(outs, b)
	}
	if len(strings.Split(reports[0], "\n")) < 10 || !strings.Contains(reports[0], "EXHAUSTED") {
		t.Fatalf("report too thin to compare:\n%s", reports[0])
	}
	for i := 1; i < len(reports); i++ {
		if reports[i] != reports[0] {
			t.Errorf("workers=%d report differs:\n%s\nvs\n%s", i+1, reports[i], reports[0])
		}
		if events[i] != events[0] {
			t.Errorf("workers=%d events differ", i+1)
		}
		if !bytes.Equal(outs[i], outs[0]) {
			t.Errorf("workers=%d outside view differs", i+1)
		}
	}
}

// TestReplayReordersWithinTheWindow: records up to the window out of order
// are replayed in time order; one older than the window stops the replay
// with an error naming both packets, after reporting the ones before.
func TestReplayReordersWithinTheWindow(t *testing.T) {
	syn := func(at time.Duration, port int) synthPacket {
		return synthPacket{at: at, src: ap(fmt.Sprintf("10.0.0.1:%d", port)), dst: ap("198.51.100.1:443"), proto: reference.TCP, flags: reference.SYN}
	}
	specs, _ := ParseBackends("10.0.0.1")
	// Packet 2 is 500 ms older than packet 1: within the 1 s window, so it
	// is replayed first and gets the first SNAT port (C3).
	in := synthFile(t, []synthPacket{syn(time.Second, 1000), syn(500*time.Millisecond, 1001), syn(2*time.Second, 1002)})
	var ev strings.Builder
	res, err := Run([]string{in}, Config{Engine: oneFrontend(8), Backends: specs, Events: &ev})
	if err != nil || res.Counts.Translated != 3 {
		t.Fatalf("Run: %v, %+v", err, res.Counts)
	}
	first := strings.Split(ev.String(), "\n")[0]
	if !strings.Contains(first, `"packet":2`) || !strings.Contains(first, `"snat":"203.0.113.1:1024"`) {
		t.Errorf("first event %s, want packet 2 on the first SNAT port", first)
	}
	// Packet 3 is 1.5 s older than packet 2: beyond the window.
	in = synthFile(t, []synthPacket{syn(0, 1000), syn(2*time.Second, 1001), syn(500*time.Millisecond, 1002)})
	res, err = Run([]string{in}, Config{Engine: oneFrontend(8), Backends: specs})
	var oe *capture.OrderError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "packet 3") || !strings.Contains(err.Error(), "packet 2") {
		t.Fatalf("Run = %v, want an order error naming packets 3 and 2", err)
	}
	if res.Counts.Packets != 2 {
		t.Errorf("%d packets reported before the fault, want 2", res.Counts.Packets)
	}
}

// TestReplayLongGap: a gap longer than every timer (a spliced capture) is
// just time passing: the flow before it idles out (B12), the flow after it
// gets the same port again (C4).
func TestReplayLongGap(t *testing.T) {
	in := synthFile(t, []synthPacket{
		{at: 0, src: ap("10.0.0.1:1000"), dst: ap("198.51.100.1:443"), proto: reference.TCP, flags: reference.SYN},
		{at: 30 * 24 * time.Hour, src: ap("10.0.0.1:1001"), dst: ap("198.51.100.1:443"), proto: reference.TCP, flags: reference.SYN},
	})
	specs, _ := ParseBackends("10.0.0.1")
	var ev strings.Builder
	res, err := Run([]string{in}, Config{Engine: oneFrontend(8), Backends: specs, Events: &ev})
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts.Translated != 2 || res.Instances[0].Releases.Idle != 1 || res.Instances[0].Peak != 1 {
		t.Errorf("counts %+v, instance %+v; want both translated, one idle release, peak 1", res.Counts, res.Instances[0])
	}
	if !strings.Contains(ev.String(), `"release":"idle"`) || strings.Count(ev.String(), `"snat":"203.0.113.1:1024"`) != 3 {
		t.Errorf("events:\n%s\nwant the first flow released idle and both flows on 203.0.113.1:1024", ev.String())
	}
}

// TestReplayStopsAtATimeTheEngineRefuses: a pcapng whose last packet
// carries a time past the year 2262 (its 64-bit microseconds allow it; the
// engine's nanosecond clock does not) stops the replay at that packet with
// an error naming the file and the packet, after the ones before it. (An
// earlier packet would be caught first by the re-ordering window: the next
// one would be centuries older.)
func TestReplayStopsAtATimeTheEngineRefuses(t *testing.T) {
	b, err := os.ReadFile(public + "chrissanders__ip_frag_source.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	// The sixth and last enhanced packet block starts at byte 6856; its
	// timestamp (microseconds, high word then low word) follows the block
	// type, length and interface ID.
	const epb6 = 6856
	if binary.LittleEndian.Uint32(b[epb6:]) != 6 {
		t.Fatal("byte 6856 is not an enhanced packet block")
	}
	far := uint64(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()) * 1e6
	binary.LittleEndian.PutUint32(b[epb6+12:], uint32(far>>32))
	binary.LittleEndian.PutUint32(b[epb6+16:], uint32(far))
	path := filepath.Join(t.TempDir(), "far-future.pcapng")
	os.WriteFile(path, b, 0o644)
	specs, _ := ParseBackends("10.10.0.3")
	res, err := Run([]string{path}, Config{Engine: oneFrontend(0), Backends: specs, Workers: 1, ReorderWindow: time.Second})
	if err == nil || !strings.Contains(err.Error(), "far-future.pcapng packet 6") || !errors.Is(err, reference.ErrTimeOutOfRange) {
		t.Fatalf("Run = %v, want ErrTimeOutOfRange naming the file and packet 6", err)
	}
	if res.Counts.Packets != 5 || res.Counts.Fragments != 5 {
		t.Errorf("counts %+v, want the 5 fragments before the refused packet replayed", res.Counts)
	}
}

// TestReplayStopsWhenOutputFails: when the outside view cannot be written
// (a full disk: /dev/full), the replay stops reading there and says why.
func TestReplayStopsWhenOutputFails(t *testing.T) {
	var pk []synthPacket
	for i := range 20000 {
		pk = append(pk, synthPacket{at: time.Duration(i) * time.Microsecond, src: ap(fmt.Sprintf("10.0.0.%d:%d", 1+i%2, 1024+i%30000)),
			dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 443), proto: reference.TCP, flags: reference.SYN})
	}
	in := synthFile(t, pk)
	specs, _ := ParseBackends("10.0.0.1,10.0.0.2")
	for _, workers := range []int{1, 2} { // synchronous, and a pipeline
		res, err := Run([]string{in}, Config{Engine: oneFrontend(0), Backends: specs, Output: "/dev/full", Workers: workers})
		if err == nil || !strings.Contains(err.Error(), "no space left on device") {
			t.Fatalf("workers=%d: Run = %v, want the write error", workers, err)
		}
		if workers == 1 && res.Counts.Packets >= int64(len(pk)) {
			t.Errorf("workers=%d: read all %d packets after the output failed", workers, res.Counts.Packets)
		}
	}
}

// TestWritePlot: the usage plot is written as PNG or SVG by extension, and
// names the instances it draws and their allocation; other extensions are
// refused.
func TestWritePlot(t *testing.T) {
	specs, _ := ParseBackends("10.0.0.227")
	res, err := Run([]string{public + "ndpi__anyconnect-vpn.pcap"}, Config{Engine: oneFrontend(8), Backends: specs})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	svg := filepath.Join(dir, "usage.svg")
	if err := WritePlot(svg, res); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(svg)
	for _, want := range []string{"<svg", "instance 0 (10.0.0.227) udp: 8 refused", "allocation per instance: 8 ports", "SNAT ports in use: ndpi__anyconnect-vpn.pcap",
		"first refused flow (B9)", "time since the first packet, 2019-"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the SVG plot lacks %q", want)
		}
	}
	if err := WritePlot(filepath.Join(dir, "usage.gif"), res); err == nil || !strings.Contains(err.Error(), "usage.gif") {
		t.Errorf("WritePlot(.gif) = %v, want an error naming the file", err)
	}
}

// TestReplayManyFlowsSameForAnyWorkers: past warmFlows live flows the
// engine is warmed a batch ahead (one worker: the ingest takes records
// ahead of their turn; several: each worker warms its batch); the report,
// the JSON, the events and the outside view stay the same, byte for byte,
// for 1, 2 and 3 workers, on a busy-subnet capture of 100,000 flows in
// random order.
func TestReplayManyFlowsSameForAnyWorkers(t *testing.T) {
	c := pcapgen.Issue11()
	c.Packets, c.Flows, c.Hosts = 500_000, 140_000, 2_000
	path := filepath.Join(t.TempDir(), "busy.pcap")
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	var want [4]string
	for _, n := range []int{1, 2, 3} {
		var ev strings.Builder
		out := filepath.Join(t.TempDir(), "out.pcapng")
		res, err := Run([]string{path}, busyConfig(out, n, &ev))
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 && res.Counts.Translated < 450_000 {
			t.Fatalf("only %d packets translated: %+v", res.Counts.Translated, res.Counts)
		}
		var rep, js strings.Builder
		if err := WriteText(&rep, res); err != nil {
			t.Fatal(err)
		}
		if err := WriteJSON(&js, res); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		got := [4]string{rep.String(), js.String(), ev.String(), string(b)}
		if n == 1 {
			want = got
			continue
		}
		for i, what := range []string{"report", "JSON", "events", "outside view"} {
			if got[i] != want[i] {
				t.Errorf("workers=%d: the %s differs from one worker's", n, what)
			}
		}
	}
}
