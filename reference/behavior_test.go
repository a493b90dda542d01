package reference

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

func TestB1PortsPerFrontendAndProtocol(t *testing.T) {
	cfg := oneIP("10.0.0.1")
	cfg.Frontends = append(cfg.Frontends, ip("203.0.113.2"))
	cfg.PortsPerInstance = 64000
	pl, err := PlanFor(Config{Frontends: cfg.Frontends, Backends: cfg.Backends[:1], PoolSize: 2, PortsPerInstance: 64000})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range pl.Frontends {
		if f.Allocated+f.Free != 64000 || f.Free != 0 {
			t.Errorf("B1: frontend %v allocated %d free %d, want 64000 and 0", f.IP, f.Allocated, f.Free)
		}
	}
	// TCP and UDP are separate inventories with the same layout: the
	// first flow of each protocol gets the same first port.
	h := newHarness(t, cfg)
	tcp := h.mustOut(0, TCP, "10.0.0.1:5000", "198.51.100.1:53", SYN)
	udp := h.mustOut(0, UDP, "10.0.0.1:5000", "198.51.100.1:53", 0)
	if tcp != udp || tcp != ap("203.0.113.1:1024") {
		t.Errorf("B1: tcp %v udp %v, want both 203.0.113.1:1024", tcp, udp)
	}
}

func TestC1PortRangeEdges(t *testing.T) {
	cfg := oneIP("10.0.0.1")
	cfg.PortsPerInstance = 64000
	h := newHarness(t, cfg)
	var last netip.AddrPort
	for i := range 64000 {
		last = h.mustOut(0, TCP, fmt.Sprintf("10.0.%d.1:%d", 0, 1+i), "198.51.100.1:443", SYN)
		if i == 0 && last.Port() != 1024 {
			t.Fatalf("C1: first port %d, want 1024", last.Port())
		}
	}
	if last.Port() != 65023 {
		t.Errorf("C1: 64,000th port %d, want 65023", last.Port())
	}
	if v := h.out(0, TCP, "10.0.0.1:65500", "198.51.100.1:443", SYN); v.Reason != DropExhausted {
		t.Errorf("C1: 64,001st flow %v %v, want exhausted", v.Action, v.Reason)
	}
}

func TestB2BlocksOfEight(t *testing.T) {
	for _, tc := range []struct {
		ports int
		ok    bool
		want  Behavior
	}{
		{8, true, 0}, {16, true, 0}, {6400, true, 0}, {7, false, B2}, {12, false, B2}, {1001, false, B2}, {63999, false, B2},
		{-8, false, B4}, {64008, false, B4},
	} {
		cfg := oneIP("10.0.0.1")
		cfg.PortsPerInstance = tc.ports
		_, err := PlanFor(cfg)
		var ce *ConfigError
		switch {
		case tc.ok && err != nil:
			t.Errorf("B2: ports %d: %v, want accepted", tc.ports, err)
		case !tc.ok && (!errors.As(err, &ce) || ce.Behavior != tc.want || !errors.Is(err, ErrConfig)):
			t.Errorf("B2: ports %d: error %v, want a %v ConfigError", tc.ports, err, tc.want)
		}
	}
	// Every range starts and ends on a block edge.
	pl, _ := PlanFor(Config{Frontends: []netip.Addr{ip("203.0.113.1")}, PoolSize: 7, PortsPerInstance: 8 * 37})
	for _, in := range pl.Instances {
		for _, r := range in.Ranges {
			if (r.First-1024)%8 != 0 || r.Len()%8 != 0 {
				t.Errorf("B2: instance %d range %d-%d is not block aligned", in.Index, r.First, r.Last)
			}
		}
	}
}

func TestB3DefaultTable(t *testing.T) {
	for _, tc := range []struct {
		pool, ips, want int
	}{
		{1, 1, 1024}, {50, 1, 1024}, {51, 1, 512}, {100, 1, 512}, {101, 1, 256}, {200, 1, 256},
		{201, 1, 128}, {400, 1, 128}, {401, 1, 64}, {800, 1, 64}, {801, 1, 32}, {1000, 1, 32},
		{51, 2, 1024}, {101, 2, 512}, {101, 3, 768}, {1000, 4, 128}, {1, 4, 1024},
	} {
		fr := make([]netip.Addr, tc.ips)
		for i := range fr {
			fr[i] = netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)})
		}
		pl, err := PlanFor(Config{Frontends: fr, PoolSize: tc.pool})
		if err != nil {
			t.Errorf("B3: pool %d on %d IPs: %v", tc.pool, tc.ips, err)
			continue
		}
		for _, in := range pl.Instances {
			if in.Ports != tc.want {
				t.Errorf("B3: pool %d on %d IPs: instance %d has %d ports, want %d", tc.pool, tc.ips, in.Index, in.Ports, tc.want)
				break
			}
		}
	}
	_, err := PlanFor(Config{Frontends: []netip.Addr{ip("203.0.113.1")}, PoolSize: 1001})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Behavior != B3 {
		t.Errorf("B3: pool 1001 under the default table: %v, want a B3 rejection", err)
	}
}

func TestB4ManualAllocation(t *testing.T) {
	one := []netip.Addr{ip("203.0.113.1")}
	two := []netip.Addr{ip("203.0.113.1"), ip("203.0.113.2")}
	for _, tc := range []struct {
		fr         []netip.Addr
		pool, port int
		ok         bool
	}{
		{one, 10, 6400, true}, {one, 10, 6408, false}, {one, 1, 64000, true}, {one, 1, 64008, false},
		{one, 1, 8, true}, {one, 8000, 8, true}, {one, 8001, 8, false}, {two, 2, 64000, true}, {two, 3, 64000, false},
		{one, 2000, 32, true}, // manual allocation admits pools past the default table
	} {
		_, err := PlanFor(Config{Frontends: tc.fr, PoolSize: tc.pool, PortsPerInstance: tc.port})
		if (err == nil) != tc.ok {
			t.Errorf("B4: %d IPs, pool %d × %d ports: err %v, want ok=%v", len(tc.fr), tc.pool, tc.port, err, tc.ok)
		}
	}
	pl, _ := PlanFor(Config{Frontends: one, PoolSize: 10, PortsPerInstance: 6400})
	if pl.MaxPool != 10 || pl.Frontends[0].Free != 0 {
		t.Errorf("B4: 10 × 6400 plan: max pool %d free %d, want 10 and 0", pl.MaxPool, pl.Frontends[0].Free)
	}
	if got := maxPerInstance(&Profile{PortsPerIP: 64000, BlockSize: 8}, 10, 1); got != 6400 {
		t.Errorf("B4: usual sizing for 10 instances = %d, want 6400", got)
	}
}

// fill opens n TCP flows from inside to one destination, on source ports
// 1000, 1001, …, and returns their SNAT endpoints.
func (h *harness) fill(at time.Duration, inside string, n int, dst string) []netip.AddrPort {
	h.t.Helper()
	return h.fillFrom(at, inside, 1000, n, dst)
}

func (h *harness) fillFrom(at time.Duration, inside string, base, n int, dst string) []netip.AddrPort {
	h.t.Helper()
	var got []netip.AddrPort
	for i := range n {
		got = append(got, h.mustOut(at, TCP, fmt.Sprintf("%s:%d", inside, base+i), dst, SYN))
	}
	return got
}

func TestB5PortsAreTheInstancesOwn(t *testing.T) {
	cfg := oneIP("10.0.0.1", "10.0.0.2")
	cfg.PortsPerInstance = 8
	h := newHarness(t, cfg)
	a := h.fill(0, "10.0.0.1", 8, "198.51.100.1:443")
	if v := h.out(0, TCP, "10.0.0.1:2000", "198.51.100.1:443", SYN); v.Reason != DropExhausted || v.Behavior != B9 {
		t.Fatalf("B5: 9th flow of instance 0: %v %v, want exhausted although instance 1 has 8 free ports", v.Action, v.Reason)
	}
	b := h.fill(0, "10.0.0.2", 8, "198.51.100.1:443")
	seen := map[netip.AddrPort]int{}
	for _, p := range a {
		seen[p] = 1
	}
	for _, p := range b {
		if seen[p] == 1 {
			t.Errorf("B5: SNAT %v used by both instances", p)
		}
	}
	if a[0].Port() != 1024 || b[0].Port() != 1032 {
		t.Errorf("B5: instance ranges start at %d and %d, want 1024 and 1032", a[0].Port(), b[0].Port())
	}
}

func TestB6TCPReusePerDestination(t *testing.T) {
	h := newHarness(t, oneIP("10.0.0.1"))
	p1 := h.mustOut(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)
	p2 := h.mustOut(0, TCP, "10.0.0.1:1001", "198.51.100.1:80", SYN)  // same IP, other port
	p3 := h.mustOut(0, TCP, "10.0.0.1:1002", "198.51.100.2:443", SYN) // other IP
	p4 := h.mustOut(0, TCP, "10.0.0.1:1003", "198.51.100.1:443", SYN) // same IP:port
	if p1 != p2 || p1 != p3 {
		t.Errorf("B6: flows to different destinations got %v %v %v, want one shared SNAT port", p1, p2, p3)
	}
	if p4 == p1 {
		t.Errorf("B6: two flows to 198.51.100.1:443 share %v", p4)
	}
	if h.count(MappingReused) != 2 || h.count(MappingCreated) != 2 {
		t.Errorf("B6: %d created, %d reused events, want 2 and 2", h.count(MappingCreated), h.count(MappingReused))
	}
	// N concurrent flows to one destination need N ports.
	h2 := newHarness(t, oneIP("10.0.0.1"))
	ports := h2.fill(0, "10.0.0.1", 1024, "198.51.100.9:443")
	uniq := map[netip.AddrPort]bool{}
	for _, p := range ports {
		uniq[p] = true
	}
	if len(uniq) != 1024 {
		t.Errorf("B6: 1024 flows to one destination used %d ports, want 1024", len(uniq))
	}
}

func TestB7UDPPortRestrictedCone(t *testing.T) {
	h := newHarness(t, oneIP("10.0.0.1", "10.0.0.2"))
	a := h.mustOut(0, UDP, "10.0.0.1:5000", "198.51.100.1:53", 0)
	b := h.mustOut(0, UDP, "10.0.0.1:5000", "198.51.100.1:123", 0)  // same mapping
	c := h.mustOut(0, UDP, "10.0.0.1:5001", "198.51.100.1:9999", 0) // other inside port, same dst IP
	d := h.mustOut(0, UDP, "10.0.0.1:5001", "198.51.100.2:53", 0)   // other dst IP
	if a != b {
		t.Errorf("B7: one inside endpoint to two ports of one IP: %v and %v, want one mapping", a, b)
	}
	if c == a {
		t.Errorf("B7: two mappings toward 198.51.100.1 share %v", c)
	}
	if d != a {
		t.Errorf("B7: mapping toward another IP got %v, want port reuse %v", d, a)
	}
	if n := h.count(MappingCreated) + h.count(MappingReused); n != 3 {
		t.Errorf("B7: %d mappings, want 3", n)
	}
}

func TestB8InboundFiltering(t *testing.T) {
	h := newHarness(t, oneIP("10.0.0.1"))
	snatT := h.mustOut(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)
	snatU := h.mustOut(0, UDP, "10.0.0.1:5000", "198.51.100.1:53", 0)
	for _, tc := range []struct {
		proto    Proto
		src, dst string
		want     Action
		to       string
	}{
		{TCP, "198.51.100.1:443", snatT.String(), Translated, "10.0.0.1:1000"},
		{TCP, "198.51.100.1:444", snatT.String(), Dropped, ""},
		{TCP, "198.51.100.2:443", snatT.String(), Dropped, ""},
		{TCP, "198.51.100.1:443", "203.0.113.1:1025", Dropped, ""},
		{TCP, "198.51.100.1:443", "203.0.113.9:1024", Dropped, ""},
		{UDP, "198.51.100.1:53", snatU.String(), Translated, "10.0.0.1:5000"},
		{UDP, "198.51.100.1:54", snatU.String(), Dropped, ""},
		{UDP, "198.51.100.3:53", snatU.String(), Dropped, ""},
	} {
		v := h.in(time.Second, tc.proto, tc.src, tc.dst, ACK)
		if v.Action != tc.want || v.Behavior != B8 {
			t.Errorf("B8: %v %s->%s: %v (%v), want %v", tc.proto, tc.src, tc.dst, v.Action, v.Behavior, tc.want)
		}
		if tc.want == Translated && v.Tuple.Dst != ap(tc.to) {
			t.Errorf("B8: %v %s->%s went to %v, want %s", tc.proto, tc.src, tc.dst, v.Tuple.Dst, tc.to)
		}
		if tc.want == Dropped && v.Reason != DropUnsolicited {
			t.Errorf("B8: %v %s->%s dropped as %v, want unsolicited", tc.proto, tc.src, tc.dst, v.Reason)
		}
	}
	// Once the mapping has sent to port 54, port 54 may answer.
	h.mustOut(2*time.Second, UDP, "10.0.0.1:5000", "198.51.100.1:54", 0)
	if v := h.in(3*time.Second, UDP, "198.51.100.1:54", snatU.String(), 0); v.Action != Translated {
		t.Errorf("B8: reply from a port the mapping sent to: %v", v.Action)
	}
}

func TestB9Exhaustion(t *testing.T) {
	cfg := oneIP("10.0.0.1", "10.0.0.2")
	cfg.PortsPerInstance = 8
	h := newHarness(t, cfg)
	ports := h.fill(0, "10.0.0.1", 8, "198.51.100.1:443")
	v := h.out(ms, TCP, "10.0.0.1:3000", "198.51.100.1:443", SYN)
	if v.Action != Dropped || v.Reason != DropExhausted || v.Behavior != B9 || v.Instance != 0 {
		t.Fatalf("B9: 9th flow: %+v, want dropped exhausted B9 on instance 0", v)
	}
	if h.count(Exhausted) != 1 {
		t.Errorf("B9: %d exhaustion events, want 1", h.count(Exhausted))
	}
	// Existing flows are unaffected; another destination still works.
	if got := h.mustOut(2*ms, TCP, "10.0.0.1:1000", "198.51.100.1:443", ACK); got != ports[0] {
		t.Errorf("B9: existing flow moved to %v", got)
	}
	h.mustOut(2*ms, TCP, "10.0.0.1:3000", "198.51.100.1:80", SYN)
	st := h.e.Stats()[0]
	if st.ExhaustionDrops != 1 || !st.FirstExhaustion.Equal(t0.Add(ms)) || st.InUse != 8 || st.Peak != 8 {
		t.Errorf("B9: stats %+v, want 1 drop at 1ms, 8 in use", st)
	}
	// A RST frees a port 15 s later: still refused at T-1ms, accepted at T.
	h.out(time.Second, TCP, "10.0.0.1:1003", "198.51.100.1:443", RST)
	if v := h.out(16*time.Second-ms, TCP, "10.0.0.1:3001", "198.51.100.1:443", SYN); v.Reason != DropExhausted {
		t.Errorf("B9: at T-1ms: %v %v, want exhausted", v.Action, v.Reason)
	}
	if got := h.mustOut(16*time.Second, TCP, "10.0.0.1:3001", "198.51.100.1:443", SYN); got != ports[3] {
		t.Errorf("B9: at T the new flow got %v, want the released %v", got, ports[3])
	}
}

// timerCase is one release timer: the packets that set it and when the
// slot must come free.
type timerCase struct {
	name    string
	idle    time.Duration
	packets []struct {
		at    time.Duration
		dir   Dir
		flags TCPFlags
	}
	release time.Duration
	reason  ReleaseReason
}

type tp = struct {
	at    time.Duration
	dir   Dir
	flags TCPFlags
}

var timerCases = []timerCase{
	{"B10 FIN from inside", 0, []tp{{0, Outbound, SYN}, {10 * time.Second, Outbound, FIN | ACK}}, 250 * time.Second, ReleaseFIN},
	{"B10 FIN from outside", 0, []tp{{0, Outbound, SYN}, {10 * time.Second, Inbound, FIN | ACK}}, 250 * time.Second, ReleaseFIN},
	{"B10 later packets do not restart", 0, []tp{{0, Outbound, SYN}, {10 * time.Second, Outbound, FIN | ACK}, {100 * time.Second, Inbound, FIN | ACK}, {249 * time.Second, Outbound, ACK}}, 250 * time.Second, ReleaseFIN},
	{"B11 RST from inside", 0, []tp{{0, Outbound, SYN}, {5 * time.Second, Outbound, RST}}, 20 * time.Second, ReleaseRST},
	{"B11 RST from outside", 0, []tp{{0, Outbound, SYN}, {5 * time.Second, Inbound, RST | ACK}}, 20 * time.Second, ReleaseRST},
	{"B11 RST after FIN shortens", 0, []tp{{0, Outbound, SYN}, {10 * time.Second, Outbound, FIN}, {20 * time.Second, Inbound, RST}}, 35 * time.Second, ReleaseRST},
	{"B11 RST late after FIN does not lengthen", 0, []tp{{0, Outbound, SYN}, {10 * time.Second, Outbound, FIN}, {240 * time.Second, Inbound, RST}}, 250 * time.Second, ReleaseFIN},
	{"B11 FIN after RST does not lengthen", 0, []tp{{0, Outbound, SYN}, {10 * time.Second, Outbound, RST}, {12 * time.Second, Inbound, FIN}}, 25 * time.Second, ReleaseRST},
	{"B11 later RST does not move", 0, []tp{{0, Outbound, SYN}, {10 * time.Second, Outbound, RST}, {20 * time.Second, Inbound, RST}}, 25 * time.Second, ReleaseRST},
	{"B12 idle default 4 min", 0, []tp{{0, Outbound, SYN}}, 4 * time.Minute, ReleaseIdle},
	{"B12 inbound restarts idle", 0, []tp{{0, Outbound, SYN}, {3 * time.Minute, Inbound, SYN | ACK}}, 7 * time.Minute, ReleaseIdle},
	{"B12 idle 120 min", 120 * time.Minute, []tp{{0, Outbound, SYN}, {time.Hour, Outbound, ACK}}, 3 * time.Hour, ReleaseIdle},
	{"B12 FIN stops the idle timer", 30 * time.Minute, []tp{{0, Outbound, SYN}, {time.Minute, Outbound, FIN}}, 5 * time.Minute, ReleaseFIN},
}

// TestB10B11B12B13Timers checks each timer on both sides of its release
// time T: at T-1ms the flow still translates on its port (B13) and the
// port is still held for its destination; at T the slot is free (C4).
func TestB10B11B12B13Timers(t *testing.T) {
	for _, tc := range timerCases {
		for _, probe := range []time.Duration{-ms, -time.Nanosecond, 0} {
			t.Run(fmt.Sprintf("%s/T%+v", tc.name, probe), func(t *testing.T) {
				cfg := oneIP("10.0.0.1")
				cfg.PortsPerInstance = 8
				cfg.IdleTimeout = tc.idle
				h := newHarness(t, cfg)
				// Seven flows hold the other ports, kept alive by the probe time.
				h.fill(0, "10.0.0.1", 7, "198.51.100.1:443")
				var snat netip.AddrPort
				last := time.Duration(0)
				keepAlive := func(to time.Duration) { // refresh the fillers every 3 minutes up to to
					for ; last+3*time.Minute < to; last += 3 * time.Minute {
						for i := range 7 {
							h.mustOut(last+3*time.Minute, TCP, fmt.Sprintf("10.0.0.1:%d", 1000+i), "198.51.100.1:443", ACK)
						}
					}
				}
				for _, p := range tc.packets {
					keepAlive(p.at)
					if p.dir == Outbound {
						snat = h.mustOut(p.at, TCP, "10.0.0.1:4000", "198.51.100.1:443", p.flags)
					} else if v := h.in(p.at, TCP, "198.51.100.1:443", snat.String(), p.flags); v.Action != Translated {
						t.Fatalf("inbound at %v: %v", p.at, v.Action)
					}
				}
				at := tc.release + probe
				keepAlive(at)
				v := h.out(at, TCP, "10.0.0.1:4001", "198.51.100.1:443", SYN)
				if probe < 0 {
					if v.Reason != DropExhausted {
						t.Fatalf("at T%v a new flow got %v %v, want exhausted (slot still held)", probe, v.Action, v.Reason)
					}
					if v := h.in(at, TCP, "198.51.100.1:443", snat.String(), ACK); v.Action != Translated {
						t.Fatalf("at T%v the flow's reply was %v, want translated", probe, v.Action)
					}
					return
				}
				if v.Action != Translated || v.Tuple.Src != snat {
					t.Fatalf("at T a new flow got %v %v, want the released %v", v.Action, v.Tuple.Src, snat)
				}
				rel := h.releases()
				if len(rel) != 1 || rel[0].Release != tc.reason || !rel[0].Time.Equal(t0.Add(tc.release)) || rel[0].Inside != ap("10.0.0.1:4000") {
					t.Fatalf("releases %v, want one %v at %v", rel, tc.reason, tc.release)
				}
			})
		}
	}
}

func TestB12IdleTimeoutBounds(t *testing.T) {
	for _, tc := range []struct {
		d  time.Duration
		ok bool
	}{
		{0, true}, {4 * time.Minute, true}, {120 * time.Minute, true}, {17 * time.Minute, true},
		{3 * time.Minute, false}, {121 * time.Minute, false}, {4*time.Minute + 30*time.Second, false}, {-time.Minute, false},
	} {
		cfg := oneIP("10.0.0.1")
		cfg.IdleTimeout = tc.d
		_, err := New(cfg)
		var ce *ConfigError
		if tc.ok != (err == nil) || (!tc.ok && (!errors.As(err, &ce) || ce.Behavior != B12)) {
			t.Errorf("B12: idle %v: err %v, want ok=%v", tc.d, err, tc.ok)
		}
	}
}

func TestB12DroppedPacketDoesNotRefresh(t *testing.T) {
	h := newHarness(t, oneIP("10.0.0.1"))
	snat := h.mustOut(0, UDP, "10.0.0.1:5000", "198.51.100.1:53", 0)
	// A reply from a port the mapping never sent to is dropped (B8) and
	// must not keep the mapping alive.
	if v := h.in(3*time.Minute, UDP, "198.51.100.1:99", snat.String(), 0); v.Action != Dropped {
		t.Fatalf("unsolicited reply: %v", v.Action)
	}
	h.advance(4 * time.Minute)
	if h.e.Flows() != 0 {
		t.Errorf("B12: mapping alive at 4 min after a dropped packet at 3 min")
	}
}

func TestB14ResetOnIdle(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		cfg := oneIP("10.0.0.1")
		cfg.TCPResetOnIdle = enabled
		h := newHarness(t, cfg)
		snat := h.mustOut(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)
		h.in(ms, TCP, "198.51.100.1:443", snat.String(), SYN|ACK)
		h.mustOut(2*ms, TCP, "10.0.0.1:1000", "198.51.100.1:443", ACK)
		h.mustOut(0+3*ms, TCP, "10.0.0.1:2000", "198.51.100.2:443", SYN) // SYN_SENT: never established
		h.advance(4*time.Minute + 2*ms - time.Nanosecond)
		if len(h.emit) != 0 {
			t.Fatalf("B14 (reset %v): %d packets emitted before expiry", enabled, len(h.emit))
		}
		h.advance(4*time.Minute + 2*ms)
		if !enabled {
			if len(h.emit) != 0 {
				t.Errorf("B14: silent expiry emitted %v", h.emit)
			}
			if v := h.in(5*time.Minute, TCP, "198.51.100.1:443", snat.String(), ACK); v.Action != Dropped || v.Reason != DropUnsolicited {
				t.Errorf("B14: packet after silent expiry: %v %v, want unsolicited", v.Action, v.Reason)
			}
			continue
		}
		want := []Packet{
			{Time: t0.Add(4*time.Minute + 2*ms), Dir: Inbound, Tuple: Tuple{TCP, ap("198.51.100.1:443"), ap("10.0.0.1:1000")}, Flags: RST | ACK},
			{Time: t0.Add(4*time.Minute + 2*ms), Dir: Outbound, Tuple: Tuple{TCP, snat, ap("198.51.100.1:443")}, Flags: RST | ACK},
		}
		if len(h.emit) != 2 || h.emit[0] != want[0] || h.emit[1] != want[1] {
			t.Fatalf("B14: emitted %v, want %v (and nothing for the never-established flow)", h.emit, want)
		}
		v := h.out(5*time.Minute, TCP, "10.0.0.1:1000", "198.51.100.1:443", ACK|PSH)
		if v.Action != Reset || len(h.emit) != 1 || h.emit[0].Tuple.Dst != ap("10.0.0.1:1000") || h.emit[0].Flags&RST == 0 {
			t.Errorf("B14: later outbound packet: %v, emitted %v, want a RST to the inside endpoint", v.Action, h.emit)
		}
		v = h.in(5*time.Minute, TCP, "198.51.100.1:443", snat.String(), ACK)
		if v.Action != Reset || len(h.emit) != 1 || h.emit[0].Tuple.Dst != ap("198.51.100.1:443") {
			t.Errorf("B14: later inbound packet: %v, emitted %v, want a RST to the server", v.Action, h.emit)
		}
		// A new SYN opens the flow again.
		if v := h.out(6*time.Minute, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN); v.Action != Translated {
			t.Errorf("B14: new SYN after reset: %v", v.Action)
		}
	}
}

func TestB15ProtocolsAndFragments(t *testing.T) {
	for _, tc := range []struct {
		protos Protocols
		proto  Proto
		frag   bool
		want   DropReason
	}{
		{AllProtocols, ICMP, false, DropUnsupported},
		{AllProtocols, 47, false, DropUnsupported},
		{AllProtocols, UDP, true, DropFragment},
		{AllProtocols, TCP, true, DropFragment},
		{AllProtocols, ICMP, true, DropFragment},
		{TCPOnly, UDP, false, DropUnsupported},
		{UDPOnly, TCP, false, DropUnsupported},
		{TCPOnly, TCP, false, NotDropped},
		{UDPOnly, UDP, false, NotDropped},
		{AllProtocols, UDP, false, NotDropped},
	} {
		cfg := oneIP("10.0.0.1")
		cfg.Protocols = tc.protos
		h := newHarness(t, cfg)
		v, _, _ := h.e.Process(Packet{Time: t0, Tuple: Tuple{tc.proto, ap("10.0.0.1:1000"), ap("198.51.100.1:53")}, Flags: SYN, Fragment: tc.frag}, nil)
		if v.Reason != tc.want || (tc.want != NotDropped && v.Behavior != B15) {
			t.Errorf("B15: rule %v, %v fragment=%v: %v %v, want %v", tc.protos, tc.proto, tc.frag, v.Action, v.Reason, tc.want)
		}
		if tc.want != NotDropped && h.e.Drops()[tc.want] != 1 {
			t.Errorf("B15: drop not counted")
		}
		// Inbound too.
		v, _, _ = h.e.Process(Packet{Time: t0, Dir: Inbound, Tuple: Tuple{tc.proto, ap("198.51.100.1:53"), ap("203.0.113.1:1024")}, Fragment: tc.frag}, nil)
		if tc.want != NotDropped && v.Reason != tc.want {
			t.Errorf("B15 inbound: rule %v, %v fragment=%v: %v, want %v", tc.protos, tc.proto, tc.frag, v.Reason, tc.want)
		}
	}
}

func TestB16PoolGrowthReclaims(t *testing.T) {
	backs := make([]netip.Addr, 51)
	for i := range backs {
		backs[i] = netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})
	}
	cfg := oneIP()
	cfg.Backends = backs[:50]
	h := newHarness(t, cfg)
	low := h.fill(0, "10.0.0.1", 512, "198.51.100.1:443")
	high := h.fillFrom(0, "10.0.0.1", 1512, 512, "198.51.100.1:443")
	if high[511].Port() != 1024+1023 {
		t.Fatalf("setup: instance 0's last port %v, want 2047", high[511])
	}
	if err := h.e.SetPool(t0.Add(time.Second), backs, 0); err != nil {
		t.Fatal(err)
	}
	pl := h.e.Plan()
	if pl.Instances[0].Ports != 512 || pl.Instances[0].Ranges[0] != (PortRange{ip("203.0.113.1"), 1024, 1535}) {
		t.Errorf("B16: instance 0 after growth: %+v, want the lower half 1024-1535", pl.Instances[0])
	}
	if pl.Instances[50].Ports != 512 {
		t.Errorf("B16: new instance has %d ports, want 512", pl.Instances[50].Ports)
	}
	if h.e.Flows() != 512 {
		t.Errorf("B16: %d flows after reclaim, want 512", h.e.Flows())
	}
	// Flows on kept ports go on; flows on reclaimed ports are gone and their
	// packets dropped as released.
	if got := h.mustOut(2*time.Second, TCP, "10.0.0.1:1000", "198.51.100.1:443", ACK); got != low[0] {
		t.Errorf("B16: kept flow moved to %v", got)
	}
	if v := h.out(2*time.Second, TCP, "10.0.0.1:1600", "198.51.100.1:443", ACK); v.Reason != DropReleased || v.Behavior != B16 {
		t.Errorf("B16: reclaimed flow's packet: %v %v, want dropped released", v.Action, v.Reason)
	}
	if v := h.out(2*time.Second, TCP, "10.0.0.1:1600", "198.51.100.1:443", SYN); v.Reason != DropExhausted {
		t.Errorf("B16: new flow beyond the 512 kept ports: %v %v, want exhausted", v.Action, v.Reason)
	}
	rec := 0
	for _, ev := range h.releases() {
		if ev.Release == ReleaseReclaimed && ev.Behavior == B16 {
			rec++
		}
	}
	if rec != 512 {
		t.Errorf("B16: %d reclaimed releases, want 512", rec)
	}
	// Shrinking the pool again only adds ports.
	if err := h.e.SetPool(t0.Add(3*time.Second), backs[:50], 0); err != nil {
		t.Fatal(err)
	}
	if p := h.e.Plan().Instances[0].Ports; p != 1024 || h.e.Flows() != 512 {
		t.Errorf("B16: after shrink instance 0 has %d ports and %d flows, want 1024 and 512", p, h.e.Flows())
	}
	if got := h.mustOut(4*time.Second, TCP, "10.0.0.1:1600", "198.51.100.1:443", SYN); got.Port() < 1536 {
		t.Errorf("B16: new flow after shrink on %v, want a regained port", got)
	}
}

func TestB16ManualNeverShrinks(t *testing.T) {
	cfg := oneIP("10.0.0.1", "10.0.0.2")
	cfg.PortsPerInstance = 32000
	h := newHarness(t, cfg)
	h.mustOut(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)
	err := h.e.SetPool(t0.Add(time.Second), []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	pl := h.e.Plan()
	if pl.Instances[0].Ports != 32000 || pl.Instances[2].Ports != 0 {
		t.Errorf("B16: manual growth: ports %d, %d, want 32000 and 0", pl.Instances[0].Ports, pl.Instances[2].Ports)
	}
	if v := h.out(2*time.Second, TCP, "10.0.0.3:1000", "198.51.100.1:443", SYN); v.Reason != DropExhausted {
		t.Errorf("B16: flow of an instance with no ports: %v %v, want exhausted", v.Action, v.Reason)
	}
	var cfgEv []Event
	for _, ev := range h.events {
		if ev.Kind == ConfigChanged {
			cfgEv = append(cfgEv, ev)
		}
	}
	if len(cfgEv) != 1 || cfgEv[0].Instance != 2 || cfgEv[0].Ports != 0 || cfgEv[0].Behavior != B16 {
		t.Errorf("B16: config events %v, want one for instance 2 with 0 ports", cfgEv)
	}
	if h.e.Flows() != 1 {
		t.Errorf("B16: manual growth released flows")
	}
}

func TestC2Placement(t *testing.T) {
	pl, err := PlanFor(Config{Frontends: []netip.Addr{ip("203.0.113.1"), ip("203.0.113.2")}, PoolSize: 3, PortsPerInstance: 40000})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]PortRange{
		{{ip("203.0.113.1"), 1024, 41023}},
		{{ip("203.0.113.1"), 41024, 65023}, {ip("203.0.113.2"), 1024, 17023}},
		{{ip("203.0.113.2"), 17024, 57023}},
	}
	for i, w := range want {
		got := pl.Instances[i].Ranges
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("C2: instance %d ranges %v, want %v", i, got, w)
		}
	}
	if pl.Frontends[1].Free != 64000-56000 {
		t.Errorf("C2: IP #2 free %d, want 8000", pl.Frontends[1].Free)
	}
}

func TestC3LowestFreeAndDeterminism(t *testing.T) {
	run := func() []netip.AddrPort {
		cfg := oneIP("10.0.0.1")
		cfg.Frontends = append(cfg.Frontends, ip("203.0.113.2"))
		cfg.PortsPerInstance = 16
		cfg.PoolSize = 8000 // 10.0.0.1 spans the end of IP #1 only if placed last; here it is first
		h := newHarness(t, cfg)
		var got []netip.AddrPort
		got = append(got, h.fill(0, "10.0.0.1", 5, "198.51.100.1:443")...)
		h.out(time.Second, TCP, "10.0.0.1:1001", "198.51.100.1:443", RST) // frees 1025 at 16 s
		h.out(time.Second, TCP, "10.0.0.1:1003", "198.51.100.1:443", RST) // frees 1027 at 16 s
		got = append(got, h.mustOut(16*time.Second, TCP, "10.0.0.1:2000", "198.51.100.1:443", SYN))
		got = append(got, h.mustOut(16*time.Second, TCP, "10.0.0.1:2001", "198.51.100.1:443", SYN))
		got = append(got, h.mustOut(16*time.Second, TCP, "10.0.0.1:2002", "198.51.100.1:443", SYN))
		return got
	}
	a, b := run(), run()
	want := []uint16{1024, 1025, 1026, 1027, 1028, 1025, 1027, 1029}
	for i, p := range a {
		if p.Port() != want[i] || p != b[i] {
			t.Errorf("C3: flow %d got %v (second run %v), want port %d", i, p, b[i], want[i])
		}
	}
}

func TestC3FirstFrontendFirst(t *testing.T) {
	cfg := Config{Frontends: []netip.Addr{ip("203.0.113.1"), ip("203.0.113.2")}, Backends: []netip.Addr{ip("10.0.0.1")}, PoolSize: 2, PortsPerInstance: 64000}
	// Instance 0 holds IP #1 whole; make it span by putting it second.
	cfg.Backends = []netip.Addr{ip("10.0.0.9"), ip("10.0.0.1")}
	cfg.PortsPerInstance = 40000
	h := newHarness(t, cfg)
	ports := h.fill(0, "10.0.0.1", 24001, "198.51.100.1:443")
	if ports[0] != ap("203.0.113.1:41024") || ports[23999] != ap("203.0.113.1:65023") || ports[24000] != ap("203.0.113.2:1024") {
		t.Errorf("C3: spanning instance used %v, %v, %v; want IP #1 first, then IP #2", ports[0], ports[23999], ports[24000])
	}
}

func TestC5PickUpAndStrict(t *testing.T) {
	h := newHarness(t, oneIP("10.0.0.1"))
	if v := h.out(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", ACK|PSH); v.Action != Translated || !v.NewFlow {
		t.Fatalf("C5: mid-stream packet: %v, want a new flow", v.Action)
	}
	if h.count(PickedUp) != 1 {
		t.Errorf("C5: %d pick-up events, want 1", h.count(PickedUp))
	}
	h.mustOut(0, TCP, "10.0.0.1:1001", "198.51.100.1:443", SYN)
	if h.count(PickedUp) != 1 {
		t.Errorf("C5: a SYN was flagged as a pick-up")
	}
	cfg := oneIP("10.0.0.1")
	cfg.Strict = true
	s := newHarness(t, cfg)
	if v := s.out(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", ACK); v.Reason != DropNotSYN || v.Behavior != C5 {
		t.Errorf("C5 strict: mid-stream packet: %v %v, want dropped not-syn", v.Action, v.Reason)
	}
	s.mustOut(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)
	s.mustOut(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", ACK)
}

func TestTimeGoingBackwardsIsAnError(t *testing.T) {
	h := newHarness(t, oneIP("10.0.0.1"))
	h.mustOut(time.Second, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)
	_, _, err := h.e.Process(Packet{Time: t0, Tuple: Tuple{TCP, ap("10.0.0.1:1001"), ap("198.51.100.1:443")}, Flags: SYN}, nil)
	var te *TimeError
	if !errors.Is(err, ErrTimeWentBackwards) || !errors.As(err, &te) || !te.Got.Equal(t0) {
		t.Fatalf("Process(earlier) = %v, want a TimeError", err)
	}
	if _, err := h.e.Advance(t0, nil); !errors.Is(err, ErrTimeWentBackwards) {
		t.Errorf("Advance(earlier) = %v", err)
	}
	if h.e.Flows() != 1 || !h.e.Now().Equal(t0.Add(time.Second)) {
		t.Errorf("the rejected packet changed the engine: %d flows, now %v", h.e.Flows(), h.e.Now())
	}
}

func TestConfigErrors(t *testing.T) {
	good := oneIP("10.0.0.1")
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no frontends", func(c *Config) { c.Frontends = nil }, "frontends"},
		{"ipv6 frontend", func(c *Config) { c.Frontends = []netip.Addr{ip("2001:db8::1")} }, "frontend #1"},
		{"duplicate backend", func(c *Config) { c.Backends = append(c.Backends, c.Backends[0]) }, "listed twice"},
		{"empty pool", func(c *Config) { c.Backends = nil }, "pool size"},
		{"pool smaller than backends", func(c *Config) { c.PoolSize = 0; c.Backends = append(c.Backends, ip("10.0.0.2")); c.PoolSize = 1 }, "smaller than the 2 backends"},
		{"bad protocol", func(c *Config) { c.Protocols = 9 }, "protocol"},
		{"unimplemented strategy", func(c *Config) { c.Profile = AzureLB(); c.Profile.PortChoice = PortChoice(99) }, "profile"},
	} {
		c := good
		c.Backends = append([]netip.Addr(nil), good.Backends...)
		tc.mod(&c)
		_, err := New(c)
		if err == nil || !errors.Is(err, ErrConfig) || !contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want a config error mentioning %q", tc.name, err, tc.want)
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

func TestC4ReleasedSlotReusableAtOnce(t *testing.T) {
	for _, proto := range []Proto{TCP, UDP} {
		cfg := oneIP("10.0.0.1")
		cfg.PortsPerInstance = 8
		h := newHarness(t, cfg)
		first := h.mustOut(0, proto, "10.0.0.1:1000", "198.51.100.1:443", SYN)
		for i := 1; i < 8; i++ {
			h.mustOut(0, proto, fmt.Sprintf("10.0.0.1:%d", 1000+i), "198.51.100.1:443", SYN)
		}
		// The first flow idles out at 4 min; at that very instant another
		// inside endpoint takes the same SNAT port toward the same destination.
		for i := 1; i < 8; i++ {
			h.mustOut(3*time.Minute, proto, fmt.Sprintf("10.0.0.1:%d", 1000+i), "198.51.100.1:443", ACK)
		}
		if v := h.out(4*time.Minute-time.Nanosecond, proto, "10.0.0.1:2000", "198.51.100.1:443", SYN); v.Reason != DropExhausted {
			t.Errorf("C4 %v: 1 ns before release: %v %v, want exhausted", proto, v.Action, v.Reason)
		}
		if got := h.mustOut(4*time.Minute, proto, "10.0.0.1:2000", "198.51.100.1:443", SYN); got != first {
			t.Errorf("C4 %v: at release the new flow got %v, want %v again", proto, got, first)
		}
	}
}

func TestLookupHasNoSideEffects(t *testing.T) {
	h := newHarness(t, oneIP("10.0.0.1"))
	snat := h.mustOut(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)
	tu := Tuple{TCP, ap("10.0.0.1:1000"), ap("198.51.100.1:443")}
	if got, ok := h.e.Lookup(tu); !ok || got != snat {
		t.Fatalf("Lookup(%v) = %v, %v; want %v", tu, got, ok, snat)
	}
	if _, ok := h.e.Lookup(Tuple{TCP, ap("10.0.0.1:1000"), ap("198.51.100.1:80")}); ok {
		t.Errorf("Lookup of another destination port found a flow")
	}
	n := len(h.events)
	h.advance(4*time.Minute - time.Nanosecond)
	h.e.Lookup(tu) // must not restart the idle timer
	h.advance(4 * time.Minute)
	if _, ok := h.e.Lookup(tu); ok || len(h.events) != n+1 {
		t.Errorf("after the idle timeout Lookup still finds the flow (events %d, want %d)", len(h.events), n+1)
	}
}

func TestBehaviorNamesRoundTrip(t *testing.T) {
	bs := Behaviors()
	if len(bs) != 16+9+11+8+7 {
		t.Fatalf("Behaviors() has %d IDs, want 51: %v", len(bs), bs)
	}
	for _, b := range bs {
		got, err := ParseBehavior(b.String())
		if err != nil || got != b {
			t.Errorf("ParseBehavior(%q) = %v, %v; want %v", b.String(), got, err, b)
		}
		lower := string(b.String()[0]|0x20) + b.String()[1:]
		if got, err := ParseBehavior(lower); err != nil || got != b {
			t.Errorf("ParseBehavior(%q) = %v, %v; want %v", lower, got, err, b)
		}
		if b.Documented() != (b.String()[0] != 'C') {
			t.Errorf("%v.Documented() = %v", b, b.Documented())
		}
	}
	for _, s := range []string{"", "B", "B0", "B17", "C10", "L0", "L12", "G9", "R8", "X1", "b 1", "B01", "behavior-3"} {
		if b, err := ParseBehavior(s); err == nil {
			t.Errorf("ParseBehavior(%q) = %v, want an error", s, b)
		}
	}
	if NoBehavior.String() != "" || NoBehavior.Profile() != "" || NoBehavior.Documented() {
		t.Errorf("NoBehavior: %q, profile %q, documented %v", NoBehavior.String(), NoBehavior.Profile(), NoBehavior.Documented())
	}
}

// TestBehaviorsByProfile: each profile lists exactly its own IDs, in
// SEMANTICS.md order, and every ID knows its profile.
func TestBehaviorsByProfile(t *testing.T) {
	for _, tc := range []struct {
		profile     string
		first, last string
		n           int
		letters     string
	}{
		{NameAzureLB, "B1", "C9", 25, "BC"},
		{NameLinux, "L1", "L11", 11, "L"},
		{NameAzureNATGW, "G1", "G8", 8, "G"},
		{NameRFC, "R1", "R7", 7, "R"},
	} {
		bs := BehaviorsOf(tc.profile)
		if len(bs) != tc.n || bs[0].String() != tc.first || bs[len(bs)-1].String() != tc.last {
			t.Errorf("BehaviorsOf(%q) = %v, want %d IDs %s…%s", tc.profile, bs, tc.n, tc.first, tc.last)
			continue
		}
		for i, b := range bs {
			if b.Profile() != tc.profile || !strings.ContainsRune(tc.letters, rune(b.String()[0])) {
				t.Errorf("BehaviorsOf(%q)[%d] = %v of profile %q", tc.profile, i, b, b.Profile())
			}
			if i > 0 && b != bs[i-1]+1 {
				t.Errorf("BehaviorsOf(%q): %v follows %v", tc.profile, b, bs[i-1])
			}
		}
	}
	total := 0
	for _, name := range ProfileNames() {
		total += len(BehaviorsOf(name))
	}
	if total != len(Behaviors()) {
		t.Errorf("the profiles' IDs add up to %d, want every ID (%d)", total, len(Behaviors()))
	}
	if BehaviorsOf("cisco") != nil {
		t.Errorf("BehaviorsOf(\"cisco\") = %v, want nil", BehaviorsOf("cisco"))
	}
}

// TestProcessReplyIsLookupThenProcess: for every kind of reply,
// ProcessReply gives what Lookup followed by Process of the reply
// addressed to the SNAT endpoint gives, on two engines fed the same
// traffic.
func TestProcessReplyIsLookupThenProcess(t *testing.T) {
	setup := func(h *harness) {
		h.mustOut(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)
		h.mustOut(0, UDP, "10.0.0.1:5000", "198.51.100.1:53", 0)
		h.mustOut(0, TCP, "10.0.0.1:1001", "198.51.100.2:443", SYN)
		h.out(time.Second, TCP, "10.0.0.1:1001", "198.51.100.2:443", RST)
	}
	for _, tc := range []struct {
		at       time.Duration
		proto    Proto
		src, dst string
		frag     bool
	}{
		{time.Second, TCP, "198.51.100.1:443", "10.0.0.1:1000", false},      // matches
		{time.Second, TCP, "198.51.100.1:444", "10.0.0.1:1000", false},      // other server port
		{time.Second, UDP, "198.51.100.1:53", "10.0.0.1:5000", false},       // UDP peer
		{time.Second, UDP, "198.51.100.1:54", "10.0.0.1:5000", false},       // UDP, port never sent to
		{time.Second, TCP, "198.51.100.9:443", "10.0.0.1:1000", false},      // no flow
		{16 * time.Second, TCP, "198.51.100.2:443", "10.0.0.1:1001", false}, // released at 16 s
		{time.Second, TCP, "198.51.100.1:443", "10.0.0.1:1000", true},       // fragment
	} {
		a, b := newHarness(t, oneIP("10.0.0.1")), newHarness(t, oneIP("10.0.0.1"))
		setup(a)
		setup(b)
		reply := Packet{Time: t0.Add(tc.at), Dir: Inbound, Tuple: Tuple{tc.proto, ap(tc.src), ap(tc.dst)}, Flags: ACK, Fragment: tc.frag}
		got, snat, _, err := a.e.ProcessReply(reply, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.e.Advance(reply.Time, nil); err != nil {
			t.Fatal(err)
		}
		want := Verdict{Action: Dropped, Reason: DropUnsolicited, Behavior: B8, Instance: -1}
		wantSNAT, ok := b.e.Lookup(reply.Tuple.Reverse())
		if tc.frag { // a fragment is dropped before any lookup (B15)
			want = Verdict{Action: Dropped, Reason: DropFragment, Behavior: B15, Instance: -1}
			ok = false
		} else if ok {
			q := reply
			q.Tuple.Dst = wantSNAT
			want, _, _ = b.e.Process(q, nil)
		}
		if !ok {
			wantSNAT = netip.AddrPort{}
		}
		if got != want || snat != wantSNAT {
			t.Errorf("reply %v at %v: ProcessReply = %+v via %v; Lookup+Process = %+v via %v", reply.Tuple, tc.at, got, snat, want, wantSNAT)
		}
	}
}

// TestTimeOutOfRangeIsAnError: a time whose nanoseconds since 1970 do not
// fit the engine's clock (with room for deadlines) is an error, at once,
// on both sides of each bound.
func TestTimeOutOfRangeIsAnError(t *testing.T) {
	for _, tc := range []struct {
		at time.Time
		ok bool
	}{
		{LatestTime, true}, {LatestTime.Add(time.Nanosecond), false}, {time.Unix(0, math.MaxInt64-1000), false},
		{time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{EarliestTime, true}, {EarliestTime.Add(-time.Nanosecond), false}, {time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		if got := InRange(tc.at); got != tc.ok { // the check replay makes before it hands a time to an engine
			t.Errorf("InRange(%v) = %v, want %v", tc.at, got, tc.ok)
		}
		h := newHarness(t, oneIP("10.0.0.1"))
		v, _, err := h.e.Process(Packet{Time: tc.at, Tuple: Tuple{TCP, ap("10.0.0.1:1000"), ap("198.51.100.1:443")}, Flags: SYN}, nil)
		if tc.ok && (err != nil || v.Action != Translated) {
			t.Errorf("Process at %v: %v %v, want translated", tc.at, v.Action, err)
		}
		if !tc.ok && !errors.Is(err, ErrTimeOutOfRange) {
			t.Errorf("Process at %v: %v, want ErrTimeOutOfRange", tc.at, err)
		}
		if tc.ok && tc.at.Equal(EarliestTime) { // the flow idles out; the wheel counts below 1970
			if _, err := h.e.Advance(tc.at.Add(4*time.Minute), nil); err != nil || h.e.Flows() != 0 {
				t.Errorf("Advance 4 min after %v: %v, %d flows", tc.at, err, h.e.Flows())
			}
		}
	}
}
