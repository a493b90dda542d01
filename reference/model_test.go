package reference_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/natcheck/natcheck/internal/snatmodel"
	. "github.com/natcheck/natcheck/reference"
)

var mt0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mip(s string) netip.Addr      { return netip.MustParseAddr(s) }
func map_(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// addrs is n addresses counting up from first (10.0.0.1, 10.0.0.2, …).
func addrs(first string, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	a := mip(first)
	for i := range out {
		out[i] = a
		a = a.Next()
	}
	return out
}

// shape is a family of configurations and the traffic run on them, each
// aimed at code the others do not reach.
type shape struct {
	name string
	// config returns a configuration and every backend a pool change may
	// bring in (Config.Backends is a prefix of it).
	config func(r *rand.Rand) (Config, []netip.Addr)
	// hot picks the instance of the next outbound packet.
	hot func(r *rand.Rand, pool int) int
	// resize picks the next pool size, 0 for none.
	resize func(r *rand.Rand, pool, all int) int
	// srcPorts is how many source ports an instance sends from: the most
	// flows it can open to one destination.
	srcPorts int
	// burst is the most flows one burst opens to one destination.
	burst int
	// closes weighs an operation that ends a live flow with a RST (of 13
	// others): many closes leave lone flows above a destination's lowest
	// ports.
	closes       int
	configs, ops int
}

var fronts = addrs("203.0.113.1", 3)

func common(r *rand.Rand, c Config) Config {
	c.IdleTimeout = []time.Duration{0, 4 * time.Minute, 5 * time.Minute}[r.IntN(3)]
	c.TCPResetOnIdle = r.IntN(3) > 0
	c.Strict = r.IntN(5) == 0
	c.Protocols = []Protocols{AllProtocols, AllProtocols, AllProtocols, AllProtocols, AllProtocols, TCPOnly, UDPOnly}[r.IntN(7)]
	return c
}

func anyOf(r *rand.Rand, pool int) int { return r.IntN(pool) }

var shapes = []shape{
	{name: "small", srcPorts: 40, burst: 12, configs: 24, ops: 2500,
		config: func(r *rand.Rand) (Config, []netip.Addr) {
			all := addrs("10.0.0.1", 4)
			return common(r, Config{Frontends: fronts[:1+r.IntN(2)], Backends: all[:1+r.IntN(3)],
				PortsPerInstance: []int{8, 8, 16, 24, 0}[r.IntN(5)]}), all
		},
		hot: func(r *rand.Rand, pool int) int { return max(0, r.IntN(pool+3)-3) }, // mostly instance 0
		resize: func(r *rand.Rand, pool, all int) int {
			if r.IntN(150) == 0 {
				return 1 + r.IntN(all)
			}
			return 0
		},
	},
	// More than 64 flows to one destination from one instance: several
	// words of a destination's bitmap, and releases below the last.
	{name: "wide", srcPorts: 300, burst: 150, configs: 8, ops: 1000,
		config: func(r *rand.Rand) (Config, []netip.Addr) {
			all := addrs("10.0.0.1", 2)
			return common(r, Config{Frontends: fronts[:1], Backends: all[:1+r.IntN(2)],
				PortsPerInstance: []int{64, 72, 128, 136, 200}[r.IntN(5)]}), all
		},
		hot:    anyOf,
		resize: func(*rand.Rand, int, int) int { return 0 },
	},
	// Hundreds of instances under the default table, on one to three
	// frontend IPs, and pool changes across its tiers.
	{name: "many", srcPorts: 200, burst: 100, configs: 6, ops: 1500,
		config: func(r *rand.Rand) (Config, []netip.Addr) {
			all := addrs("10.0.0.1", 1000)
			n := []int{150, 300, 450, 700, 1000, 1000}[r.IntN(6)]
			return common(r, Config{Frontends: fronts[:1+r.IntN(3)], Backends: all[:n]}), all
		},
		hot: func(r *rand.Rand, pool int) int {
			return []int{0, 1, pool / 2, pool - 1, r.IntN(pool)}[r.IntN(5)]
		},
		resize: func(r *rand.Rand, pool, all int) int {
			if r.IntN(200) == 0 {
				return min(all, max(1, pool+r.IntN(161)-80))
			}
			return 0
		},
	},
	// Instances spanning two frontend IPs with few ports on the first.
	{name: "span", srcPorts: 80, burst: 40, configs: 8, ops: 1000,
		config: func(r *rand.Rand) (Config, []netip.Addr) {
			all := addrs("10.0.0.1", 5)
			switch r.IntN(3) {
			case 0: // instance 1: 8 ports on IP 1, the rest on IP 2
				return common(r, Config{Frontends: fronts[:2], Backends: all[:2], PortsPerInstance: 63992}), all
			case 1: // instance 2: 16 ports on IP 1
				return common(r, Config{Frontends: fronts[:2], Backends: all[:3+r.IntN(2)], PortsPerInstance: 31992}), all
			}
			// instances 1 and 2 each span two of three IPs
			return common(r, Config{Frontends: fronts[:3], Backends: all[:3], PortsPerInstance: 63992}), all
		},
		hot: func(r *rand.Rand, pool int) int { return min(pool-1, 1+r.IntN(2)) },
		resize: func(r *rand.Rand, pool, all int) int {
			if r.IntN(300) == 0 {
				return 1 + r.IntN(all)
			}
			return 0
		},
	},
	// One instance toward one server, its flows closed one by one, across
	// a tier edge and back again: every change moves the instance's
	// blocks with lone flows above the destination's lowest port.
	{name: "reslot", srcPorts: 40, burst: 12, closes: 6, configs: 6, ops: 2000,
		config: func(r *rand.Rand) (Config, []netip.Addr) {
			all := addrs("10.0.0.1", 101)
			c := common(r, Config{Frontends: fronts[:1], Backends: all[:50+r.IntN(2)]})
			c.Protocols = AllProtocols
			return c, all
		},
		hot: func(*rand.Rand, int) int { return 0 },
		resize: func(r *rand.Rand, pool, all int) int {
			if r.IntN(15) == 0 {
				return 101 - pool // 50 ↔ 51
			}
			return 0
		},
	},
	// Pools on the default table's tier edges, changed with live flows:
	// instances lose the upper half of their blocks, then regain blocks.
	{name: "edge", srcPorts: 300, burst: 150, configs: 12, ops: 1500,
		config: func(r *rand.Rand) (Config, []netip.Addr) {
			all := addrs("10.0.0.1", 210)
			edge := []int{50, 100, 200}[r.IntN(3)]
			return common(r, Config{Frontends: fronts[:1+r.IntN(2)], Backends: all[:edge-1+r.IntN(3)]}), all
		},
		hot: func(r *rand.Rand, pool int) int { return []int{0, 1, 2, pool - 1}[r.IntN(4)] },
		resize: func(r *rand.Rand, pool, all int) int {
			if r.IntN(40) == 0 {
				return min(all, max(1, pool+r.IntN(5)-2))
			}
			return 0
		},
	},
}

// reach measures what the traffic of a shape reached, so that a test can
// assert it touched the code it is meant for.
type reach struct {
	perDest           map[string]int // live flows per (instance, proto, destination key)
	maxPerDest        int
	maxPool           int
	secondIP          int // new flows of an instance on a frontend IP other than its first
	poolChanges       int // with live flows
	reclaims          int
	outcomes          map[string]int
	firstIPOf         map[int]netip.Addr
	packets, advances int
	// released are recently released flows, whose late packets the
	// traffic sends (C7: B14 RSTs, B16 drops).
	released []Event
}

func (rc *reach) observe(ev Event) {
	dk := func() string {
		rem := ev.Remote
		if ev.Proto == UDP {
			rem = netip.AddrPortFrom(rem.Addr(), 0)
		}
		return fmt.Sprint(ev.Instance, ev.Proto, rem)
	}
	switch ev.Kind {
	case MappingCreated, MappingReused:
		rc.perDest[dk()]++
		rc.maxPerDest = max(rc.maxPerDest, rc.perDest[dk()])
		if a, ok := rc.firstIPOf[ev.Instance]; ok && a != ev.SNAT.Addr() {
			rc.secondIP++
		}
	case Released:
		rc.perDest[dk()]--
		if ev.Release == ReleaseReclaimed {
			rc.reclaims++
		}
		if len(rc.released) == 64 {
			rc.released = rc.released[1:]
		}
		rc.released = append(rc.released, ev)
	}
}

// TestEngineAgainstModel runs random traffic through the engine and the
// model of internal/snatmodel (written from SEMANTICS.md, sharing no
// logic with the engine) side by side, and compares after every packet,
// every Advance and every pool change: verdicts, packets sent, flow
// events, live flows, plans and configuration errors. Five shapes of
// configuration aim at different code: few instances with few ports
// (timers, filtering, exhaustion), more than 64 flows to one destination,
// hundreds of instances on up to three IPs, instances spanning two IPs,
// and pools on the default table's tier edges changed with live flows.
func TestEngineAgainstModel(t *testing.T) {
	small := []time.Duration{0, 0, time.Nanosecond, time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond}
	big := []time.Duration{5 * time.Second, 14 * time.Second, 15 * time.Second, time.Minute, 200 * time.Second, 240 * time.Second, 4 * time.Minute}
	flagSet := []TCPFlags{SYN, SYN, SYN, SYN, SYN | ACK, ACK, ACK, PSH | ACK, PSH | ACK, FIN | ACK, RST, RST | ACK, 0}
	servers := []netip.AddrPort{map_("198.51.100.1:443"), map_("198.51.100.1:80"), map_("198.51.100.2:53"), map_("198.51.100.3:443")}
	total := 0
	for si, sh := range shapes {
		rc := &reach{perDest: map[string]int{}, outcomes: map[string]int{}}
		for seed := range uint64(sh.configs) {
			r := rand.New(rand.NewPCG(seed, uint64(si)))
			cfg, all := sh.config(r)
			tw, err := snatmodel.NewTwin(cfg, 0)
			if err != nil {
				t.Fatalf("%s seed %d: %v", sh.name, seed, err)
			}
			tw.Observe = rc.observe
			pool := len(cfg.Backends)
			rc.maxPool = max(rc.maxPool, pool)
			rc.firstIPOf = map[int]netip.Addr{}
			for _, in := range tw.Engine.Plan().Instances {
				if len(in.Ranges) > 0 {
					rc.firstIPOf[in.Index] = in.Ranges[0].IP
				}
			}
			now := mt0
			fail := func(i int, err error) {
				t.Helper()
				t.Fatalf("%s seed %d op %d (config %+v): %v", sh.name, seed, i, cfg, err)
			}
			for i := range sh.ops {
				total++
				switch k := r.IntN(20); {
				case k == 0: // exactly on a flow's release time, or 1 ns before
					if d, ok := tw.Model.NextDeadline(r.IntN(1 << 20)); ok {
						if r.IntN(2) == 0 {
							d = d.Add(-time.Nanosecond)
						}
						if d.After(now) {
							now = d
						}
					}
				case k == 1 && r.IntN(20) == 0: // a long gap: every timer fires
					now = now.Add(3 * time.Hour)
				case k == 19 && r.IntN(4) == 0:
					now = now.Add(big[r.IntN(len(big))])
				default:
					now = now.Add(small[r.IntN(len(small))])
				}
				if n := sh.resize(r, pool, len(all)); n != 0 {
					if tw.Engine.Flows() > 0 {
						rc.poolChanges++
					}
					if err := tw.SetPool(now, all[:n], 0); errors.Is(err, snatmodel.ErrMismatch) {
						fail(i, err)
					} else if err == nil {
						pool = n
						rc.maxPool = max(rc.maxPool, pool)
					}
					continue
				}
				proto := []Proto{TCP, TCP, TCP, TCP, TCP, TCP, TCP, TCP, UDP, UDP, UDP, UDP, UDP, ICMP}[r.IntN(14)]
				var ps []Packet
				switch op := r.IntN(13 + sh.closes); {
				case op >= 13: // a live flow ends with a RST from inside
					if ft, _, ok := tw.Model.SomeFlow(r.IntN(1 << 20)); ok && ft.Proto == TCP {
						ps = append(ps, Packet{Dir: Outbound, Tuple: ft, Flags: RST})
					}
				case op == 12: // a late packet of a released flow, from either side
					if len(rc.released) == 0 {
						continue
					}
					ev := rc.released[r.IntN(len(rc.released))]
					p := Packet{Dir: Outbound, Tuple: Tuple{Proto: ev.Proto, Src: ev.Inside, Dst: ev.Remote}, Flags: ACK}
					if r.IntN(2) == 0 {
						p = Packet{Dir: Inbound, Tuple: Tuple{Proto: ev.Proto, Src: ev.Remote, Dst: ev.SNAT}, Flags: ACK}
					}
					ps = append(ps, p)
				case op == 0: // timers only
					rc.advances++
					emit, err := tw.Advance(now)
					if err != nil {
						fail(i, err)
					}
					if len(emit) > 0 {
						rc.outcomes["emitted"]++
					}
					continue
				case op <= 3: // inbound: a live flow's reply (its port or another), or a port near those in use
					ft, snat, ok := tw.Model.SomeFlow(r.IntN(1 << 20))
					pr, remote := ft.Proto, ft.Dst
					if !ok || r.IntN(4) == 0 {
						f := cfg.Frontends[r.IntN(len(cfg.Frontends))]
						snat, remote = netip.AddrPortFrom(f, uint16(1024+r.IntN(3*max(8, cfg.PortsPerInstance)))), servers[r.IntN(len(servers))]
					} else {
						proto = pr
						if r.IntN(4) == 0 {
							remote = netip.AddrPortFrom(remote.Addr(), remote.Port()+1)
						}
					}
					ps = append(ps, Packet{Dir: Inbound, Tuple: Tuple{Proto: proto, Src: remote, Dst: snat}})
				case op == 4: // a burst of new flows from one instance to one destination
					src, dst := all[sh.hot(r, pool)], servers[r.IntN(2)]
					base := r.IntN(sh.srcPorts)
					for j := range 1 + r.IntN(sh.burst) {
						ps = append(ps, Packet{Dir: Outbound, Tuple: Tuple{Proto: proto, Src: netip.AddrPortFrom(src, uint16(1000+(base+j)%sh.srcPorts)), Dst: dst}, Flags: SYN})
					}
				default:
					src := all[sh.hot(r, pool)]
					ps = append(ps, Packet{Dir: Outbound, Tuple: Tuple{Proto: proto, Src: netip.AddrPortFrom(src, uint16(1000+r.IntN(sh.srcPorts))), Dst: servers[r.IntN(len(servers))]}})
				}
				for _, p := range ps {
					p.Time = now
					if p.Flags == 0 {
						p.Flags = flagSet[r.IntN(len(flagSet))]
					}
					p.Fragment = r.IntN(50) == 0
					rc.packets++
					v, emit, err := tw.Process(p)
					if err != nil {
						fail(i, err)
					}
					rc.outcomes[v.Action.String()+" "+v.Reason.String()]++
					if len(emit) > 0 {
						rc.outcomes["emitted"]++
					}
				}
			}
		}
		t.Logf("%s: %d packets, %d advances, %d pool changes with live flows (%d flows reclaimed), up to %d flows to one destination, pools up to %d, %d new flows on an instance's second IP; outcomes %v",
			sh.name, rc.packets, rc.advances, rc.poolChanges, rc.reclaims, rc.maxPerDest, rc.maxPool, rc.secondIP, rc.outcomes)
		// What each shape is for must have happened, or the comparison
		// says little.
		want := map[string]bool{
			"small": rc.outcomes["dropped exhausted"] > 100 && rc.outcomes["reset released"] > 20 && rc.outcomes["dropped not-syn"] > 50 &&
				rc.outcomes["dropped unsolicited"] > 100 && rc.outcomes["dropped fragment"] > 50 && rc.outcomes["dropped unsupported-protocol"] > 100 && rc.outcomes["emitted"] > 50,
			"wide":   rc.maxPerDest > 128 && rc.outcomes["dropped exhausted"] > 100,
			"many":   rc.maxPool >= 900 && rc.poolChanges >= 10 && rc.outcomes["dropped exhausted"] > 50,
			"span":   rc.secondIP > 100,
			"reslot": rc.poolChanges >= 200,
			"edge":   rc.poolChanges >= 100 && rc.reclaims >= 50 && rc.outcomes["dropped released"] > 10,
		}
		if !want[sh.name] {
			t.Errorf("shape %s did not reach what it is for (see the log line above)", sh.name)
		}
	}
	if total < 100_000 {
		t.Errorf("ran %d operations, want at least 100,000", total)
	}
}

// TestModelValidationAgrees: over a grid of configurations around every
// limit of B2–B4, B12 and B15, the engine and the model accept and reject
// the same ones, for the same behaviour, with the same plan.
func TestModelValidationAgrees(t *testing.T) {
	n := 0
	for _, k := range []int{1, 2, 3} {
		for _, pool := range []int{1, 2, 10, 11, 50, 51, 100, 101, 1000, 1001, 8000, 8001} {
			for _, ppi := range []int{0, -8, 4, 8, 12, 1001, 6400, 6408, 32000, 63992, 64000, 64008} {
				cfg := Config{Frontends: fronts[:k], Backends: addrs("10.0.0.1", min(pool, 3)), PoolSize: pool, PortsPerInstance: ppi}
				if _, err := snatmodel.NewTwin(cfg, 0); errors.Is(err, snatmodel.ErrMismatch) {
					t.Errorf("%d IPs, pool %d, %d ports: %v", k, pool, ppi, err)
				}
				n++
			}
		}
	}
	for _, tc := range []Config{
		{IdleTimeout: 3 * time.Minute}, {IdleTimeout: 4*time.Minute + time.Second}, {IdleTimeout: 121 * time.Minute},
		{IdleTimeout: 120 * time.Minute}, {Protocols: UDPOnly + 1}, {PoolSize: -1},
		{Backends: []netip.Addr{mip("10.0.0.1"), mip("10.0.0.1")}}, {Backends: []netip.Addr{mip("::1")}},
		{Frontends: []netip.Addr{}}, {Frontends: []netip.Addr{mip("203.0.113.1"), mip("203.0.113.1")}},
	} {
		if tc.Frontends == nil {
			tc.Frontends = fronts[:1]
		}
		if tc.Backends == nil {
			tc.Backends = addrs("10.0.0.1", 1)
		}
		if _, err := snatmodel.NewTwin(tc, 0); errors.Is(err, snatmodel.ErrMismatch) {
			t.Errorf("%+v: %v", tc, err)
		}
		n++
	}
	t.Logf("%d configurations compared", n)
}
