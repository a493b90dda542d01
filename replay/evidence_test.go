package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/replay/frame"
)

// outFrame is one frame of an output capture, read back.
type outFrame struct {
	side     string // "inside" or "outside", from its interface's name
	src, dst string
	comment  string
	time     string
}

// readFrames reads an output capture back: its frames, numbered from 1
// as Wireshark numbers them (index 0 is unused).
func readFrames(t *testing.T, path string) []outFrame {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ng, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err := ng.ReadPacketData(); err != nil {
			break // every interface is declared by then
		}
	}
	names := map[int]string{}
	for i := range ng.NInterfaces() {
		ifc, _ := ng.Interface(i)
		names[i] = ifc.Name
	}
	rd, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	frames := []outFrame{{}}
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return frames
		}
		if err != nil {
			t.Fatal(err)
		}
		fr := outFrame{side: strings.Split(names[rec.Interface], "-")[1], time: rec.Time.Format("2006-01-02T15:04:05.999999999Z07:00")}
		var f frame.Frame
		if frame.Decode(rec.LinkType, rec.Data, &f) == nil || f.Src.IsValid() {
			fr.src, fr.dst = f.Src.String(), f.Dst.String()
			if f.HasPorts() {
				fr.src += ":" + strconv.Itoa(int(f.SrcPort))
				fr.dst += ":" + strconv.Itoa(int(f.DstPort))
			}
		}
		if len(rec.Comments) > 0 {
			fr.comment = rec.Comments[0]
		}
		frames = append(frames, fr)
	}
}

type eventLine struct {
	File     string `json:"file"`
	Packet   int64  `json:"packet"`
	Frame    int64  `json:"frame"`
	Time     string `json:"time"`
	Kind     string `json:"kind"`
	Behavior string `json:"behavior"`
	Inside   string `json:"inside"`
	Remote   string `json:"remote"`
	SNAT     string `json:"snat"`
	Drop     string `json:"drop"`
}

func readEvents(t *testing.T, b []byte) []eventLine {
	t.Helper()
	var out []eventLine
	for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var e eventLine
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatalf("event %q: %v", l, err)
		}
		out = append(out, e)
	}
	return out
}

// TestEvidenceBothSides: with BothSides the output capture tells the
// whole story: each translated outbound packet as recorded (inside, from
// the instance) then as translated (outside, from the SNAT endpoint);
// each packet the NAT dropped, as recorded, with its reason and behaviour
// ID in a comment (the eight B9 refusals of the capture); the events name
// the input file and packet and the packet's frame, whose time and
// addresses are the event's. The outputs are byte-identical for 1, 2, 3
// and 8 workers.
func TestEvidenceBothSides(t *testing.T) {
	file := public + "ndpi__anyconnect-vpn.pcap"
	var first, firstEv []byte
	for _, workers := range []int{1, 2, 3, 8} {
		out := filepath.Join(t.TempDir(), "both.pcapng")
		var ev bytes.Buffer
		specs, _ := ParseBackends("10.0.0.227")
		res, err := Run([]string{file}, Config{Engine: oneFrontend(8), Backends: specs, Output: out, Events: &ev, BothSides: true, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(out)
		if first == nil {
			first, firstEv = b, ev.Bytes()
		} else {
			if !bytes.Equal(b, first) {
				t.Errorf("workers %d: the two-sided capture differs from one worker's", workers)
			}
			if !bytes.Equal(ev.Bytes(), firstEv) {
				t.Errorf("workers %d: the events differ from one worker's", workers)
			}
			continue
		}
		frames := readFrames(t, out)
		if int64(len(frames)-1) != res.Counts.Written {
			t.Fatalf("%d frames, Written %d", len(frames)-1, res.Counts.Written)
		}
		// Frames: every packet through the NAT shows at least once;
		// translated ones twice.
		if want := res.Counts.Translated*2 + res.Counts.Dropped + res.Counts.Reset + res.Counts.Emitted; int64(len(frames)-1) < want-res.Counts.Emitted {
			t.Errorf("%d frames, want at least %d (translated twice, the rest once)", len(frames)-1, want)
		}
		refused := 0
		for i, f := range frames[1:] {
			if strings.Contains(f.comment, "dropped by the NAT: exhausted (B9: exhaustion)") {
				refused++
				if f.side != "inside" || !strings.HasPrefix(f.src, "10.0.0.227:") {
					t.Errorf("frame %d: a refused flow's packet on the %s side from %s; want the inside, as recorded", i+1, f.side, f.src)
				}
			}
			if strings.HasPrefix(f.comment, "translated: frame ") {
				next := frames[i+2]
				if f.side != "inside" || next.side != "outside" || !strings.HasPrefix(next.src, "203.0.113.1:") || f.dst != next.dst {
					t.Errorf("frame %d (%s %s->%s) then %d (%s %s->%s): want the inside packet then its translation", i+1, f.side, f.src, f.dst, i+2, next.side, next.src, next.dst)
				}
			}
		}
		if refused != 8 {
			t.Errorf("%d frames show a B9 refusal, want 8", refused)
		}
		events := readEvents(t, ev.Bytes())
		framed := 0
		for _, e := range events {
			if e.Packet == 0 {
				continue
			}
			if e.File != "ndpi__anyconnect-vpn.pcap" {
				t.Errorf("event of packet %d names file %q", e.Packet, e.File)
			}
			if e.Frame <= 0 || e.Frame >= int64(len(frames)) {
				if e.Kind != "dropped" || !strings.Contains(e.Drop, "no-instance") {
					t.Errorf("event %+v names no frame of the capture", e)
				}
				continue
			}
			framed++
			f := frames[e.Frame]
			if f.time != e.Time {
				t.Errorf("event %+v: frame %d is at %s", e, e.Frame, f.time)
			}
			if e.Kind == "exhausted" && (!strings.Contains(f.comment, "(B9: exhaustion)") || f.src != e.Inside) {
				t.Errorf("exhaustion event %+v: frame %d is %+v", e, e.Frame, f)
			}
			if e.Kind == "mapping-created" && (frames[e.Frame+1].src != e.SNAT || f.src != e.Inside) {
				t.Errorf("event %+v: frames %d and %d are %+v, %+v", e, e.Frame, e.Frame+1, f, frames[e.Frame+1])
			}
		}
		if framed < 30 {
			t.Errorf("%d events name a frame, want the flows' and refusals' at least", framed)
		}
	}
}

// TestEvidenceEventsNameFileAndFrame: without BothSides (the outside view),
// the events of merged inputs name their file, and a translated packet's
// events name its frame, whose comment is the mapping event.
func TestEvidenceEventsNameFileAndFrame(t *testing.T) {
	a, b := public+"ndpi__anyconnect-vpn.pcap", public+"zeek__openjdk-zeek.org-sll2.pcap"
	out := filepath.Join(t.TempDir(), "out.pcapng")
	var ev bytes.Buffer
	res, err := Run([]string{a, b}, Config{Engine: oneFrontend(0), Output: out, Events: &ev, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	frames := readFrames(t, out)
	files := map[string]int{}
	for _, e := range readEvents(t, ev.Bytes()) {
		if e.Packet == 0 {
			continue
		}
		files[e.File]++
		if e.Kind == "mapping-created" {
			f := frames[e.Frame]
			if f.side != "outside" || f.src != e.SNAT || !strings.Contains(f.comment, e.Behavior+" mapping-created") || f.time != e.Time {
				t.Errorf("event %+v: frame %d is %+v", e, e.Frame, f)
			}
		}
	}
	if files["ndpi__anyconnect-vpn.pcap"] == 0 || files["zeek__openjdk-zeek.org-sll2.pcap"] == 0 || len(files) != 2 {
		t.Errorf("events name the files %v, want both inputs", files)
	}
	if res.Counts.Written != int64(len(frames)-1) {
		t.Errorf("Written %d, %d frames", res.Counts.Written, len(frames)-1)
	}
}

// TestEvidenceB14RSTs: the RSTs the NAT sends at idle expiry (B14) have an
// event line naming their frame in the outside view.
func TestEvidenceB14RSTs(t *testing.T) {
	in := synthFile(t, []synthPacket{
		{at: 0, src: ap("10.0.0.1:40000"), dst: ap("198.51.100.10:443"), proto: reference.TCP, flags: reference.SYN},
		{at: 1e6, src: ap("198.51.100.10:443"), dst: ap("10.0.0.1:40000"), proto: reference.TCP, flags: reference.SYN | reference.ACK},
		{at: 2e6, src: ap("10.0.0.1:40000"), dst: ap("198.51.100.10:443"), proto: reference.TCP, flags: reference.ACK},
		{at: 300e9, src: ap("10.0.0.1:40001"), dst: ap("198.51.100.11:443"), proto: reference.TCP, flags: reference.SYN},
	})
	out := filepath.Join(t.TempDir(), "out.pcapng")
	var ev bytes.Buffer
	specs, _ := ParseBackends("10.0.0.1")
	cfg := oneFrontend(0)
	cfg.TCPResetOnIdle = true
	if _, err := Run([]string{in}, Config{Engine: cfg, Backends: specs, Output: out, Events: &ev}); err != nil {
		t.Fatal(err)
	}
	frames := readFrames(t, out)
	found := false
	for _, e := range readEvents(t, ev.Bytes()) {
		if e.Kind == "reset-sent" {
			found = true
			if e.Frame <= 0 || e.Frame >= int64(len(frames)) || !strings.Contains(frames[e.Frame].comment, "B14 RST") {
				t.Errorf("B14 event %+v names frame %d of %d", e, e.Frame, len(frames)-1)
			}
		}
	}
	if !found {
		t.Errorf("no reset-sent event:\n%s", ev.String())
	}
}
