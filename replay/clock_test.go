package replay

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/natcheck/natcheck/internal/pcapgen"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/replay/frame"
)

// quietCapture is a capture in which instances go quiet while others, and
// traffic that does not cross the NAT, go on: the shape that made timers
// depend on the worker count. Instance 0 opens an established flow and
// falls silent (idle expiry at 4 min 0.002 s, with B14 RSTs); its server
// sends one late packet at 5 min (answered with a RST, C7). Instance 1
// sends a FIN at 1 s (released at 241 s, B10); instance 2 a RST at 2 s
// (released at 17 s, B11). Instance 3 keeps a UDP mapping alive every 10 s
// until 9 min 53 s, and private traffic that does not cross the NAT runs on to
// 12 min: the clock must reach the end (C9).
func quietCapture(t *testing.T) string {
	t.Helper()
	const s1, s2, s3, s4 = "198.51.100.1:443", "198.51.100.2:443", "198.51.100.3:443", "198.51.100.4:53"
	tcp, udp := reference.TCP, reference.UDP
	ps := []synthPacket{
		{at: 0, src: ap("10.0.0.1:1000"), dst: ap(s1), proto: tcp, flags: reference.SYN},
		{at: time.Millisecond, src: ap(s1), dst: ap("10.0.0.1:1000"), proto: tcp, flags: reference.SYN | reference.ACK},
		{at: 2 * time.Millisecond, src: ap("10.0.0.1:1000"), dst: ap(s1), proto: tcp, flags: reference.ACK},
		{at: time.Second, src: ap("10.0.0.2:2000"), dst: ap(s2), proto: tcp, flags: reference.FIN | reference.ACK},
		{at: 2 * time.Second, src: ap("10.0.0.3:3000"), dst: ap(s3), proto: tcp, flags: reference.RST},
		{at: 5 * time.Minute, src: ap(s1), dst: ap("10.0.0.1:1000"), proto: tcp, flags: reference.ACK | reference.PSH},
	}
	for at := 3 * time.Second; at <= 10*time.Minute; at += 10 * time.Second {
		ps = append(ps, synthPacket{at: at, src: ap("10.0.0.4:4000"), dst: ap(s4), proto: udp})
	}
	for at := 10*time.Minute + 30*time.Second; at <= 12*time.Minute; at += 30 * time.Second {
		ps = append(ps, synthPacket{at: at, src: ap("10.1.0.1:5000"), dst: ap("10.1.0.2:5000"), proto: udp})
	}
	slices.SortStableFunc(ps, func(a, b synthPacket) int { return cmp.Compare(a.at, b.at) })
	return synthFile(t, ps)
}

// outputs are everything a replay writes, for byte comparison.
type outputs struct {
	err            string
	text, json, ev string
	pcapng         []byte
	samples        []Sample
	res            *Result
}

func replayAll(t *testing.T, files []string, cfg Config) outputs {
	t.Helper()
	var ev strings.Builder
	cfg.Events = &ev
	cfg.Output = filepath.Join(t.TempDir(), "out.pcapng")
	res, err := Run(files, cfg)
	var o outputs
	if err != nil {
		o.err = err.Error()
	}
	var text, js strings.Builder
	if err := WriteText(&text, res); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	o.text, o.json, o.ev, o.res, o.samples = text.String(), js.String(), ev.String(), res, res.Samples
	o.pcapng, _ = os.ReadFile(cfg.Output)
	return o
}

// sameForAnyWorkers replays files with 1, 2, 3 and 8 workers and fails on
// the first output that differs from one worker's; it returns those.
func sameForAnyWorkers(t *testing.T, files []string, cfg Config) outputs {
	t.Helper()
	cfg.Workers = 1
	want := replayAll(t, files, cfg)
	for _, n := range []int{2, 3, 8} {
		cfg.Workers = n
		got := replayAll(t, files, cfg)
		for _, c := range []struct {
			what      string
			got, want string
		}{{"error", got.err, want.err}, {"report", got.text, want.text}, {"JSON", got.json, want.json}, {"events", got.ev, want.ev}} {
			if c.got != c.want {
				t.Errorf("--workers %d: %s differs from --workers 1:\n%s", n, c.what, firstDiff(c.got, c.want))
			}
		}
		if !bytes.Equal(got.pcapng, want.pcapng) {
			t.Errorf("--workers %d: outside view differs from --workers 1 (%d vs %d bytes)", n, len(got.pcapng), len(want.pcapng))
		}
		if !reflect.DeepEqual(got.samples, want.samples) {
			t.Errorf("--workers %d: plot samples differ from --workers 1 (%d vs %d points)", n, len(got.samples), len(want.samples))
		}
	}
	return want
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n got %s\nwant %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("%d lines vs %d", len(al), len(bl))
}

// TestC9QuietInstancesOneClock: on a capture where instances go quiet,
// every timer fires at its exact time whatever the worker count, B14 RSTs
// are written in time order, the clock stops at the last record (the
// UDP mapping last refreshed at 9 min 53 s is in use at 12 min), and
// --drain runs it on to that mapping's release at 13 min 53 s.
func TestC9QuietInstancesOneClock(t *testing.T) {
	in := quietCapture(t)
	specs, _ := ParseBackends("10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4")
	cfg := Config{Engine: oneFrontend(0), Backends: specs}
	cfg.Engine.TCPResetOnIdle = true
	for _, drain := range []bool{false, true} {
		cfg.Drain = drain
		o := sameForAnyWorkers(t, []string{in}, cfg)
		if o.err != "" {
			t.Fatal(o.err)
		}
		res := o.res
		type rel struct{ fin, rst, idle, inUse uint64 }
		got := map[string]rel{}
		for _, ir := range res.Instances {
			got[ir.Inside.String()+" "+ir.Proto] = rel{ir.Releases.FIN, ir.Releases.RST, ir.Releases.Idle, uint64(ir.InUse)}
		}
		want := map[string]rel{
			"10.0.0.1 tcp": {0, 0, 1, 0}, // B12 at 4 min 0.002 s
			"10.0.0.2 tcp": {1, 0, 0, 0}, // B10 at 241 s
			"10.0.0.3 tcp": {0, 1, 0, 0}, // B11 at 17 s
			"10.0.0.4 udp": {0, 0, 0, 1}, // live at the end (12 min)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("drain %v: releases and ports in use at the end %v, want %v", drain, got, want)
		}
		if !res.End.Equal(synthT0.Add(12 * time.Minute)) {
			t.Errorf("end %v, want the last record's time", res.End)
		}
		if n := res.Counts; n.Reset != 1 || n.Emitted != 3 {
			t.Errorf("counts %+v: want the late server packet answered with a RST (C7) and 3 packets sent by the NAT", n)
		}
		for _, want := range []string{
			`"time":"2026-03-01T12:04:00.002Z","kind":"reset-sent","behavior":"B14","instance":0`,
			`"time":"2026-03-01T12:04:01Z","kind":"released","behavior":"B10","instance":1`,
			`"time":"2026-03-01T12:00:17Z","kind":"released","behavior":"B11","instance":2`,
		} {
			if !strings.Contains(o.ev, want) {
				t.Errorf("events lack %s", want)
			}
		}
		// The outside view is in time order, with the B14 RST toward the
		// server at the expiry and the C7 answer at 5 min.
		var rsts []time.Duration
		last := time.Time{}
		recs := readOutside(t, o.pcapng)
		for _, r := range recs {
			if r.Time.Before(last) {
				t.Fatalf("outside view leaves time order at %v after %v", r.Time, last)
			}
			last = r.Time
			var f frame.Frame
			if frame.Decode(r.LinkType, r.Data, &f) == nil && r.LinkType == layers.LinkTypeRaw && f.Flags&reference.RST != 0 && f.Src == netip.MustParseAddr("203.0.113.1") {
				rsts = append(rsts, r.Time.Sub(synthT0))
			}
		}
		if fmt.Sprint(rsts) != "[4m0.002s 5m0s]" {
			t.Errorf("RSTs the NAT sent toward servers at %v, want [4m0.002s 5m0s]", rsts)
		}
		if !drain {
			if res.Drained != nil {
				t.Errorf("drained %+v without --drain", res.Drained)
			}
			continue
		}
		if d := res.Drained; d == nil || d.Releases != (ReleaseCount{Idle: 1}) || !d.Until.Equal(synthT0.Add(13*time.Minute+53*time.Second)) {
			t.Errorf("drained %+v, want the UDP mapping idle-released at 13 min 53 s", d)
		}
	}
}

// TestC9PublicCapturesAnyWorkers: every public capture, with instances
// detected and with every private address an instance of 8 ports (so
// instances run out), gives byte-identical outputs for 1, 2, 3 and 8
// workers, and so do merged captures.
func TestC9PublicCapturesAnyWorkers(t *testing.T) {
	entries, err := os.ReadDir(public)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".pcap") || strings.HasSuffix(n, ".pcapng") {
			files = append(files, public+n)
		}
	}
	if len(files) < 16 {
		t.Fatalf("%d public captures, want 16", len(files))
	}
	private, _ := ParseBackends("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8")
	cases := [][]string{
		{public + "ndpi__anyconnect-vpn.pcap", public + "ndpi__quic_interop_V.pcapng"},
		{public + "ndpi__anyconnect-vpn.pcap", public + "pcapplusplus__sll-any-device.pcap", public + "pcapplusplus__many_interfaces-1.pcapng"},
	}
	for _, f := range files {
		cases = append(cases, []string{f})
	}
	for _, in := range cases {
		name := strings.ReplaceAll(strings.Join(in, "+"), public, "")
		t.Run(name, func(t *testing.T) {
			for _, c := range []Config{
				{Engine: oneFrontend(0), Drain: true},
				{Engine: oneFrontend(8), Backends: private},
			} {
				c.Engine.TCPResetOnIdle = true
				sameForAnyWorkers(t, in, c)
			}
		})
	}
	// The merge the issue names: anyconnect's instance goes quiet while
	// the QUIC capture runs; its releases must not depend on the workers.
	o := sameForAnyWorkers(t, cases[0], Config{Engine: oneFrontend(0)})
	for _, ir := range o.res.Instances {
		if ir.Inside.String() == "10.0.0.227" && ir.Proto == "tcp" && ir.Releases != (ReleaseCount{FIN: 6, RST: 1, Idle: 9}) {
			t.Errorf("anyconnect + quic_interop: 10.0.0.227 TCP releases %+v, want FIN/RST/idle 6/1/9", ir.Releases)
		}
	}
}

// TestMalformedHeaderIsADrop: a TCP header cut to 12 of its 20 bytes is
// dropped as malformed by the NAT, with an event and a line in the report,
// as is a frame whose IPv4 header is cut (before any NAT can see it).
func TestMalformedHeaderIsADrop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cut.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	pw := pcapgo.NewWriterNanos(f)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	for i, cut := range []int{0, 14 + 20 + 12, 14 + 10} {
		p := synthPacket{at: time.Duration(i) * time.Second, src: ap(fmt.Sprintf("10.0.0.1:%d", 1000+i)), dst: ap("198.51.100.1:443"),
			proto: reference.TCP, flags: reference.SYN}.packet()
		data, err := pcapgen.Frame(buf, p, []byte("natcheck-payload"))
		if err != nil {
			t.Fatal(err)
		}
		n := len(data)
		if cut > 0 {
			n = cut
		}
		if err := pw.WritePacket(gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: n, Length: len(data)}, data[:n]); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	specs, _ := ParseBackends("10.0.0.1")
	o := sameForAnyWorkers(t, []string{path}, Config{Engine: oneFrontend(0), Backends: specs})
	if o.err != "" {
		t.Fatal(o.err)
	}
	if d := o.res.Drops["malformed"]; d != 2 || o.res.Counts.Translated != 1 || o.res.Counts.Dropped != 1 || o.res.Counts.Cut != 1 {
		t.Errorf("drops %v counts %+v: want 2 malformed (one by the NAT, one unreadable), 1 translated", o.res.Drops, o.res.Counts)
	}
	if n := strings.Count(o.ev, `"drop":"malformed"`); n != 2 || !strings.Contains(o.ev, `"packet":2,`) || !strings.Contains(o.ev, `"packet":3,`) {
		t.Errorf("events:\n%s\nwant a malformed drop for packets 2 and 3", o.ev)
	}
	if !strings.Contains(o.text, "malformed") {
		t.Errorf("report has no malformed line:\n%s", o.text)
	}
}

// readOutside reads an outside view back.
func readOutside(t *testing.T, b []byte) []capture.Record {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outside.pcapng")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rd, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var recs []capture.Record
	for {
		rec, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			return recs
		}
		rec.Data = append([]byte(nil), rec.Data...)
		recs = append(recs, rec)
	}
}

// TestC8ReplyOfAFlowBeforeTheCapture: a recorded reply whose flow began
// before the capture has no SNAT endpoint: it is dropped as unsolicited
// (B8) and counted apart; once the instance sends on that flow (a
// mid-stream pick-up, C5), the next reply is translated.
func TestC8ReplyOfAFlowBeforeTheCapture(t *testing.T) {
	in := synthFile(t, []synthPacket{
		{at: 0, src: ap("198.51.100.1:443"), dst: ap("10.0.0.1:1000"), proto: reference.TCP, flags: reference.ACK | reference.PSH},
		{at: time.Millisecond, src: ap("10.0.0.1:1000"), dst: ap("198.51.100.1:443"), proto: reference.TCP, flags: reference.ACK},
		{at: 2 * time.Millisecond, src: ap("198.51.100.1:443"), dst: ap("10.0.0.1:1000"), proto: reference.TCP, flags: reference.ACK | reference.PSH},
	})
	specs, _ := ParseBackends("10.0.0.1")
	o := sameForAnyWorkers(t, []string{in}, Config{Engine: oneFrontend(0), Backends: specs})
	n := o.res.Counts
	if n.RepliesNoFlow != 1 || n.Dropped != 1 || n.Translated != 2 || o.res.Drops["unsolicited"] != 1 {
		t.Errorf("counts %+v drops %v: want the first reply dropped as unsolicited and counted without a flow, the rest translated", n, o.res.Drops)
	}
	if !strings.Contains(o.text, "1 with no flow: B8") {
		t.Errorf("report does not count the reply apart:\n%s", o.text)
	}
}
