package reference

// Tests written to kill mutants that gremlins (make mutate) found alive:
// each pins a result that a one-token change to the code would alter.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0 s"},
		{-15 * time.Second, "-15 s"},
		{-250 * time.Millisecond, "-250 ms"},
		{250 * time.Millisecond, "250 ms"},
		{1500 * time.Microsecond, "1.5 ms"},
		{1250 * time.Microsecond, "1.25 ms"},
		{2*time.Second + 125*time.Millisecond, "2.125 s"},
		{time.Second - time.Millisecond, "999 ms"},
		{time.Second, "1 s"},
		{1500 * time.Millisecond, "1.5 s"},
		{time.Minute - time.Second, "59 s"},
		{time.Minute, "1 min"},
		{4 * time.Minute, "4 min"},
		{4*time.Minute + 30*time.Second, "4 min 30 s"},
		{time.Hour, "1 h"},
		{90 * time.Minute, "1 h 30 min"},
		{2*time.Hour + 500*time.Millisecond, "2 h 0.5 s"},
	} {
		if got := FormatDuration(tc.d); got != tc.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// TestNamesOutOfRange: every String method names a value past its table
// by number instead of panicking, and Documented is false there.
func TestNamesOutOfRange(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{behaviorEnd.String(), fmt.Sprintf("behavior-%d", behaviorEnd)},
		{(behaviorEnd - 1).String(), "R7"},
		{EventKind(len(kindNames)).String(), fmt.Sprintf("event-%d", len(kindNames))},
		{EventKind(len(kindNames) - 1).String(), kindNames[len(kindNames)-1]},
		{ReleaseReason(len(releaseNames)).String(), fmt.Sprintf("release-%d", len(releaseNames))},
		{ReleaseReclaimed.String(), "reclaimed"},
		{DropReason(len(dropNames)).String(), fmt.Sprintf("drop-%d", len(dropNames))},
		{DropReason(len(dropNames) - 1).String(), dropNames[len(dropNames)-1]},
		{Inbound.String(), "inbound"},
		{Outbound.String(), "outbound"},
		{TCPFlags(0).String(), "none"},
		{(SYN | ACK).String(), "S."},
		{(FIN | RST | PSH | URG | ECE | CWR).String(), "FRPUEW"},
		{fmt.Sprint(PortRange{First: 1024, Last: 1031}.Len()), "8"},
		{fmt.Sprint(PortRange{First: 1024, Last: 1024}.Len()), "1"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for _, tc := range []struct {
		b    Behavior
		want bool
	}{{NoBehavior, false}, {B1, true}, {B16, true}, {C1, false}, {C9, false}, {L1, true}, {R7, true}, {behaviorEnd, false}} {
		if got := tc.b.Documented(); got != tc.want {
			t.Errorf("%v.Documented() = %v, want %v", tc.b, got, tc.want)
		}
	}
	ev := Event{Time: t0, Kind: Released, Behavior: B11, Release: ReleaseRST, Drop: DropReleased}
	if s := ev.String(); !containsAll(s, " release=rst", " drop=released", "B11 released") {
		t.Errorf("Event.String() = %q", s)
	}
	if s := (Event{Time: t0, Kind: MappingCreated}).String(); containsAll(s, "release=") || containsAll(s, "drop=") {
		t.Errorf("Event.String() of a new mapping = %q, names a release or a drop", s)
	}
	for i, n := range filteringNames {
		f, err := ParseFiltering(n)
		if err != nil || f != Filtering(i) || f.String() != n {
			t.Errorf("ParseFiltering(%q) = %v, %v", n, f, err)
		}
	}
	if _, err := ParseFiltering("full-cone"); err == nil {
		t.Error("ParseFiltering(full-cone) accepted")
	}
	if s := Filtering(len(filteringNames)).String(); s != fmt.Sprintf("filtering-%d", len(filteringNames)) {
		t.Errorf("Filtering past the table = %q", s)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// TestStatsAndDrops: the counters of Stats and Drops, port by port.
func TestStatsAndDrops(t *testing.T) {
	c := oneIP("10.0.0.1")
	c.PortsPerInstance = 8
	h := newHarness(t, c)
	const a, b = "198.51.100.1:443", "198.51.100.2:443"
	for i := range 3 {
		h.mustOut(0, TCP, fmt.Sprintf("10.0.0.1:%d", 1000+i), a, SYN) // ports 1024–1026
	}
	h.mustOut(0, TCP, "10.0.0.1:2000", b, SYN) // reuses 1024
	tcp := func() InstanceStats { return h.e.Stats()[0] }
	if s := tcp(); s.Flows != 4 || s.InUse != 3 || s.Peak != 3 || s.PerIP[0].Flows != 4 || s.PerIP[0].InUse != 3 || s.PerIP[0].Peak != 3 || s.PerIP[0].Allocated != 8 {
		t.Fatalf("after 4 flows on 3 ports: %+v", s)
	}
	h.mustOut(time.Second, TCP, "10.0.0.1:1000", a, RST) // on 1024, shared with b's flow
	h.mustOut(time.Second, TCP, "10.0.0.1:1001", a, RST) // alone on 1025
	h.advance(16 * time.Second)
	if s := tcp(); s.InUse != 2 || s.PerIP[0].InUse != 2 || s.Peak != 3 || s.Releases[ReleaseRST] != 2 {
		t.Fatalf("after two RST releases: %+v, want 2 ports in use (1024 still carries a flow), peak 3, 2 RST releases", s)
	}
	h.mustOut(16*time.Second, TCP, "10.0.0.1:2000", b, RST) // the last flow on 1024
	h.advance(31 * time.Second)
	if s := tcp(); s.InUse != 1 || s.PerIP[0].InUse != 1 {
		t.Fatalf("with one flow left: %+v, want 1 port in use", s)
	}
	for i := range 8 {
		h.out(32*time.Second, TCP, fmt.Sprintf("10.0.0.1:%d", 3000+i), a, SYN)
	}
	if s, d := tcp(), h.e.Drops(); s.ExhaustionDrops != 1 || d[DropExhausted] != 1 || s.FirstExhaustion != t0.Add(32*time.Second) {
		t.Errorf("exhaustion (7 ports free toward a, 8 new flows): %d drops in Stats, %d in Drops, first at %v; want 1, 1, +32s", s.ExhaustionDrops, d[DropExhausted], s.FirstExhaustion.Sub(t0))
	}
	// Per-IP stats are kept in frontend order whatever order they appear in.
	var st protoStat
	st.ip(2).flows = 2
	st.ip(0).flows = 0
	st.ip(1).flows = 1
	for j, is := range st.ips {
		if int(is.ip) != j || int(is.flows) != j {
			t.Errorf("protoStat.ips = %+v, want frontends 0, 1, 2 in order", st.ips)
			break
		}
	}
}

// TestVerdictsOfNoInstance: a verdict that belongs to no instance says
// -1, and a drop's event names the endpoints of its side.
func TestVerdictsOfNoInstance(t *testing.T) {
	h := newHarness(t, oneIP("10.0.0.1"))
	h.mustOut(time.Second, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)
	if v, _, err := h.e.Process(Packet{Time: t0, Tuple: Tuple{Proto: TCP, Src: ap("10.0.0.1:1"), Dst: ap("198.51.100.1:443")}}, nil); err == nil || v.Instance != -1 {
		t.Errorf("a packet back in time: %+v, %v; want an error and instance -1", v, err)
	}
	if v, _, _, err := h.e.ProcessReply(Packet{Time: t0, Tuple: Tuple{Proto: TCP, Src: ap("198.51.100.1:443"), Dst: ap("10.0.0.1:1000")}}, nil); err == nil || v.Instance != -1 {
		t.Errorf("a reply back in time: %+v, %v; want an error and instance -1", v, err)
	}
	h.events = nil
	if v := h.in(2*time.Second, TCP, "198.51.100.9:443", "203.0.113.1:1024", ACK); v.Instance != -1 || v.Reason != DropUnsolicited {
		t.Errorf("unsolicited inbound: %+v, want dropped unsolicited, instance -1", v)
	}
	if v := h.in(2*time.Second, TCP, "198.51.100.9:443", "198.51.100.200:1024", ACK); v.Instance != -1 || v.Reason != DropUnsolicited {
		t.Errorf("inbound to an address that is no frontend: %+v, want dropped unsolicited, instance -1", v)
	}
	h.events = h.events[:1]
	if v := h.out(2*time.Second, TCP, "10.9.9.9:1000", "198.51.100.1:443", SYN); v.Instance != -1 || v.Reason != DropNoInstance {
		t.Errorf("from no instance: %+v, want instance -1", v)
	}
	want := []Event{
		{Kind: PacketDropped, Remote: ap("198.51.100.9:443"), SNAT: ap("203.0.113.1:1024"), Drop: DropUnsolicited},
		{Kind: PacketDropped, Inside: ap("10.9.9.9:1000"), Remote: ap("198.51.100.1:443"), Drop: DropNoInstance},
	}
	if len(h.events) != len(want) {
		t.Fatalf("events %v, want %d drops", h.events, len(want))
	}
	for i, w := range want {
		got := h.events[i]
		if got.Kind != w.Kind || got.Inside != w.Inside || got.Remote != w.Remote || got.SNAT != w.SNAT || got.Drop != w.Drop {
			t.Errorf("event %d = %v, want %v", i, got, w)
		}
	}
}

// TestRSTExactlyAtTheFINDeadline: a RST 15 s before the FIN's release time
// does not shorten it (B11: only an earlier time does), so the flow is
// released as a FIN release; 1 ns earlier it is a RST release.
func TestRSTExactlyAtTheFINDeadline(t *testing.T) {
	for _, tc := range []struct {
		rst  time.Duration
		want ReleaseReason
		at   time.Duration
	}{
		{225 * time.Second, ReleaseFIN, 240 * time.Second},
		{225*time.Second - 1, ReleaseRST, 240*time.Second - 1},
	} {
		h := newHarness(t, oneIP("10.0.0.1"))
		h.mustOut(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", FIN|ACK)
		h.mustOut(tc.rst, TCP, "10.0.0.1:1000", "198.51.100.1:443", RST)
		h.advance(300 * time.Second)
		if r := h.releases(); len(r) != 1 || r[0].Release != tc.want || r[0].Time != t0.Add(tc.at) {
			t.Errorf("RST at %v after a FIN at 0: releases %v, want one %v at +%v", tc.rst, r, tc.want, tc.at)
		}
	}
}

// TestReleaseOnABucketEdge: a release time that falls exactly on the start
// of a timing-wheel bucket is honoured at that nanosecond (B13).
func TestReleaseOnABucketEdge(t *testing.T) {
	edge := (t0.UnixNano()>>wheelShift + 40) << wheelShift // a bucket start 40 buckets after t0
	T := time.Unix(0, edge).UTC().Sub(t0)
	for _, probe := range []time.Duration{T - 1, T} {
		h := newHarness(t, oneIP("10.0.0.1"))
		snat := h.mustOut(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)
		h.mustOut(T-15*time.Second, TCP, "10.0.0.1:1000", "198.51.100.1:443", RST)
		v := h.in(probe, TCP, "198.51.100.1:443", snat.String(), ACK)
		if live := v.Action == Translated; live != (probe < T) {
			t.Errorf("reply at the edge %+dns: %v, want translated only before the release time", int64(probe-T), v.Action)
		}
	}
}

// TestC7MemoryBoundaries: a flow reset at idle expiry T is remembered
// until exactly T + idle (C7), and a flow reopened and reset again keeps
// its second memory when the first one's time comes.
func TestC7MemoryBoundaries(t *testing.T) {
	cfg := oneIP("10.0.0.1")
	cfg.TCPResetOnIdle = true
	const in, srv = "10.0.0.1:1000", "198.51.100.1:443"
	idle := 4 * time.Minute
	for _, tc := range []struct {
		late time.Duration
		want Action
	}{{2*idle - 1, Reset}, {2 * idle, Translated}} {
		h := newHarness(t, cfg)
		snat := h.mustOut(0, TCP, in, srv, SYN)
		if v := h.in(0, TCP, srv, snat.String(), SYN|ACK); v.Action != Translated {
			t.Fatal(v)
		}
		if v := h.out(tc.late, TCP, in, srv, ACK); v.Action != tc.want {
			t.Errorf("a late packet at +%v of a flow reset at +%v: %v, want %v", tc.late, idle, v.Action, tc.want)
		}
	}
	// F is reset at 4 min (remembered until 8 min), reopened at 5 min as F2,
	// reset again at 9 min (remembered until 13 min); another flow's reset
	// at 10 min clears memories older than 10 min, not F2's.
	h := newHarness(t, cfg)
	snat := h.mustOut(0, TCP, in, srv, SYN)
	h.in(0, TCP, srv, snat.String(), SYN|ACK)
	h.advance(idle)
	snat2 := h.mustOut(5*time.Minute, TCP, in, srv, SYN)
	h.in(5*time.Minute, TCP, srv, snat2.String(), SYN|ACK)
	g := h.mustOut(6*time.Minute, TCP, "10.0.0.1:2000", srv, SYN)
	h.in(6*time.Minute, TCP, srv, g.String(), SYN|ACK)
	h.advance(10 * time.Minute)
	if v := h.out(11*time.Minute, TCP, in, srv, ACK); v.Action != Reset {
		t.Errorf("a late packet of the reopened flow at 11 min: %v, want reset (remembered until 13 min)", v.Action)
	}
	// F (instance 1) is reset at 4 min, remembered until 8 min; reopened
	// at 5 min as F2 on the same SNAT port, reclaimed at 6 min when
	// instance 1 leaves the pool (remembered until 10 min, B16). G's reset
	// at 8.5 min clears F's old memory, not F2's newer one: F2's late
	// reply at 9 min is dropped as released, not as unsolicited.
	two := cfg
	two.Backends = append(two.Backends, ip("10.0.0.2"))
	h = newHarness(t, two)
	const in2 = "10.0.0.2:1000"
	f := h.mustOut(0, TCP, in2, srv, SYN)
	h.in(0, TCP, srv, f.String(), SYN|ACK)
	g = h.mustOut(30*time.Second+4*time.Minute, TCP, "10.0.0.1:2000", srv, SYN)
	h.in(30*time.Second+4*time.Minute, TCP, srv, g.String(), SYN|ACK)
	f2 := h.mustOut(5*time.Minute, TCP, in2, srv, SYN)
	if f2 != f {
		t.Fatalf("F2 on %v, F was on %v: want the same port", f2, f)
	}
	if err := h.e.SetPool(t0.Add(6*time.Minute), two.Backends[:1], 0); err != nil {
		t.Fatal(err)
	}
	h.advance(30*time.Second + 8*time.Minute)
	if v := h.in(9*time.Minute, TCP, srv, f2.String(), ACK); v.Action != Dropped || v.Reason != DropReleased {
		t.Errorf("F2's late reply at 9 min: %v, want dropped as released (B16, remembered until 10 min)", v)
	}
}

// TestPoolChangesPastTheDefaultTable: a manual allocation takes pools past
// the default table's 1,000 (B4), the default table does not (B3); a pool
// with instances that have no address changes without trouble.
func TestPoolChangesPastTheDefaultTable(t *testing.T) {
	backs := func(n int) []netip.Addr {
		var out []netip.Addr
		for i := range n {
			out = append(out, netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(i%250 + 1)}))
		}
		return out
	}
	c := Config{Frontends: []netip.Addr{ip("203.0.113.1")}, Backends: backs(2), PortsPerInstance: 8}
	e, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetPool(t0, backs(1500), 0); err != nil {
		t.Errorf("manual allocation, pool of 1,500: %v", err)
	}
	c.PortsPerInstance = 0
	if e, err = New(c); err != nil {
		t.Fatal(err)
	}
	if err := e.SetPool(t0, backs(1001), 0); err == nil {
		t.Error("default table, pool of 1,001: accepted")
	}
	c.PoolSize = 5
	if e, err = New(c); err != nil {
		t.Fatal(err)
	}
	if err := e.SetPool(t0, backs(2), 6); err != nil {
		t.Fatal(err)
	}
	pl := e.Plan()
	if len(pl.Instances) != 6 || pl.Instances[1].Inside != backs(2)[1] || pl.Instances[2].Inside.IsValid() || pl.Instances[5].Ports != 1024 {
		t.Errorf("pool of 6 with 2 addresses: %+v", pl.Instances)
	}
}

// TestSmallInstances: an instance of 2 ports (blocks of 2) carries two
// flows to one destination, not three (B6, B9).
func TestSmallInstances(t *testing.T) {
	p := AzureLB()
	p.BlockSize = 2
	c := oneIP("10.0.0.1")
	c.Profile, c.PortsPerInstance = p, 2
	h := newHarness(t, c)
	h.mustOut(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)
	h.mustOut(0, TCP, "10.0.0.1:1001", "198.51.100.1:443", SYN)
	if v := h.out(0, TCP, "10.0.0.1:1002", "198.51.100.1:443", SYN); v.Reason != DropExhausted {
		t.Errorf("third flow on 2 ports: %+v, want exhausted", v)
	}
}

// TestLastBlockOfAnIP: with 7,999 blocks per IP (not a multiple of 64), a
// pool that holds them all leaves a new instance without ports, never
// with a block past the IP's range (B4, B16).
func TestLastBlockOfAnIP(t *testing.T) {
	p := AzureLB()
	p.PortsPerIP = 63992
	c := oneIP("10.0.0.1")
	c.Profile, c.PortsPerInstance, c.PoolSize = p, 8, 7999
	e, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetPool(t0, c.Backends, 8000); err != nil {
		t.Fatal(err)
	}
	pl := e.Plan()
	if last := pl.Instances[7999]; last.Ports != 0 || len(last.Ranges) != 0 || pl.Frontends[0].Free != 0 {
		t.Errorf("instance 7,999 of a full IP: %+v, free %d; want no ports", last, pl.Frontends[0].Free)
	}
	if r := pl.Instances[7998].Ranges; len(r) != 1 || r[0].Last != 1024+63992-1 {
		t.Errorf("instance 7,998: %+v, want the IP's last block", r)
	}
}

// TestFlowIndexRandomized: a small open-addressing index under random
// inserts and removes, with hashes crowded near the end of the table so
// that probe runs wrap around, finds every entry it holds and none it
// removed.
func TestFlowIndexRandomized(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := newFlowIndex(8)
	live := map[uint32]uint64{}
	find := func(h uint64, id uint32) bool {
		for i := uint64(uint32(h)) & x.mask; x.slots[i] != 0; i = (i + 1) & x.mask {
			if x.slots[i] == uint64(uint32(h))<<32|uint64(id+1) {
				return true
			}
		}
		return false
	}
	next := uint32(0)
	for op := range 20000 {
		if len(live) < 10 && r.IntN(2) == 0 || len(live) == 0 {
			h := uint64(len(x.slots)-1-r.IntN(4)) | uint64(r.IntN(4))<<40 // homes at the table's end
			x.insert(h, next)
			live[next] = h
			next++
		} else {
			ids := make([]uint32, 0, len(live))
			for id := range live {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			id := ids[r.IntN(len(ids))]
			x.remove(live[id], id)
			delete(live, id)
			if find(uint64(uint32(live[id])), id) {
				t.Fatalf("op %d: removed %d still found", op, id)
			}
		}
		for id, h := range live {
			if !find(h, id) {
				t.Fatalf("op %d: entry %d (home %d) lost among %v", op, id, uint32(h)&uint32(x.mask), x.slots)
			}
		}
		if x.n != len(live) {
			t.Fatalf("op %d: index counts %d entries, holds %d", op, x.n, len(live))
		}
	}
}

// TestConfigLimits: each limit of a configuration, accepted on one side
// and refused on the other.
func TestConfigLimits(t *testing.T) {
	fronts := func(n int) []netip.Addr {
		out := make([]netip.Addr, n)
		for i := range out {
			out[i] = netip.AddrFrom4([4]byte{203, byte(i >> 8), byte(i), 1})
		}
		return out
	}
	rfc := func(mod func(*Profile)) Profile { p := RFC(); mod(&p); return p }
	linux := func(est time.Duration) Profile { ct := DefaultConntrack(); ct.Established = est; return Linux(ct) }
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string // "" when accepted
	}{
		{"azure-natgw, 16 public IPs", Config{Profile: AzureNATGW(), Frontends: fronts(16)}, ""},
		{"azure-natgw, 17 public IPs", Config{Profile: AzureNATGW(), Frontends: fronts(17)}, "frontends"},
		{"1,024 frontends", Config{Frontends: fronts(1024)}, ""},
		{"1,025 frontends", Config{Frontends: fronts(1025)}, "frontends"},
		{"azure-lb, TCP only", Config{Frontends: fronts(1), Protocols: TCPOnly}, ""},
		{"azure-natgw, TCP only", Config{Profile: AzureNATGW(), Frontends: fronts(1), Protocols: TCPOnly}, "protocol"},
		{"rfc, endpoint-independent filtering", Config{Profile: rfc(func(p *Profile) { p.Filtering = FilterEndpointIndependent }), Frontends: fronts(1)}, ""},
		{"an unknown filtering", Config{Profile: rfc(func(p *Profile) { p.Filtering = FilterEndpointIndependent + 1 }), Frontends: fronts(1)}, "profile rfc: strategy"},
		{"an unknown timers strategy", Config{Profile: rfc(func(p *Profile) { p.Timers = TimersRFC + 1 }), Frontends: fronts(1)}, "profile rfc: strategy"},
		{"an unknown quota", Config{Profile: rfc(func(p *Profile) { p.Quota = QuotaShared + 1 }), Frontends: fronts(1)}, "profile rfc: strategy"},
		{"an unknown port choice", Config{Profile: rfc(func(p *Profile) { p.PortChoice = PortParity + 1 }), Frontends: fronts(1)}, "profile rfc: strategy"},
		{"an unknown mapping", Config{Profile: rfc(func(p *Profile) { p.Mapping = MappingFiveTuple + 1 }), Frontends: fronts(1)}, "profile rfc: strategy"},
		{"rfc from port 2", Config{Profile: rfc(func(p *Profile) { p.FirstPort, p.PortsPerIP = 2, 65534 }), Frontends: fronts(1)}, "profile rfc: port range"},
		{"linux, ESTABLISHED at the longest hold", Config{Profile: linux(maxHold), Frontends: fronts(1), Backends: []netip.Addr{ip("10.0.0.1")}}, ""},
		{"linux, ESTABLISHED past it", Config{Profile: linux(maxHold + 1), Frontends: fronts(1), Backends: []netip.Addr{ip("10.0.0.1")}}, "profile linux: timer"},
		{"the second backend twice", Config{Frontends: fronts(1), Backends: []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.2")}}, "backend #3"},
	} {
		if tc.cfg.Backends == nil {
			tc.cfg.Backends = []netip.Addr{ip("10.0.0.1")}
		}
		_, err := New(tc.cfg)
		var ce *ConfigError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v, want accepted", tc.name, err)
		case tc.field != "" && (!errors.As(err, &ce) || ce.Field != tc.field):
			t.Errorf("%s: %v, want a *ConfigError on %q", tc.name, err, tc.field)
		}
	}
	if _, ok := behaviorEnd.About(); ok || behaviorEnd.Title() != "" || R7.Title() == "" {
		t.Errorf("About/Title past the last ID: %v %q; R7's title %q", ok, behaviorEnd.Title(), R7.Title())
	}
	if a, ok := R7.About(); !ok || a.ID != R7 {
		t.Errorf("R7.About() = %+v, %v", a, ok)
	}
}

// TestTakeNeverPassesTheLastBlock: an IP of 7,999 blocks leaves the last
// bit of its last bitmap word unused; a search that starts among used
// blocks finds none free rather than that bit (B1, B4).
func TestTakeNeverPassesTheLastBlock(t *testing.T) {
	p := AzureLB()
	p.PortsPerIP = 63992
	a := newAllocator(&p, 1, 1, 8)
	for g := range a.total() {
		a.used[g/64] |= 1 << (g % 64)
	}
	a.firstFree = 7990
	if got := a.take(1); got != nil {
		t.Errorf("take(1) on a full IP of 7,999 blocks = %v, want nothing", got)
	}
}

// TestSharedInventories: azure-natgw's instances share every frontend IP's
// ports (G1); rfc's use those of the IP paired with them (R3).
func TestSharedInventories(t *testing.T) {
	fr := []netip.Addr{ip("203.0.113.1"), ip("203.0.113.2")}
	bk := []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")}
	e, err := New(Config{Profile: AzureNATGW(), Frontends: fr, Backends: bk, PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	pl := e.Plan()
	wantRanges := []PortRange{{fr[0], 1024, 65535}, {fr[1], 1024, 65535}}
	if !pl.Shared || pl.PerInstance != 2*64512 || len(pl.Instances) != 4 || pl.MaxPool != 4 {
		t.Fatalf("azure-natgw plan: %+v", pl)
	}
	for i, in := range pl.Instances {
		if in.Ports != 2*64512 || !slices.Equal(in.Ranges, wantRanges) || (i < 3) != in.Inside.IsValid() || (i < 3 && in.Inside != bk[i]) {
			t.Errorf("azure-natgw instance %d: %+v", i, in)
		}
	}
	for _, f := range pl.Frontends {
		if f.Free != 64512 || f.Allocated != 0 {
			t.Errorf("azure-natgw frontend %+v, want 64,512 free, none handed out", f)
		}
	}
	for _, s := range e.Stats() {
		if s.Allocated != 2*64512 || len(s.PerIP) != 2 || s.PerIP[0].Allocated != 64512 || s.PerIP[1].IP != fr[1] {
			t.Errorf("azure-natgw stats %+v", s)
		}
	}
	r, err := New(Config{Profile: RFC(), Frontends: fr, Backends: bk})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Stats() {
		if s.Allocated != 65535 || len(s.PerIP) != 1 || s.PerIP[0].IP != fr[s.Instance%2] || s.PerIP[0].Allocated != 65535 {
			t.Errorf("rfc stats of instance %d: %+v, want the paired IP %v only", s.Instance, s, fr[s.Instance%2])
		}
	}
}

// TestProfileSettings: settings a profile does not have, and the rfc
// profile's timer minimums (R4–R6), refused with the item that says so.
func TestProfileSettings(t *testing.T) {
	fr := []netip.Addr{ip("203.0.113.1")}
	bk := []netip.Addr{ip("10.0.0.1")}
	rfc := func(mod func(*RFCTimers), echo bool) Profile {
		p := RFC()
		p.ICMPEcho = echo
		mod(&p.RFC)
		return p
	}
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string
		b     Behavior
	}{
		{"azure-lb without frontends", Config{Backends: bk}, "frontends", B1},
		{"azure-natgw without frontends", Config{Profile: AzureNATGW(), Backends: bk}, "frontends", G1},
		{"rfc without frontends", Config{Profile: RFC(), Backends: bk}, "frontends", R3},
		{"azure-natgw with ports per instance", Config{Profile: AzureNATGW(), Frontends: fr, Backends: bk, PortsPerInstance: 8}, "ports per instance", G1},
		{"rfc with ports per instance", Config{Profile: RFC(), Frontends: fr, Backends: bk, PortsPerInstance: 8}, "ports per instance", R3},
		{"azure-natgw, idle 3 min", Config{Profile: AzureNATGW(), Frontends: fr, Backends: bk, IdleTimeout: 3 * time.Minute}, "idle timeout", G5},
		{"azure-lb, idle 3 min", Config{Frontends: fr, Backends: bk, IdleTimeout: 3 * time.Minute}, "idle timeout", B12},
		{"rfc with an idle timeout", Config{Profile: RFC(), Frontends: fr, Backends: bk, IdleTimeout: 4 * time.Minute}, "idle timeout", NoBehavior},
		{"rfc without one", Config{Profile: RFC(), Frontends: fr, Backends: bk}, "", NoBehavior},
		{"azure-natgw with tcpResetOnIdle", Config{Profile: AzureNATGW(), Frontends: fr, Backends: bk, TCPResetOnIdle: true}, "tcp reset on idle", B14},
		{"a backend that is a frontend", Config{Frontends: fr, Backends: []netip.Addr{ip("10.0.0.1"), fr[0]}}, "backend #2", NoBehavior},
		{"rfc, UDP timer 2 min", Config{Profile: rfc(func(r *RFCTimers) { r.UDP = 2 * time.Minute }, true), Frontends: fr, Backends: bk}, "", NoBehavior},
		{"rfc, UDP timer under 2 min", Config{Profile: rfc(func(r *RFCTimers) { r.UDP = 2*time.Minute - 1 }, true), Frontends: fr, Backends: bk}, "profile rfc: UDP mapping timer", R4},
		{"rfc, established 124 min", Config{Profile: rfc(func(r *RFCTimers) { r.TCPEstablished = 124 * time.Minute }, true), Frontends: fr, Backends: bk}, "", NoBehavior},
		{"rfc, established under 124 min", Config{Profile: rfc(func(r *RFCTimers) { r.TCPEstablished = 124*time.Minute - 1 }, true), Frontends: fr, Backends: bk}, "profile rfc: TCP established idle timeout", R5},
		{"rfc, transitory 4 min", Config{Profile: rfc(func(r *RFCTimers) { r.TCPTransitory = 4 * time.Minute }, true), Frontends: fr, Backends: bk}, "", NoBehavior},
		{"rfc, transitory under 4 min", Config{Profile: rfc(func(r *RFCTimers) { r.TCPTransitory = 4*time.Minute - 1 }, true), Frontends: fr, Backends: bk}, "profile rfc: TCP transitory idle timeout", R5},
		{"rfc, ICMP 60 s", Config{Profile: rfc(func(r *RFCTimers) { r.ICMP = time.Minute }, true), Frontends: fr, Backends: bk}, "", NoBehavior},
		{"rfc, ICMP under 60 s", Config{Profile: rfc(func(r *RFCTimers) { r.ICMP = time.Minute - 1 }, true), Frontends: fr, Backends: bk}, "profile rfc: ICMP query timer", R6},
		{"rfc without ICMP echo, no ICMP timer", Config{Profile: rfc(func(r *RFCTimers) { r.ICMP = 0 }, false), Frontends: fr, Backends: bk}, "", NoBehavior},
	} {
		_, err := New(tc.cfg)
		var ce *ConfigError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v, want accepted", tc.name, err)
		case tc.field != "" && (!errors.As(err, &ce) || ce.Field != tc.field || ce.Behavior != tc.b):
			t.Errorf("%s: %v, want a *ConfigError on %q (%v)", tc.name, err, tc.field, tc.b)
		}
	}
}

// TestConntrackNumbers: the kernel defaults of SEMANTICS.md L5–L7, a
// snapshot written by String read back the same, and an error without a
// line says none.
func TestConntrackNumbers(t *testing.T) {
	s := time.Second
	want := Conntrack{SynSent: 120 * s, SynRecv: 60 * s, Established: 432000 * s, FinWait: 120 * s, CloseWait: 60 * s,
		LastAck: 30 * s, TimeWait: 120 * s, Close: 10 * s, Unacknowledged: 300 * s, UDP: 30 * s, UDPStream: 120 * s,
		ICMP: 30 * s, StreamAfter: 2 * s, Loose: true}
	if got := DefaultConntrack(); got != want {
		t.Errorf("DefaultConntrack() = %+v, want %+v", got, want)
	}
	c := want
	c.Established, c.UDP, c.Loose = 7200*s, 45*s, false
	back, err := ParseSysctl(strings.NewReader(c.String()), "written")
	if err != nil || back != c {
		t.Errorf("ParseSysctl(String()) = %+v, %v; want %+v", back, err, c)
	}
	if _, err := ParseSysctl(strings.NewReader("net.ipv4.ip_forward = 1\n"), "snap.txt"); err == nil || !strings.HasPrefix(err.Error(), "sysctl snap.txt: no ") {
		t.Errorf("a snapshot without conntrack: %v, want \"sysctl snap.txt: no …\" (no line)", err)
	}
}

// TestOtherProfilesInTheEngine: paths of the engine that only the other
// profiles take (their own suites run them against their models; these
// pin them in this package too).
func TestOtherProfilesInTheEngine(t *testing.T) {
	fr := []netip.Addr{ip("203.0.113.1")}
	bk := []netip.Addr{ip("10.0.0.1")}
	open := func(p Profile) *harness {
		t.Helper()
		return newHarness(t, Config{Profile: p, Frontends: fr, Backends: bk})
	}
	// rfc: ICMP echo is translated (R6); one UDP mapping for every
	// destination (R1), and a reply from a destination it sent to passes
	// address-and-port filtering (R2); a second TCP connection of one
	// inside endpoint reuses its public endpoint (an R1 event).
	h := open(RFC())
	if v := h.out(0, ICMP, "10.0.0.1:7", "198.51.100.1:0", 0); v.Action != Translated {
		t.Errorf("rfc: ICMP echo %v, want translated (R6)", v)
	}
	a := h.mustOut(0, UDP, "10.0.0.1:5000", "198.51.100.1:53", 0)
	b := h.mustOut(0, UDP, "10.0.0.1:5000", "198.51.100.2:53", 0)
	if a != b {
		t.Errorf("rfc: one inside endpoint mapped to %v and %v, want one mapping (R1)", a, b)
	}
	if v := h.in(time.Second, UDP, "198.51.100.2:53", b.String(), 0); v.Action != Translated {
		t.Errorf("rfc: a reply from the second destination %v, want translated (R2)", v)
	}
	h.mustOut(time.Second, TCP, "10.0.0.1:6000", "198.51.100.1:443", SYN)
	h.mustOut(time.Second, TCP, "10.0.0.1:6000", "198.51.100.2:443", SYN) // a second connection of one endpoint
	reused := false
	for _, ev := range h.events {
		reused = reused || ev.Kind == MappingReused && ev.Behavior == R1
	}
	if !reused {
		t.Errorf("rfc: no mapping-reused event citing R1 in %v", h.events)
	}
	// azure-natgw: a TCP flow with no answer is closed after 30 s (G4), a
	// UDP one is not; a TCP packet with no flow is answered with a RST
	// (G6), a UDP one dropped.
	for _, tc := range []struct {
		proto Proto
		at    time.Duration
		want  Action
	}{{TCP, 30*time.Second - 1, Translated}, {TCP, 30 * time.Second, Reset}, {UDP, 30 * time.Second, Translated}} {
		h := open(AzureNATGW())
		snat := h.mustOut(0, tc.proto, "10.0.0.1:5000", "198.51.100.1:443", SYN)
		if v := h.in(tc.at, tc.proto, "198.51.100.1:443", snat.String(), SYN|ACK); v.Action != tc.want {
			t.Errorf("azure-natgw: a %v reply %v after the first packet: %v, want %v (G4, G6)", tc.proto, tc.at, v.Action, tc.want)
		}
	}
	h = open(AzureNATGW())
	if v := h.in(0, UDP, "198.51.100.1:53", "203.0.113.1:2000", 0); v.Action != Dropped {
		t.Errorf("azure-natgw: unsolicited UDP %v, want dropped", v.Action)
	}
}

func TestVerdictStringAndFlags(t *testing.T) {
	tu := Tuple{Proto: TCP, Src: ap("203.0.113.1:1024"), Dst: ap("198.51.100.1:443")}
	for _, tc := range []struct {
		v    Verdict
		want string
	}{
		{Verdict{Behavior: L2, Action: Translated, Instance: 0, Tuple: tu, NewFlow: true}, "L2 translated inst=0 tcp 203.0.113.1:1024->198.51.100.1:443 new"},
		{Verdict{Behavior: R7, Action: Hairpinned, Instance: 1, Tuple: tu}, "R7 hairpinned inst=1 tcp 203.0.113.1:1024->198.51.100.1:443"},
		{Verdict{Behavior: G6, Action: Reset, Instance: -1, Reason: DropUnsolicited}, "G6 reset inst=-1 unsolicited"},
	} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("Verdict.String() = %q, want %q", got, tc.want)
		}
	}
	for _, tc := range []struct {
		f, g TCPFlags
		want bool
	}{{SYN | ACK, SYN, true}, {SYN | ACK, SYN | ACK, true}, {SYN, SYN | ACK, false}, {ACK, FIN, false}} {
		if got := tc.f.Has(tc.g); got != tc.want {
			t.Errorf("%v.Has(%v) = %v, want %v", tc.f, tc.g, got, tc.want)
		}
	}
}

// TestPeerChunksFreedAlone: dropping a mapping with several chunks of peer
// ports frees its chunks only; another mapping's ports stay, also once
// the freed chunks are reused.
func TestPeerChunksFreedAlone(t *testing.T) {
	s := newPeerSet()
	add := func(id uint32, from, n int) {
		for p := from; p < from+n; p++ {
			s.add(id, uint16(p))
		}
	}
	add(1, 1000, 3*peersPerChunk)
	add(2, 2000, 3*peersPerChunk)
	add(1, 1100, 2*peersPerChunk) // interleaved chunks
	s.drop(1)
	add(3, 3000, 6*peersPerChunk) // reuses 1's chunks
	for p := 2000; p < 2000+3*peersPerChunk; p++ {
		if !s.contains(2, uint16(p)) {
			t.Fatalf("mapping 2 lost port %d", p)
		}
	}
	for p := 1000; p < 1000+3*peersPerChunk; p++ {
		if s.contains(1, uint16(p)) || s.contains(2, uint16(p)) {
			t.Fatalf("port %d of the dropped mapping still found", p)
		}
	}
	if !s.contains(3, 3000+6*peersPerChunk-1) {
		t.Fatal("mapping 3 lacks its last port")
	}
}

// TestGatewayResetToNoFlow: azure-natgw answers a TCP packet with no flow
// with a RST to its sender (G6), from either side: the RST travels back
// the way the packet came, with the tuple reversed, and its event names
// the sender's side (inside endpoint and remote for an outbound packet,
// remote and SNAT endpoint for an inbound one) and the instance (none
// inbound); a RST is never answered.
func TestGatewayResetToNoFlow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dir      Dir
		src, dst string
		flags    TCPFlags
		want     Verdict
		emit     []Packet
		ev       Event
		noEvent  bool
	}{
		{name: "outbound ACK", dir: Outbound, src: "10.0.0.2:5000", dst: "198.51.100.1:443", flags: ACK,
			want: Verdict{Action: Reset, Reason: DropUnsolicited, Behavior: G6, Instance: 1},
			emit: []Packet{{Dir: Inbound, Tuple: Tuple{Proto: TCP, Src: ap("198.51.100.1:443"), Dst: ap("10.0.0.2:5000")}, Flags: RST | ACK}},
			ev:   Event{Kind: ResetSent, Behavior: G6, Instance: 1, Proto: TCP, Inside: ap("10.0.0.2:5000"), Remote: ap("198.51.100.1:443")}},
		{name: "inbound SYN", dir: Inbound, src: "198.51.100.1:443", dst: "203.0.113.1:2000", flags: SYN,
			want: Verdict{Action: Reset, Reason: DropUnsolicited, Behavior: G6, Instance: -1},
			emit: []Packet{{Dir: Outbound, Tuple: Tuple{Proto: TCP, Src: ap("203.0.113.1:2000"), Dst: ap("198.51.100.1:443")}, Flags: RST | ACK}},
			ev:   Event{Kind: ResetSent, Behavior: G6, Instance: -1, Proto: TCP, Remote: ap("198.51.100.1:443"), SNAT: ap("203.0.113.1:2000")}},
		{name: "inbound RST", dir: Inbound, src: "198.51.100.1:443", dst: "203.0.113.1:2000", flags: RST,
			want: Verdict{Action: Dropped, Reason: DropUnsolicited, Behavior: G6, Instance: -1}, noEvent: true},
		{name: "outbound RST", dir: Outbound, src: "10.0.0.2:5000", dst: "198.51.100.1:443", flags: RST | ACK,
			want: Verdict{Action: Dropped, Reason: DropUnsolicited, Behavior: G6, Instance: 1}, noEvent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{Profile: AzureNATGW(), Frontends: []netip.Addr{ip("203.0.113.1")},
				Backends: []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2")}})
			v := h.pkt(time.Second, tc.dir, TCP, tc.src, tc.dst, tc.flags)
			if v != tc.want {
				t.Errorf("verdict %v, want %v", v, tc.want)
			}
			for i := range tc.emit {
				tc.emit[i].Time = t0.Add(time.Second)
			}
			if !slices.Equal(h.emit, tc.emit) {
				t.Errorf("sent %v, want %v", h.emit, tc.emit)
			}
			var resets []Event
			for _, ev := range h.events {
				if ev.Kind == ResetSent {
					resets = append(resets, ev)
				}
			}
			if tc.noEvent {
				if len(resets) > 0 {
					t.Errorf("events %v, want no reset-sent", resets)
				}
				return
			}
			tc.ev.Time = t0.Add(time.Second)
			if len(resets) != 1 || resets[0] != tc.ev {
				t.Errorf("events %v, want [%v]", resets, tc.ev)
			}
		})
	}
}

// TestWarmChangesNothing: Warm and WarmReply only read. An engine that
// warms every packet (and the reply to it) before and after processing it
// gives the same verdicts and packets as one that never warms, on TCP,
// UDP, ICMP and IPv6 packets, inbound ones to a frontend and to another
// address; warming the packet of the flow just created (the last in the
// slab) reads that flow and no further.
func TestWarmChangesNothing(t *testing.T) {
	cfg := Config{Frontends: []netip.Addr{ip("203.0.113.1")}, Backends: []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2")}}
	var pkts []Packet
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 3000 {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		proto := []Proto{TCP, TCP, UDP, ICMP}[r.IntN(4)]
		in := netip.AddrPortFrom(cfg.Backends[r.IntN(2)], uint16(2000+r.IntN(300)))
		srv := netip.AddrPortFrom(ip("198.51.100.1"), uint16(443+r.IntN(3)))
		switch r.IntN(6) {
		case 0, 1, 2:
			pkts = append(pkts, Packet{Time: at, Dir: Outbound, Tuple: Tuple{Proto: proto, Src: in, Dst: srv}, Flags: SYN})
		case 3:
			pkts = append(pkts, Packet{Time: at, Dir: Inbound, Tuple: Tuple{Proto: proto, Src: srv,
				Dst: netip.AddrPortFrom(ip("203.0.113.1"), uint16(1024+r.IntN(40)))}, Flags: ACK})
		case 4:
			pkts = append(pkts, Packet{Time: at, Dir: Inbound, Tuple: Tuple{Proto: proto, Src: srv,
				Dst: netip.AddrPortFrom(ip("203.0.113.9"), 1024)}, Flags: ACK})
		default:
			pkts = append(pkts, Packet{Time: at, Dir: []Dir{Inbound, Outbound}[r.IntN(2)], Tuple: Tuple{Proto: proto,
				Src: ap("[2001:db8::1]:2000"), Dst: ap("[2001:db8::2]:443")}, Flags: SYN})
		}
	}
	run := func(warm bool) string {
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var log strings.Builder
		for i := range pkts {
			p := pkts[i]
			reply := Packet{Time: p.Time, Dir: Inbound, Tuple: p.Tuple.Reverse(), Flags: ACK}
			if warm {
				e.Warm(&p)
				e.WarmReply(&reply)
			}
			v, emit, err := e.Process(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if warm {
				e.Warm(&p)
				e.WarmReply(&reply)
			}
			fmt.Fprintln(&log, v, emit)
		}
		return log.String()
	}
	if a, b := run(false), run(true); a != b {
		t.Errorf("warming changed the verdicts")
	}
}

// TestL4ProbeRounds pins linux's probe for a new flow whose source port
// it cannot keep (L2, L4), restated here from SEMANTICS.md: rounds of
// min(n, 128), 64, 32, 16 and 8 consecutive slots (mod the instance's n
// slots), each from the offset Engine.probe gives that round, the first
// free slot taken; after a round as long as the range, or of fewer than
// 16 slots, the flow is refused. 1,100 flows to one server from ports
// outside the instance's range fill instances of 1,024, 24 and 8 ports:
// every choice and every refusal must match, and the 1,024-port instance
// refuses flows while ports are free.
func TestL4ProbeRounds(t *testing.T) {
	for _, n := range []int{1024, 24, 8} {
		h := newHarness(t, Config{Profile: Linux(DefaultConntrack()), Frontends: []netip.Addr{ip("203.0.113.1")},
			Backends: []netip.Addr{ip("10.0.0.1")}, PortsPerInstance: n})
		taken := make([]bool, n)
		refused, took := 0, 0
		for j := range 1100 {
			src := netip.AddrPortFrom(ip("10.0.0.1"), uint16(3000+j))
			k := packKey(v4(src.Addr()), src.Port(), v4(ip("198.51.100.1")), 443, TCP)
			want := -1
			attempts := min(n, 128)
		rounds:
			for round := 0; ; round++ {
				off := int(h.e.probe(k, round) & 0xffff)
				for i := 0; i < attempts; i++ {
					if s := (off + i) % n; !taken[s] {
						want = s
						break rounds
					}
				}
				if attempts == n || attempts < 16 {
					break
				}
				attempts /= 2
			}
			v := h.out(time.Duration(j)*time.Microsecond, TCP, src.String(), "198.51.100.1:443", SYN)
			if want < 0 {
				if took < n {
					refused++ // with ports free
				}
				if v.Action != Dropped || v.Reason != DropExhausted {
					t.Fatalf("n=%d, flow %d: %v, want refused (every probe round found its slots taken)", n, j, v)
				}
				continue
			}
			took++
			taken[want] = true
			if v.Action != Translated || v.Tuple.Src != netip.AddrPortFrom(ip("203.0.113.1"), uint16(1024+want)) {
				t.Fatalf("n=%d, flow %d: %v, want translated from port %d (slot %d)", n, j, v, 1024+want, want)
			}
		}
		switch {
		case took != n:
			t.Errorf("n=%d: %d flows took ports, want every port", n, took)
		case n > 128 && refused == 0:
			t.Errorf("n=%d: no flow refused while ports were free (L4)", n)
		case n <= 128 && refused > 0:
			t.Errorf("n=%d: %d flows refused while ports were free: one round covers the range", n, refused)
		}
	}
}

// gatewayChoice restates azure-natgw's port choice (G2, G3) for the test:
// up to 64 draws (public IP = hash mod IPs, port = 1024 + hash>>24 mod
// ports, from Engine.probe's hash of each round) of an endpoint with no
// flow to the destination on an IP under the cap; then a scan from the
// 65th draw: IPs from its IP onward, ports from its port onward, wrapping.
// It returns the endpoint (invalid: refused) and whether the scan found it.
func gatewayChoice(e *Engine, k key, fronts []netip.Addr, ports, limit int,
	taken map[netip.AddrPort]bool, perIP map[netip.Addr]int) (netip.AddrPort, bool) {
	nIP, n := uint64(len(fronts)), uint64(ports)
	at := func(hash, i, j uint64) netip.AddrPort {
		return netip.AddrPortFrom(fronts[(hash+i)%nIP], uint16(1024+(hash>>24+j)%n))
	}
	for round := range 64 {
		if a := at(e.probe(k, round), 0, 0); perIP[a.Addr()] < limit && !taken[a] {
			return a, false
		}
	}
	hash := e.probe(k, 64)
	for i := range nIP {
		if perIP[at(hash, i, 0).Addr()] >= limit {
			continue
		}
		for j := range n {
			if a := at(hash, i, j); !taken[a] {
				return a, true
			}
		}
	}
	return netip.AddrPort{}, false
}

// TestG2RandomThenScan pins azure-natgw's port choice (gatewayChoice).
// Flows to one server through 3 IPs of 256 ports, with a cap of 250 and
// of 256 flows per IP, fill every IP to the cap: late flows find their
// port only by the scan, the last 20 none. Then, on 3 IPs of 8 ports, the
// first IP is filled and the two others left with one port each; a flow
// whose draws all miss and whose scan starts on the full IP must move on
// to the next IP in order, not the one before.
func TestG2RandomThenScan(t *testing.T) {
	fronts := []netip.Addr{ip("203.0.113.1"), ip("203.0.113.2"), ip("203.0.113.3")}
	srv := ip("198.51.100.1")
	keyOf := func(port uint16) key { return packKey(v4(ip("10.0.0.1")), port, v4(srv), 443, TCP) }
	gateway := func(ports, limit int) *harness {
		p := AzureNATGW()
		p.PortsPerIP, p.Gateway.MaxPerDestination = ports, limit
		return newHarness(t, Config{Profile: p, Frontends: fronts, Backends: []netip.Addr{ip("10.0.0.1")}})
	}
	send := func(h *harness, port uint16, want netip.AddrPort) {
		t.Helper()
		v := h.out(time.Millisecond, TCP, netip.AddrPortFrom(ip("10.0.0.1"), port).String(), "198.51.100.1:443", SYN)
		switch {
		case !want.IsValid() && (v.Action != Dropped || v.Reason != DropExhausted):
			t.Fatalf("from port %d: %v, want refused", port, v)
		case want.IsValid() && (v.Action != Translated || v.Tuple.Src != want):
			t.Fatalf("from port %d: %v, want translated from %v", port, v, want)
		}
	}
	for _, limit := range []int{250, 256} {
		h := gateway(256, limit)
		taken, perIP := map[netip.AddrPort]bool{}, map[netip.Addr]int{}
		scanned, refused := 0, 0
		for j := range 3*limit + 20 {
			want, scan := gatewayChoice(h.e, keyOf(uint16(3000+j)), fronts, 256, limit, taken, perIP)
			send(h, uint16(3000+j), want)
			if !want.IsValid() {
				refused++
				continue
			}
			if scan {
				scanned++
			}
			taken[want] = true
			perIP[want.Addr()]++
		}
		if scanned == 0 || refused != 20 {
			t.Errorf("cap %d: %d flows found their port by the scan, %d refused: want some, and 20", limit, scanned, refused)
		}
	}

	// The directed case: inside ports are chosen (by the restatement) so
	// that the first IP fills, then the others keep one port each.
	h := gateway(8, 8)
	taken, perIP := map[netip.AddrPort]bool{}, map[netip.Addr]int{}
	port := uint16(3000)
	next := func(ok func(p uint16, a netip.AddrPort, scan bool) bool) (uint16, netip.AddrPort) {
		t.Helper()
		for ; port < 60000; port++ {
			if a, scan := gatewayChoice(h.e, keyOf(port), fronts, 8, 8, taken, perIP); a.IsValid() && ok(port, a, scan) {
				port++
				return port - 1, a
			}
		}
		t.Fatal("no inside port gives the wanted choice")
		return 0, netip.AddrPort{}
	}
	for perIP[fronts[0]] < 8 || perIP[fronts[1]] < 7 || perIP[fronts[2]] < 7 {
		p, a := next(func(_ uint16, a netip.AddrPort, _ bool) bool { return a.Addr() == fronts[0] || perIP[a.Addr()] < 7 })
		send(h, p, a)
		taken[a] = true
		perIP[a.Addr()]++
	}
	// A scan from the full first IP: the next one in order is the second.
	p, a := next(func(p uint16, a netip.AddrPort, scan bool) bool { return scan && h.e.probe(keyOf(p), 64)%3 == 0 })
	if a.Addr() != fronts[1] {
		t.Fatalf("restated choice %v, want the second IP", a)
	}
	send(h, p, a)
}

// TestPortBitsLowest pins portBits.lowest, rfc's search for a free port
// (R3): the lowest port in [lo, hi] not in the set, of the wanted parity
// or of any; ports below lo in lo's word and a free port past hi do not
// count; the range's last word is searched.
func TestPortBitsLowest(t *testing.T) {
	except := func(free ...int) *portBits {
		var b portBits
		for i := range b {
			b[i] = ^uint64(0)
		}
		for _, p := range free {
			b.clear(p)
		}
		return &b
	}
	for _, tc := range []struct {
		name         string
		b            *portBits
		lo, hi, want int
		any          bool
		got          int
	}{
		{"empty, low range, odd", &portBits{}, 1, 1023, 1001, false, 1},
		{"empty, low range, even", &portBits{}, 1, 1023, 1000, false, 2},
		{"empty, low range, any", &portBits{}, 1, 1023, 1000, true, 1},
		{"empty, high range, even", &portBits{}, 1024, 65535, 40000, false, 1024},
		{"empty, high range, odd", &portBits{}, 1024, 65535, 40001, false, 1025},
		{"lo inside a word, odd", &portBits{}, 1027, 65535, 1, false, 1027},
		{"lo inside a word, even", &portBits{}, 1027, 65535, 2, false, 1028},
		{"lo inside a word, any", &portBits{}, 1027, 65535, 2, true, 1027},
		{"free below lo only", except(1024, 1025, 1026), 1027, 65535, 2, true, -1},
		{"the range's last port", except(65535), 1024, 65535, 1, false, 65535},
		{"the range's last port, even wanted", except(65535), 1024, 65535, 2, false, -1},
		{"the range's last port, any", except(65535), 1024, 65535, 2, true, 65535},
		{"the last word's first port", except(65472), 1024, 65535, 2, false, 65472},
		{"free past hi only", except(1024), 1, 1023, 2, false, -1},
		{"free past hi in hi's word", except(1031), 1024, 1030, 1, false, -1},
		{"hi itself", except(1023, 1024), 1, 1023, 1, false, 1023},
		{"the next word", except(1088, 1089), 1024, 65535, 1, false, 1089},
		{"parity, then none", except(1090), 1024, 65535, 1, false, -1},
		{"any parity", except(1090), 1024, 65535, 1, true, 1090},
	} {
		if got := tc.b.lowest(tc.lo, tc.hi, tc.want, tc.any); got != tc.got {
			t.Errorf("%s: lowest(%d, %d, %d, %v) = %d, want %d", tc.name, tc.lo, tc.hi, tc.want, tc.any, got, tc.got)
		}
	}
}

// TestL7StreamAfterBoundary: a replied UDP flow gets the stream timeout
// (120 s) only for a packet more than StreamAfter (2 s) after its start
// (L7): a packet at exactly 2 s leaves it the 30 s timeout, 1 ns later
// the stream one.
func TestL7StreamAfterBoundary(t *testing.T) {
	for _, tc := range []struct {
		at      time.Duration
		release time.Duration
	}{
		{2 * time.Second, 32 * time.Second},
		{2*time.Second + 1, 122*time.Second + 1},
	} {
		h := newHarness(t, Config{Profile: Linux(DefaultConntrack()), Frontends: []netip.Addr{ip("203.0.113.1")},
			Backends: []netip.Addr{ip("10.0.0.1")}})
		snat := h.mustOut(0, UDP, "10.0.0.1:5000", "198.51.100.1:53", 0)
		if v := h.in(time.Second, UDP, "198.51.100.1:53", snat.String(), 0); v.Action != Translated {
			t.Fatalf("reply: %v", v)
		}
		h.mustOut(tc.at, UDP, "10.0.0.1:5000", "198.51.100.1:53", 0)
		h.advance(tc.release - 1)
		if h.e.Flows() != 1 {
			t.Errorf("packet at +%v: the flow is gone before +%v", tc.at, tc.release)
		}
		h.advance(tc.release)
		if h.e.Flows() != 0 {
			t.Errorf("packet at +%v: the flow is live at +%v, want released", tc.at, tc.release)
		}
	}
}

// TestInUseOutOfRange: InUse counts an instance's ports in use and
// answers 0, 0 for an instance it does not have, on either side.
func TestInUseOutOfRange(t *testing.T) {
	h := newHarness(t, oneIP("10.0.0.1", "10.0.0.2"))
	h.mustOut(0, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)
	h.mustOut(0, UDP, "10.0.0.1:1000", "198.51.100.1:53", 0)
	h.mustOut(0, UDP, "10.0.0.2:1000", "198.51.100.1:53", 0)
	for _, tc := range []struct{ inst, tcp, udp int }{{-1, 0, 0}, {0, 1, 1}, {1, 0, 1}, {2, 0, 0}} {
		if tcp, udp := h.e.InUse(tc.inst); tcp != tc.tcp || udp != tc.udp {
			t.Errorf("InUse(%d) = %d, %d, want %d, %d", tc.inst, tcp, udp, tc.tcp, tc.udp)
		}
	}
}

// TestL6InboundSYNOnATimeWaitFlow: on linux, a SYN from the server on a
// flow in TIME_WAIT (both sides closed it) ends the flow and is dropped
// as unsolicited, naming no instance (L6, L8): nothing inside asked for
// the new connection.
func TestL6InboundSYNOnATimeWaitFlow(t *testing.T) {
	h := newHarness(t, Config{Profile: Linux(DefaultConntrack()), Frontends: []netip.Addr{ip("203.0.113.1")},
		Backends: []netip.Addr{ip("10.0.0.1")}})
	const in, srv = "10.0.0.1:5000", "198.51.100.1:443"
	snat := h.mustOut(0, TCP, in, srv, SYN).String()
	for i, s := range []struct {
		dir   Dir
		flags TCPFlags
	}{{Inbound, SYN | ACK}, {Outbound, ACK}, {Outbound, FIN | ACK}, {Inbound, FIN | ACK}, {Outbound, ACK}} {
		src, dst := in, srv
		if s.dir == Inbound {
			src, dst = srv, snat
		}
		if v := h.pkt(time.Duration(i+1)*time.Millisecond, s.dir, TCP, src, dst, s.flags); v.Action != Translated {
			t.Fatalf("packet %d (%v %v): %v", i+1, s.dir, s.flags, v)
		}
	}
	v := h.in(time.Second, TCP, srv, snat, SYN)
	if want := (Verdict{Action: Dropped, Reason: DropUnsolicited, Behavior: L8, Instance: -1}); v != want {
		t.Errorf("a SYN from the server in TIME_WAIT: %v, want %v", v, want)
	}
	if h.e.Flows() != 0 {
		t.Errorf("%d flows live after the SYN, want the TIME_WAIT flow gone", h.e.Flows())
	}
}

// TestConntrackPaths drives linux's connection tracking (L5, L6) through
// the paths of the kernel's table that depend on the last packet's kind
// and side: a SYN/ACK answering a SYN that an established flow ignored
// puts it back to SYN_RECV (60 s); a SYN on a flow both sides closed, or
// closed by a RST from the SYN's own side, opens a new flow, while a
// RST from the other side leaves the SYN ignored; a simultaneous open is
// established by the reply side's ACK; a retransmitted SYN does not
// restart the timer; an ACK picked up waits 300 s (Unacknowledged), not
// ESTABLISHED's 5 days; a RST before any reply ends the flow at once.
// Each sequence's last packet's verdict (a new flow or not) and the
// flow's release time are checked.
func TestConntrackPaths(t *testing.T) {
	type pk struct {
		dir   Dir
		flags TCPFlags
	}
	out := func(f TCPFlags) pk { return pk{Outbound, f} }
	in := func(f TCPFlags) pk { return pk{Inbound, f} }
	est := []pk{out(SYN), in(SYN | ACK), out(ACK)}
	for _, tc := range []struct {
		name    string
		seq     []pk
		newFlow bool          // the last packet's verdict
		live    time.Duration // the flow is live then (after the last packet, at +1 s)
		gone    time.Duration // and released by then
	}{
		{"SYN/ACK to an ignored SYN", append(est, out(SYN), in(SYN|ACK)), false, 61*time.Second - 1, 61 * time.Second},
		{"SYN after FINs both ways", append(est, out(FIN|ACK), in(FIN|ACK), out(ACK), out(SYN)), true, 121*time.Second - 1, 121 * time.Second},
		{"SYN after its own side's RST", append(est, out(RST), out(SYN)), true, 121*time.Second - 1, 121 * time.Second},
		{"SYN after the other side's RST", append(est, in(RST), out(SYN)), false, 10*time.Second + 4*time.Millisecond - 1, 10*time.Second + 4*time.Millisecond},
		{"simultaneous open", []pk{out(SYN), in(SYN), out(SYN | ACK), in(ACK)}, false, 200 * time.Second, 432000*time.Second + time.Second},
		{"retransmitted SYN", []pk{out(SYN), out(SYN)}, false, 120*time.Second + time.Millisecond - 1, 120*time.Second + time.Millisecond},
		{"picked-up ACK", []pk{out(ACK)}, true, 301*time.Second - 1, 301 * time.Second},
		{"RST with no reply", []pk{out(SYN), out(RST)}, false, 0, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{Profile: Linux(DefaultConntrack()), Frontends: []netip.Addr{ip("203.0.113.1")},
				Backends: []netip.Addr{ip("10.0.0.1")}})
			const inside, srv = "10.0.0.1:5000", "198.51.100.1:443"
			snat := ""
			var v Verdict
			for i, p := range tc.seq {
				at := time.Duration(i+1) * time.Millisecond
				if i == len(tc.seq)-1 {
					at = time.Second
				}
				if p.dir == Outbound {
					v = h.out(at, TCP, inside, srv, p.flags)
					if v.Action == Translated {
						snat = v.Tuple.Src.String()
					}
				} else {
					v = h.in(at, TCP, srv, snat, p.flags)
				}
				if v.Action != Translated {
					t.Fatalf("packet %d (%v %v): %v", i+1, p.dir, p.flags, v)
				}
			}
			if v.NewFlow != tc.newFlow {
				t.Errorf("last packet: new flow %v, want %v", v.NewFlow, tc.newFlow)
			}
			if tc.live > 0 {
				h.advance(tc.live)
				if h.e.Flows() != 1 {
					t.Errorf("no live flow at +%v", tc.live)
				}
			}
			h.advance(tc.gone)
			if h.e.Flows() != 0 {
				t.Errorf("the flow is live at +%v, want released", tc.gone)
			}
		})
	}
}

// TestFlowIndexGrows: an index made for no entries grows as entries come
// and keeps every one of them, under its hash, through each growth.
func TestFlowIndexGrows(t *testing.T) {
	x := newFlowIndex(0)
	r := rand.New(rand.NewPCG(3, 4))
	hs := make([]uint64, 3000)
	for id := range uint32(len(hs)) {
		hs[id] = r.Uint64()
		x.insert(hs[id], id)
		for j := uint32(0); j <= id; j += 1 + id/8 {
			found := false
			for i := uint64(uint32(hs[j])) & x.mask; x.slots[i] != 0; i = (i + 1) & x.mask {
				found = found || x.slots[i] == uint64(uint32(hs[j]))<<32|uint64(j+1)
			}
			if !found {
				t.Fatalf("after %d inserts (%d slots): entry %d lost", id+1, len(x.slots), j)
			}
		}
	}
	if x.n != len(hs) || len(x.slots) < len(hs) {
		t.Errorf("%d entries counted in %d slots, want %d in at least as many", x.n, len(x.slots), len(hs))
	}
}

// TestFlowIndexRemoveWraps: removing the entry at the table's last slot
// moves back an entry of the same home that had wrapped to slot 0, so
// that it is still found from its home, and leaves an entry whose home is
// slot 0 where it is.
func TestFlowIndexRemoveWraps(t *testing.T) {
	x := newFlowIndex(8)
	last := uint64(len(x.slots) - 1)
	x.insert(last, 1)         // at the last slot
	x.insert(last|1<<40, 2)   // same home, wrapped to slot 0
	x.insert(last-1|2<<40, 3) // home last-1, at last-1
	x.remove(last, 1)
	if x.slots[last] != uint64(uint32(last))<<32|3 || x.slots[0] != 0 {
		t.Errorf("after removing the last slot's entry: slots %v, want entry 2 moved back to slot %d", x.slots, last)
	}
	x = newFlowIndex(8)
	x.insert(last, 1) // at the last slot
	x.insert(0, 2)    // at its home, slot 0
	x.remove(last, 1)
	if x.slots[last] != 0 || x.slots[0] != 3 {
		t.Errorf("after removing the last slot's entry: slots %v, want entry 2 left at its home, slot 0", x.slots)
	}
}

// TestWarmHashZeroOnAnEmptySlot: warming a key whose hash has zero low
// bits, at an empty slot, reads no flow (an empty slot also has zero
// hash bits: reading its flow would read before the slab).
func TestWarmHashZeroOnAnEmptySlot(t *testing.T) {
	h := newHarness(t, oneIP("10.0.0.1"))
	h.e.warm(&h.e.out, 7<<32)
	h.e.warm(&h.e.in, 0)
	if h.e.warmed != 0 {
		t.Errorf("warmed %d, want nothing read", h.e.warmed)
	}
}

// TestStatsFirstExhaustionOnlyWhenExhausted: an instance that never ran
// out of ports reports no first exhaustion time (the zero time, not the
// epoch); one that did reports when.
func TestStatsFirstExhaustionOnlyWhenExhausted(t *testing.T) {
	h := newHarness(t, Config{Frontends: []netip.Addr{ip("203.0.113.1")}, Backends: []netip.Addr{ip("10.0.0.1")}, PortsPerInstance: 8})
	for i := range 9 {
		h.out(time.Second, TCP, fmt.Sprintf("10.0.0.1:%d", 2000+i), "198.51.100.1:443", SYN)
	}
	for _, s := range h.e.Stats() {
		if exhausted := s.Proto == TCP; s.FirstExhaustion.IsZero() == exhausted ||
			exhausted && !s.FirstExhaustion.Equal(t0.Add(time.Second)) {
			t.Errorf("%v: first exhaustion %v (%d drops)", s.Proto, s.FirstExhaustion, s.ExhaustionDrops)
		}
	}
}

// TestG4UDPHoldDown: on azure-natgw a UDP flow's public endpoint, after
// its idle release, is held down for that destination for 65 s (G4):
// with one port, a new flow to the same destination is refused until
// then, and taken at 65 s.
func TestG4UDPHoldDown(t *testing.T) {
	p := AzureNATGW()
	p.PortsPerIP = 1
	h := newHarness(t, Config{Profile: p, Frontends: []netip.Addr{ip("203.0.113.1")}, Backends: []netip.Addr{ip("10.0.0.1")}})
	h.mustOut(0, UDP, "10.0.0.1:5000", "198.51.100.1:53", 0)
	h.advance(4 * time.Minute) // G5: the UDP idle release
	if h.e.Flows() != 0 {
		t.Fatalf("%d flows after the idle timeout, want none", h.e.Flows())
	}
	if v := h.out(4*time.Minute+65*time.Second-1, UDP, "10.0.0.1:5001", "198.51.100.1:53", 0); v.Action != Dropped || v.Reason != DropExhausted {
		t.Errorf("1 ns before the hold ends: %v, want refused", v)
	}
	h.mustOut(4*time.Minute+65*time.Second, UDP, "10.0.0.1:5002", "198.51.100.1:53", 0)
}

// TestL2KeepsTheSourcePort: linux keeps an inside source port that lies in
// the instance's own ranges (L2), at the top of the range too (an
// instance whose blocks end near port 64,511), and on the second frontend
// IP for an instance whose blocks span two.
func TestL2KeepsTheSourcePort(t *testing.T) {
	var backs []netip.Addr
	for i := range 62 {
		backs = append(backs, netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}))
	}
	h := newHarness(t, Config{Profile: Linux(DefaultConntrack()), Frontends: []netip.Addr{ip("203.0.113.1")}, Backends: backs, PortsPerInstance: 1024})
	in := &h.e.insts[61]
	_, top := h.e.slotAddr(in, in.ports-1)
	if top < 62976 {
		t.Fatalf("the last instance's top port is %d, want one near the range's end", top)
	}
	src := netip.AddrPortFrom(backs[61], top).String()
	if v := h.out(0, TCP, src, "198.51.100.1:443", SYN); v.Action != Translated || v.Tuple.Src.Port() != top {
		t.Errorf("from port %d, in the instance's range: %v, want the port kept", top, v)
	}

	// With a 63rd instance the first IP runs out: that instance's blocks
	// span both IPs, and a port of its blocks on the second is kept there.
	fronts := []netip.Addr{ip("203.0.113.1"), ip("203.0.113.2")}
	backs = append(backs, netip.AddrFrom4([4]byte{10, 0, 1, 62}))
	h = newHarness(t, Config{Profile: Linux(DefaultConntrack()), Frontends: fronts, Backends: backs, PortsPerInstance: 1024})
	if v := h.out(0, TCP, netip.AddrPortFrom(backs[62], 1030).String(), "198.51.100.1:443", SYN); v.Action != Translated ||
		v.Tuple.Src != netip.AddrPortFrom(fronts[1], 1030) {
		t.Errorf("from port 1030 of the instance spanning both IPs: %v, want it kept on the second IP", v)
	}
}

// TestL2LatestFlowAfterARelease: linux gives a new flow of an inside
// endpoint the SNAT endpoint of its latest live flow (L2), also after
// another flow of that endpoint was released.
func TestL2LatestFlowAfterARelease(t *testing.T) {
	h := newHarness(t, Config{Profile: Linux(DefaultConntrack()), Frontends: []netip.Addr{ip("203.0.113.1")}, Backends: []netip.Addr{ip("10.0.0.1")}})
	const in = "10.0.0.1:5000"
	p := h.mustOut(0, TCP, in, "198.51.100.1:443", SYN)
	if q := h.mustOut(0, TCP, in, "198.51.100.2:443", SYN); q != p {
		t.Fatalf("second flow from %v, want %v (L2)", q, p)
	}
	h.out(time.Second, TCP, in, "198.51.100.2:443", RST) // no reply yet: the flow ends at once (L6)
	if h.e.Flows() != 1 {
		t.Fatalf("%d flows after the RST, want 1", h.e.Flows())
	}
	if q := h.mustOut(2*time.Second, TCP, in, "198.51.100.3:443", SYN); q != p {
		t.Errorf("a new flow after the release: from %v, want %v, the live flow's", q, p)
	}
}
