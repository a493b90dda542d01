package reference_test

import (
	"fmt"
	"github.com/natcheck/natcheck/internal/snatmodel"
	. "github.com/natcheck/natcheck/reference"
	"math/rand/v2"
	"net/netip"
	"sort"
	"testing"
	"time"
)

var mt0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mip(s string) netip.Addr      { return netip.MustParseAddr(s) }
func map_(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func sortedPackets(ps []Packet) []string {
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprint(p.Time.UnixNano(), p.Dir, p.Tuple, p.Flags))
	}
	sort.Strings(s)
	return s
}

// TestEngineAgainstModel runs random traffic through the engine and the
// model and compares every verdict, every emitted packet and the number of
// live flows: 40 configurations × 2,500 operations = 100,000 operations.
func TestEngineAgainstModel(t *testing.T) {
	small := []time.Duration{0, 0, time.Nanosecond, time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond}
	big := []time.Duration{5 * time.Second, 14 * time.Second, 15 * time.Second, time.Minute, 200 * time.Second, 240 * time.Second, 4 * time.Minute}
	flagSet := []TCPFlags{SYN, SYN, SYN, SYN, SYN | ACK, ACK, ACK, PSH | ACK, PSH | ACK, FIN | ACK, RST, RST | ACK, 0}
	ops := 0
	tally := map[string]int{}
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 99))
		cfg := Config{
			Frontends:        []netip.Addr{mip("203.0.113.1"), mip("203.0.113.2")}[:1+r.IntN(2)],
			Backends:         []netip.Addr{mip("10.0.0.1"), mip("10.0.0.2"), mip("10.0.0.3")},
			PortsPerInstance: []int{8, 8, 16, 24}[r.IntN(4)],
			IdleTimeout:      []time.Duration{4 * time.Minute, 5 * time.Minute}[r.IntN(2)],
			TCPResetOnIdle:   r.IntN(2) == 0,
			Strict:           r.IntN(4) == 0,
			Protocols:        []Protocols{AllProtocols, AllProtocols, TCPOnly}[r.IntN(3)],
		}
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		m, err := snatmodel.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		now := mt0
		remote := func() netip.AddrPort {
			if r.IntN(2) == 0 { // a popular server, so that instances run out of ports
				return map_("198.51.100.1:443")
			}
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + r.IntN(3))}), []uint16{53, 80, 443}[r.IntN(3)])
		}
		for i := range 2500 {
			ops++
			switch k := r.IntN(20); {
			case k == 0: // jump exactly to a flow's release time, or 1 ns before it
				if d, ok := m.NextDeadline(r.IntN(1 << 20)); ok {
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
			var p Packet
			proto := []Proto{TCP, TCP, TCP, TCP, UDP, UDP, ICMP}[r.IntN(7)]
			switch r.IntN(10) {
			case 0: // timers only
				got, err := e.Advance(now, nil)
				if err != nil {
					t.Fatal(err)
				}
				want, err := m.Advance(now, nil)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(sortedPackets(got)) != fmt.Sprint(sortedPackets(want)) {
					t.Fatalf("seed %d op %d Advance(%v): emitted %v, want %v", seed, i, now.Sub(mt0), got, want)
				}
				continue
			case 1, 2, 3: // inbound, to a SNAT port near the ones in use
				dst := netip.AddrPortFrom(cfg.Frontends[r.IntN(len(cfg.Frontends))], uint16(1024+r.IntN(3*cfg.PortsPerInstance)))
				if snat, pr, _, ok := m.SomeFlow(r.IntN(1 << 20)); ok && r.IntN(3) > 0 {
					dst, proto = snat, pr
				}
				p = Packet{Dir: Inbound, Tuple: Tuple{proto, remote(), dst}}
			default:
				src := netip.AddrPortFrom(cfg.Backends[max(0, r.IntN(6)-3)], uint16(1000+r.IntN(40))) // mostly instance 0
				p = Packet{Dir: Outbound, Tuple: Tuple{proto, src, remote()}}
			}
			p.Time = now
			p.Flags = flagSet[r.IntN(len(flagSet))]
			p.Fragment = r.IntN(50) == 0
			got, gotEmit, err := e.Process(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			want, wantEmit, err := m.Process(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.Action != want.Action || got.Reason != want.Reason || got.Instance != want.Instance ||
				(got.Action == Translated && (got.Tuple != want.Tuple || got.NewFlow != want.NewFlow)) {
				t.Fatalf("seed %d op %d at %v: %v %v flags %v:\n engine %+v\n model  %+v", seed, i, now.Sub(mt0), p.Dir, p.Tuple, p.Flags, got, want)
			}
			tally[got.Action.String()+" "+got.Reason.String()]++
			if len(gotEmit) > 0 {
				tally["emitted"]++
			}
			if fmt.Sprint(sortedPackets(gotEmit)) != fmt.Sprint(sortedPackets(wantEmit)) {
				t.Fatalf("seed %d op %d: emitted %v, want %v", seed, i, gotEmit, wantEmit)
			}
			if e.Flows() != m.Flows() {
				t.Fatalf("seed %d op %d: engine has %d flows, model %d", seed, i, e.Flows(), m.Flows())
			}
		}
	}
	// The traffic must reach every outcome, or the comparison says little.
	for _, k := range []string{"translated ", "dropped exhausted", "dropped unsolicited", "dropped unsupported-protocol",
		"dropped fragment", "dropped not-syn", "reset released", "emitted"} {
		if tally[k] < 100 {
			t.Errorf("outcome %q seen %d times, want at least 100 (all: %v)", k, tally[k], tally)
		}
	}
	t.Logf("outcomes: %v", tally)
	if ops < 100_000 {
		t.Fatalf("ran %d operations, want at least 100,000", ops)
	}
}
