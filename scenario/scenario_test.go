package scenario

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/regress"
	"github.com/natcheck/natcheck/replay"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/replay/frame"
)

// observed is what a replay of a scenario did, read back from its events
// file and outside view only: per packet its events, the timer events,
// and the outside view's packets by time.
type observed struct {
	byPacket map[int][]event
	timers   []event
	outside  map[time.Time][]outsidePacket
}

type event struct {
	Packet  int       `json:"packet"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Inside  string    `json:"inside"`
	Release string    `json:"release"`
	Drop    string    `json:"drop"`
}

type outsidePacket struct {
	src, dst netip.AddrPort
	natRST   bool // a RST the NAT sent itself (B14)
}

// replayScenario replays s's capture with its setup, on the engine of
// profile p (the zero Profile: azure-lb), and reads back what came out.
func replayScenario(t *testing.T, s *Scenario, p reference.Profile) observed {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pcap"), filepath.Join(dir, "out.pcapng")
	f, _ := os.Create(in)
	if err := s.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg, err := s.Setup.Config()
	if err != nil {
		t.Fatal(err)
	}
	var ev bytes.Buffer
	cfg.Engine.Profile, cfg.Events, cfg.Output = p, &ev, out
	if _, err := replay.Run([]string{in}, cfg); err != nil {
		t.Fatalf("%s: %v", s.Name, err)
	}
	o := observed{byPacket: map[int][]event{}, outside: map[time.Time][]outsidePacket{}}
	sc := bufio.NewScanner(&ev)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e.Packet == 0 {
			o.timers = append(o.timers, e)
		} else {
			o.byPacket[e.Packet] = append(o.byPacket[e.Packet], e)
		}
	}
	rd, err := capture.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var fr frame.Frame
		if err := frame.Decode(rec.LinkType, rec.Data, &fr); err != nil {
			t.Fatal(err)
		}
		tu := fr.Tuple()
		op := outsidePacket{src: tu.Src, dst: tu.Dst, natRST: len(rec.Comments) > 0 && strings.HasPrefix(rec.Comments[0], "B14 RST")}
		o.outside[rec.Time] = append(o.outside[rec.Time], op)
	}
	return o
}

// snatOf returns the SNAT endpoint packet n was translated with: the
// source of an outbound packet on the outside, the destination of an
// inbound one.
func (o observed) snatOf(b Built, n int) (netip.AddrPort, bool) {
	p := b.Packets[n-1]
	for _, op := range o.outside[p.Time] {
		if op.natRST {
			continue
		}
		if p.Dir == reference.Outbound {
			return op.src, true
		}
		return op.dst, true
	}
	return netip.AddrPort{}, false
}

// check returns every claim of s that the observed replay breaks, one
// line each.
func check(s *Scenario, b Built, o observed) []string {
	var bad []string
	fail := func(format string, args ...any) { bad = append(bad, s.Name+": "+fmt.Sprintf(format, args...)) }
	for _, c := range b.Claims {
		evs := o.byPacket[c.Packet]
		has := func(kind, drop string) bool {
			for _, e := range evs {
				if e.Kind == kind && (drop == "" || e.Drop == drop) {
					return true
				}
			}
			return false
		}
		snat, translated := o.snatOf(b, c.Packet)
		ok := false
		switch {
		case c.Verdict == "translated", c.Verdict == "opened":
			opened := has("mapping-created", "") || has("mapping-reused", "") || has("picked-up", "")
			ok = translated && opened == (c.Verdict == "opened") && !has("exhausted", "") && !has("dropped", "") && !has("reset-sent", "")
		case c.Verdict == "exhausted":
			ok = has("exhausted", "") && !translated
		case c.Verdict == "reset":
			ok = has("reset-sent", "") && !translated
		case strings.HasPrefix(c.Verdict, "dropped:"):
			ok = has("dropped", strings.TrimPrefix(c.Verdict, "dropped:")) && !translated
		default:
			fail("packet %d: unknown verdict %q", c.Packet, c.Verdict)
			continue
		}
		if !ok {
			fail("packet %d: want %s (%s: %s); events %+v, on the outside %v", c.Packet, c.Verdict, c.Behavior, c.Why, evs, translated)
			continue
		}
		if c.SamePortAs != 0 {
			if other, ok := o.snatOf(b, c.SamePortAs); !ok || other != snat {
				fail("packet %d: SNAT %v, want packet %d's, %v (%s: %s)", c.Packet, snat, c.SamePortAs, other, c.Behavior, c.Why)
			}
		}
		if c.OtherPortThan != 0 {
			if other, ok := o.snatOf(b, c.OtherPortThan); !ok || other == snat {
				fail("packet %d: SNAT %v, want another than packet %d's (%s: %s)", c.Packet, snat, c.OtherPortThan, c.Behavior, c.Why)
			}
		}
	}
	for _, c := range b.Events {
		at := b.Start.Add(c.At)
		found := false
		for _, e := range o.timers {
			if e.Time.Equal(at) && e.Kind == c.Kind && e.Release == c.Release && e.Inside == c.Inside.String() {
				found = true
			}
		}
		if found == c.Absent {
			fail("at +%v: %s %s of %v: want present=%v (%s: %s); timer events %+v", c.At, c.Kind, c.Release, c.Inside, !c.Absent, c.Behavior, c.Why, o.timers)
		}
	}
	return bad
}

// TestClaims: every scenario, replayed with its setup, does to each
// packet what its claims say (SEMANTICS.md, by hand), seen only through
// the events file and the outside view.
func TestClaims(t *testing.T) {
	for _, s := range All() {
		b := s.Build()
		if len(b.Claims) < 3 {
			t.Errorf("%s: %d claims, want a scenario that shows something", s.Name, len(b.Claims))
		}
		for _, line := range check(s, b, replayScenario(t, s, reference.Profile{})) {
			t.Error(line)
		}
	}
}

// TestClaimsFailOnBrokenEngines: each timer and quota scenario's claims
// fail on an engine whose profile breaks the behaviour it shows: a RST
// hold of 14 s or 16 s, a FIN hold of 239 s, a default idle timeout of
// 5 minutes, 1,032 ports in the smallest tier.
func TestClaimsFailOnBrokenEngines(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		mutate   func(*reference.Profile)
	}{
		{"azure-lb-rst-15s", func(p *reference.Profile) { p.RSTHold = 14 * time.Second }},
		{"azure-lb-rst-15s", func(p *reference.Profile) { p.RSTHold = 16 * time.Second }},
		{"azure-lb-unsolicited-inbound", func(p *reference.Profile) { p.RSTHold = 15*time.Second + time.Millisecond }},
		{"azure-lb-fin-240s", func(p *reference.Profile) { p.FINHold = 239 * time.Second }},
		{"azure-lb-idle-4m", func(p *reference.Profile) { p.IdleDefault = 5 * time.Minute }},
		{"azure-lb-b14-rsts", func(p *reference.Profile) { p.IdleDefault = 5 * time.Minute }},
		{"azure-lb-exhaustion-pool-50", func(p *reference.Profile) { p.Tiers[0].Ports, p.MaxInstancePorts = 1032, 1032 }},
		{"azure-lb-exhaustion-pool-51", func(p *reference.Profile) { p.Tiers[0].MaxPool = 51 }},
	} {
		s, _ := Lookup(tc.scenario)
		p := reference.AzureLB()
		tc.mutate(&p)
		b := s.Build()
		if bad := check(s, b, replayScenario(t, s, p)); len(bad) == 0 {
			t.Errorf("%s: every claim holds on a broken engine", tc.scenario)
		} else {
			t.Logf("broken engine: %s", bad[0])
		}
	}
}

// TestCommittedCaptures: every scenario's capture in captures/scenarios is
// what the generator makes today, and its expectation file names it, the
// scenario and the scenario's setup.
func TestCommittedCaptures(t *testing.T) {
	for _, s := range All() {
		path := filepath.Join("..", "captures", "scenarios", s.Name+".pcap")
		committed, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v (natcheck gen %s -o %s)", s.Name, err, s.Name, path)
			continue
		}
		var now bytes.Buffer
		if err := s.Write(&now); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(committed, now.Bytes()) {
			t.Errorf("%s: the committed capture differs from what natcheck gen makes now: regenerate it (natcheck gen %s -o %s) and run natcheck regress --update on its expectation", s.Name, s.Name, path)
		}
		e, err := regress.Load(filepath.Join("..", "captures", "expected", "scenario-"+s.Name+".json"))
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
			continue
		}
		if e.Scenario != s.Name || filepath.Clean(e.CapturePath()) != filepath.Clean(path) {
			t.Errorf("%s: expectation names scenario %q and capture %s", s.Name, e.Scenario, e.CapturePath())
		}
		want, _ := json.Marshal(s.Setup)
		got, _ := json.Marshal(e.Setup)
		if !bytes.Equal(want, got) {
			t.Errorf("%s: expectation setup %s, the scenario's is %s", s.Name, got, want)
		}
	}
}

func TestNamesAreUniqueAndFound(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range All() {
		if seen[s.Name] || !strings.HasPrefix(s.Name, s.Profile+"-") {
			t.Errorf("scenario %q: duplicate, or not named after its profile %q", s.Name, s.Profile)
		}
		seen[s.Name] = true
		if got, ok := Lookup(s.Name); !ok || got != s {
			t.Errorf("Lookup(%q) = %v, %v", s.Name, got, ok)
		}
	}
	if _, ok := Lookup("nope"); ok {
		t.Error("Lookup(nope) found a scenario")
	}
}
