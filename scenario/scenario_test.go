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
	all      []event // timers' and packets' events
	outside  map[time.Time][]outsidePacket
}

type event struct {
	Packet   int       `json:"packet"`
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Inside   string    `json:"inside"`
	Remote   string    `json:"remote"`
	SNAT     string    `json:"snat"`
	Release  string    `json:"release"`
	Behavior string    `json:"behavior"`
	Drop     string    `json:"drop"`
}

type outsidePacket struct {
	src, dst netip.AddrPort
	natRST   bool   // a RST the NAT sent itself (B14, G6)
	comment  string // its pcapng comment
}

// natRSTTo reports whether the outside view holds, at time at, a RST the
// NAT sent to to, its comment naming the item by (B14, G6).
func (o observed) natRSTTo(at time.Time, to netip.AddrPort, by string) bool {
	for _, op := range o.outside[at] {
		if op.natRST && op.dst == to && strings.HasPrefix(op.comment, by+" RST") {
			return true
		}
	}
	return false
}

// replayScenario replays s's capture with its setup, on the engine of its
// profile changed by mutate (nil: as it is), and reads back what came out.
func replayScenario(t *testing.T, s *Scenario, mutate func(*reference.Profile)) observed {
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
	if mutate != nil {
		mutate(&cfg.Engine.Profile)
	}
	cfg.Events, cfg.Output = &ev, out
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
		o.all = append(o.all, e)
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
		op := outsidePacket{src: tu.Src, dst: tu.Dst}
		if len(rec.Comments) > 0 {
			op.comment = rec.Comments[0]
			op.natRST = strings.Contains(op.comment, "RST sent by the NAT")
		}
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
			// The RST goes toward the packet's sender only: on the outside
			// when a server sent it, never there when an inside host did.
			p := b.Packets[c.Packet-1]
			by := ""
			for _, e := range evs {
				if e.Kind == "reset-sent" {
					by = e.Behavior
				}
			}
			ok = by != "" && !translated && o.natRSTTo(p.Time, p.Tuple.Src, by) == (p.Dir == reference.Inbound)
			if p.Dir == reference.Outbound {
				for _, op := range o.outside[p.Time] {
					ok = ok && !op.natRST
				}
			}
		case c.Verdict == "hairpinned":
			// Sent back in: never on the outside, delivered to the inside
			// endpoint from the sender's public endpoint.
			ok = !translated
			found := false
			for _, e := range evs {
				found = found || e.Kind == "hairpinned" && e.Remote == c.DeliveredTo.String() && e.SNAT == c.DeliveredFrom.String()
			}
			ok = ok && found
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
		for _, n := range c.OtherPortThan {
			if other, ok := o.snatOf(b, n); !ok || other == snat {
				fail("packet %d: SNAT %v, want another than packet %d's (%s: %s)", c.Packet, snat, n, c.Behavior, c.Why)
			}
		}
		if c.SameIPAs != 0 {
			if other, ok := o.snatOf(b, c.SameIPAs); !ok || other.Addr() != snat.Addr() {
				fail("packet %d: SNAT IP %v, want packet %d's, %v (%s: %s)", c.Packet, snat.Addr(), c.SameIPAs, other.Addr(), c.Behavior, c.Why)
			}
		}
		in := b.Packets[c.Packet-1].Tuple.Src.Port()
		switch {
		case c.KeepsPort && snat.Port() != in:
			fail("packet %d: SNAT port %d, want the inside port %d kept (%s: %s)", c.Packet, snat.Port(), in, c.Behavior, c.Why)
		case c.PortIn != [2]uint16{} && (snat.Port() < c.PortIn[0] || snat.Port() > c.PortIn[1]):
			fail("packet %d: SNAT port %d, want one in %d–%d (%s: %s)", c.Packet, snat.Port(), c.PortIn[0], c.PortIn[1], c.Behavior, c.Why)
		case c.SameParity && (snat.Port()%2 != in%2 || (snat.Port() < 1024) != (in < 1024)):
			fail("packet %d: SNAT port %d, want the parity and range of the inside port %d (%s: %s)", c.Packet, snat.Port(), in, c.Behavior, c.Why)
		}
	}
	// L11, and every profile's premise: no packet leaves on the outside
	// with an inside source address.
	for at, ops := range o.outside {
		for _, op := range ops {
			if insideNet.Contains(op.src.Addr()) {
				fail("at +%v: %v > %v on the outside, from an inside address (L11)", at.Sub(b.Start), op.src, op.dst)
			}
		}
	}
	for _, c := range b.Events {
		at := b.Start.Add(c.At)
		found := false
		for _, e := range o.all {
			if e.Time.Equal(at) && e.Kind == c.Kind && e.Release == c.Release && e.Inside == c.Inside.String() &&
				(c.Cites == reference.NoBehavior || e.Behavior == c.Cites.String()) {
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
		for _, line := range check(s, b, replayScenario(t, s, nil)) {
			t.Error(line)
		}
	}
}

// TestClaimsFailOnBrokenEngines: every scenario's claims fail on at least
// one engine whose profile breaks what it shows: azure-lb with a RST hold
// of 14 s or 16 s, a FIN hold of 239 s, a default idle timeout of 5
// minutes, UDP on a fixed 4 minutes, 1,032 ports in the smallest tier,
// UDP mappings per 5-tuple, linux's port choice; linux choosing the lowest
// free port or keying UDP by destination IP, with a 59 s SYN_RECV, a 121 s
// TIME_WAIT, an 11 s CLOSE, a 31 s UDP timeout, a stream after 1.999 s,
// no tcp_loose, rfc's timers, a 29 s ICMP timeout; azure-natgw with ports 512–1023, 64 s FIN and 17 s RST holds,
// a 31 s half-open close, UDP on the TCP idle timeout, no RSTs for
// unknown TCP, address filtering; rfc with 5-tuple mappings, random ports,
// another filtering mode, a timer 1 ms longer, inbound refresh switched,
// no hairpinning.
func TestClaimsFailOnBrokenEngines(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range []struct {
		scenario string
		mutate   func(*reference.Profile)
	}{
		{"azure-lb-rst-15s", func(p *reference.Profile) { p.RSTHold = 14 * time.Second }},
		{"azure-lb-rst-15s", func(p *reference.Profile) { p.RSTHold = 16 * time.Second }},
		{"azure-lb-unsolicited-inbound", func(p *reference.Profile) { p.RSTHold = 15*time.Second + time.Millisecond }},
		{"azure-lb-fin-240s", func(p *reference.Profile) { p.FINHold = 239 * time.Second }},
		{"azure-lb-idle-4m", func(p *reference.Profile) { p.IdleDefault = 5 * time.Minute }},
		{"azure-lb-idle-30m", func(p *reference.Profile) { p.Gateway.UDPIdle = 4 * time.Minute }},
		{"azure-lb-b14-rsts", func(p *reference.Profile) { p.IdleDefault = 5 * time.Minute }},
		{"azure-lb-exhaustion-pool-50", func(p *reference.Profile) { p.Tiers[0].Ports, p.MaxInstancePorts = 1032, 1032 }},
		{"azure-lb-exhaustion-pool-51", func(p *reference.Profile) { p.Tiers[0].MaxPool = 51 }},
		{"azure-lb-udp-port-restricted-cone", func(p *reference.Profile) { p.Mapping = reference.MappingFiveTuple }},
		{"azure-lb-tcp-reuse-dst-ports", func(p *reference.Profile) { p.PortChoice = reference.PortPreserve }},
		{"linux-port-preserve", func(p *reference.Profile) { p.PortChoice = reference.PortLowestFree }},
		{"linux-port-preserve", func(p *reference.Profile) { p.Mapping = reference.MappingPerDestination }},
		{"linux-tcp-state-timeouts", func(p *reference.Profile) { p.Conntrack.SynRecv = 59 * time.Second }},
		{"linux-tcp-state-timeouts", func(p *reference.Profile) { p.Conntrack.TimeWait = 121 * time.Second }},
		{"linux-tcp-rst", func(p *reference.Profile) { p.Conntrack.Close = 11 * time.Second }},
		{"linux-udp-timeouts", func(p *reference.Profile) { p.Conntrack.UDP = 31 * time.Second }},
		{"linux-udp-timeouts", func(p *reference.Profile) { p.Conntrack.StreamAfter = 2*time.Second - time.Millisecond }},
		{"linux-pickup-invalid", func(p *reference.Profile) { p.Conntrack.Loose = false }},
		{"linux-strict-invalid", func(p *reference.Profile) { p.Timers, p.RFC = reference.TimersRFC, reference.RFC().RFC }},
		{"linux-icmp-echo", func(p *reference.Profile) { p.Conntrack.ICMP = 29 * time.Second }},
		{"azure-natgw-reuse", func(p *reference.Profile) { p.FirstPort, p.PortsPerIP = 512, 512 }},
		{"azure-natgw-holds", func(p *reference.Profile) { p.FINHold = 64 * time.Second }},
		{"azure-natgw-holds", func(p *reference.Profile) { p.RSTHold = 17 * time.Second }},
		{"azure-natgw-holds", func(p *reference.Profile) { p.Gateway.HalfOpen = 31 * time.Second }},
		{"azure-natgw-idle", func(p *reference.Profile) { p.Gateway.UDPIdle = 0 }},
		{"azure-natgw-rst-unknown", func(p *reference.Profile) { p.ResetUnknown = false }},
		{"azure-natgw-inbound", func(p *reference.Profile) { p.ICMPEcho = true }},
		{"azure-natgw-inbound", func(p *reference.Profile) { p.Mapping = reference.MappingPerDestination }},
		{"rfc-endpoint-independent-mapping", func(p *reference.Profile) { p.Mapping = reference.MappingFiveTuple }},
		{"rfc-paired-pooling", func(p *reference.Profile) { p.PortChoice = reference.PortRandom }},
		{"rfc-filtering-endpoint-independent", func(p *reference.Profile) { p.Filtering = reference.FilterAddressAndPort }},
		{"rfc-filtering-address", func(p *reference.Profile) { p.Filtering = reference.FilterEndpointIndependent }},
		{"rfc-filtering-address-and-port", func(p *reference.Profile) { p.Filtering = reference.FilterAddress }},
		{"rfc-udp-timer", func(p *reference.Profile) { p.RFC.InboundRefresh = false }},
		{"rfc-udp-timer", func(p *reference.Profile) { p.RFC.UDP += time.Millisecond }},
		{"rfc-udp-timer-2m-outbound-only", func(p *reference.Profile) { p.RFC.InboundRefresh = true }},
		{"rfc-tcp-timers", func(p *reference.Profile) { p.RFC.TCPTransitory += time.Millisecond }},
		{"rfc-tcp-timers", func(p *reference.Profile) { p.RFC.TCPEstablished += time.Millisecond }},
		{"rfc-hairpin", func(p *reference.Profile) { p.Hairpin = false }},
	} {
		s, ok := Lookup(tc.scenario)
		if !ok {
			t.Fatalf("no scenario %q", tc.scenario)
		}
		covered[tc.scenario] = true
		b := s.Build()
		if bad := check(s, b, replayScenario(t, s, tc.mutate)); len(bad) == 0 {
			t.Errorf("%s: every claim holds on a broken engine", tc.scenario)
		} else {
			t.Logf("broken engine: %s", bad[0])
		}
	}
	for _, s := range All() {
		if !covered[s.Name] {
			t.Errorf("%s: no broken engine shows its claims can fail", s.Name)
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
