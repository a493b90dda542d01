package reference

// Tests written to kill mutants that gremlins (make mutate) found alive:
// each pins a result that a one-token change to the code would alter.

import (
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
	for i := range 8 {
		h.out(17*time.Second, TCP, fmt.Sprintf("10.0.0.1:%d", 3000+i), a, SYN)
	}
	if s, d := tcp(), h.e.Drops(); s.ExhaustionDrops != 1 || d[DropExhausted] != 1 || s.FirstExhaustion != t0.Add(17*time.Second) {
		t.Errorf("exhaustion (7 ports free toward a, 8 new flows): %d drops in Stats, %d in Drops, first at %v; want 1, 1, +17s", s.ExhaustionDrops, d[DropExhausted], s.FirstExhaustion.Sub(t0))
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
