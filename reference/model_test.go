package reference

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"testing"
	"time"
)

// model is a deliberately simple, slow SNAT written straight from
// SEMANTICS.md: flows in a slice, every question answered by a scan. It
// shares no code with the engine except the public types.
type model struct {
	cfg     Config
	ports   [][]netip.AddrPort // per instance, in C3 order
	flows   []*mflow
	tombOut map[string]mtomb
	tombIn  map[string]mtomb
	now     time.Time
}

type mflow struct {
	proto                Proto
	inst                 int
	inside, remote, snat netip.AddrPort
	peers                []uint16
	deadline             time.Time
	fixed, sawOut, sawIn bool
}

type mtomb struct {
	until time.Time
	inst  int
}

func newModel(cfg Config) *model {
	pl, err := PlanFor(cfg)
	if err != nil {
		panic(err)
	}
	m := &model{cfg: cfg, tombOut: map[string]mtomb{}, tombIn: map[string]mtomb{}}
	for _, in := range pl.Instances {
		var ps []netip.AddrPort
		for _, r := range in.Ranges {
			for p := int(r.First); p <= int(r.Last); p++ {
				ps = append(ps, netip.AddrPortFrom(r.IP, uint16(p)))
			}
		}
		m.ports = append(m.ports, ps)
	}
	return m
}

func (m *model) idle() time.Duration {
	if m.cfg.IdleTimeout == 0 {
		return 4 * time.Minute
	}
	return m.cfg.IdleTimeout
}

// sameDest: the flow already uses its SNAT port toward this destination
// (B6: IP and port for TCP; B7: IP for UDP).
func (f *mflow) sameDest(proto Proto, dst netip.AddrPort) bool {
	if f.proto != proto || f.remote.Addr() != dst.Addr() {
		return false
	}
	return proto == UDP || f.remote.Port() == dst.Port()
}

func tombKey(proto Proto, a, b netip.AddrPort) string {
	if proto == UDP {
		b = netip.AddrPortFrom(b.Addr(), 0)
	}
	return fmt.Sprint(proto, a, b)
}

func (m *model) expire(t time.Time) []Packet {
	var emit []Packet
	for {
		var due *mflow
		for _, f := range m.flows {
			if !f.deadline.After(t) && (due == nil || f.deadline.Before(due.deadline)) {
				due = f
			}
		}
		if due == nil {
			return emit
		}
		if !due.fixed && m.cfg.TCPResetOnIdle && due.proto == TCP && due.sawOut && due.sawIn {
			emit = append(emit,
				Packet{Time: due.deadline, Dir: Inbound, Tuple: Tuple{TCP, due.remote, due.inside}, Flags: RST | ACK},
				Packet{Time: due.deadline, Dir: Outbound, Tuple: Tuple{TCP, due.snat, due.remote}, Flags: RST | ACK})
			tb := mtomb{until: due.deadline.Add(m.idle()), inst: due.inst}
			m.tombOut[tombKey(TCP, due.inside, due.remote)] = tb
			m.tombIn[tombKey(TCP, due.snat, due.remote)] = tb
		}
		m.flows = slices.DeleteFunc(m.flows, func(f *mflow) bool { return f == due })
	}
}

func (m *model) touch(f *mflow, t time.Time, flags TCPFlags, out bool) {
	if out {
		f.sawOut = true
	} else {
		f.sawIn = true
	}
	if f.proto == TCP && flags&RST != 0 {
		if d := t.Add(15 * time.Second); !f.fixed || d.Before(f.deadline) {
			f.deadline, f.fixed = d, true
		}
	}
	if f.proto == TCP && flags&FIN != 0 && !f.fixed {
		f.deadline, f.fixed = t.Add(240*time.Second), true
	}
	if !f.fixed {
		f.deadline = t.Add(m.idle())
	}
}

func (m *model) process(p Packet) (Verdict, []Packet) {
	emit := m.expire(p.Time)
	m.now = p.Time
	tu := p.Tuple
	drop := func(r DropReason, inst int) (Verdict, []Packet) {
		return Verdict{Action: Dropped, Reason: r, Instance: inst}, emit
	}
	if p.Fragment {
		return drop(DropFragment, -1)
	}
	if tu.Proto != TCP && tu.Proto != UDP || (m.cfg.Protocols == TCPOnly && tu.Proto != TCP) || (m.cfg.Protocols == UDPOnly && tu.Proto != UDP) {
		return drop(DropUnsupported, -1)
	}
	reset := func(tb mtomb) (Verdict, []Packet) {
		dir := Inbound
		if p.Dir == Inbound {
			dir = Outbound
		}
		emit = append(emit, Packet{Time: p.Time, Dir: dir, Tuple: tu.Reverse(), Flags: RST | ACK})
		return Verdict{Action: Reset, Reason: DropReleased, Instance: tb.inst}, emit
	}
	if p.Dir == Inbound {
		for _, f := range m.flows {
			if f.proto == tu.Proto && f.snat == tu.Dst && f.remote.Addr() == tu.Src.Addr() &&
				(f.proto == UDP || f.remote.Port() == tu.Src.Port()) {
				if f.proto == UDP && !slices.Contains(f.peers, tu.Src.Port()) {
					return drop(DropUnsolicited, f.inst)
				}
				m.touch(f, p.Time, p.Flags, false)
				return Verdict{Action: Translated, Instance: f.inst, Tuple: Tuple{tu.Proto, tu.Src, f.inside}}, emit
			}
		}
		if tb, ok := m.tombIn[tombKey(tu.Proto, tu.Dst, tu.Src)]; ok && tb.until.After(p.Time) {
			return reset(tb)
		}
		return drop(DropUnsolicited, -1)
	}
	for _, f := range m.flows {
		if f.inside == tu.Src && f.sameDest(tu.Proto, tu.Dst) {
			if !slices.Contains(f.peers, tu.Dst.Port()) {
				f.peers = append(f.peers, tu.Dst.Port())
			}
			m.touch(f, p.Time, p.Flags, true)
			return Verdict{Action: Translated, Instance: f.inst, Tuple: Tuple{tu.Proto, f.snat, tu.Dst}}, emit
		}
	}
	inst := slices.Index(m.cfg.Backends, tu.Src.Addr())
	if inst < 0 {
		return drop(DropNoInstance, -1)
	}
	syn := tu.Proto == TCP && p.Flags&(SYN|ACK) == SYN
	if tb, ok := m.tombOut[tombKey(tu.Proto, tu.Src, tu.Dst)]; ok && tb.until.After(p.Time) {
		if !syn {
			return reset(tb)
		}
		delete(m.tombOut, tombKey(tu.Proto, tu.Src, tu.Dst))
	}
	if tu.Proto == TCP && !syn && m.cfg.Strict {
		return drop(DropNotSYN, inst)
	}
	for _, snat := range m.ports[inst] {
		taken := false
		for _, f := range m.flows {
			if f.snat == snat && f.sameDest(tu.Proto, tu.Dst) {
				taken = true
				break
			}
		}
		if !taken {
			f := &mflow{proto: tu.Proto, inst: inst, inside: tu.Src, remote: tu.Dst, snat: snat, peers: []uint16{tu.Dst.Port()}}
			m.flows = append(m.flows, f)
			m.touch(f, p.Time, p.Flags, true)
			return Verdict{Action: Translated, Instance: inst, Tuple: Tuple{tu.Proto, snat, tu.Dst}, NewFlow: true}, emit
		}
	}
	return drop(DropExhausted, inst)
}

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
	small := []time.Duration{0, 0, time.Nanosecond, ms, 10 * ms, 100 * ms}
	big := []time.Duration{5 * time.Second, 14 * time.Second, 15 * time.Second, time.Minute, 200 * time.Second, 240 * time.Second, 4 * time.Minute}
	flagSet := []TCPFlags{SYN, SYN, SYN, SYN, SYN | ACK, ACK, ACK, PSH | ACK, PSH | ACK, FIN | ACK, RST, RST | ACK, 0}
	ops := 0
	tally := map[string]int{}
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 99))
		cfg := Config{
			Frontends:        []netip.Addr{ip("203.0.113.1"), ip("203.0.113.2")}[:1+r.IntN(2)],
			Backends:         []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")},
			PortsPerInstance: []int{8, 16, 24}[r.IntN(3)],
			IdleTimeout:      []time.Duration{4 * time.Minute, 5 * time.Minute}[r.IntN(2)],
			TCPResetOnIdle:   r.IntN(2) == 0,
			Strict:           r.IntN(4) == 0,
			Protocols:        []Protocols{AllProtocols, AllProtocols, TCPOnly}[r.IntN(3)],
		}
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		m := newModel(cfg)
		now := t0
		remote := func() netip.AddrPort {
			if r.IntN(2) == 0 { // a popular server, so that instances run out of ports
				return ap("198.51.100.1:443")
			}
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + r.IntN(3))}), []uint16{53, 80, 443}[r.IntN(3)])
		}
		for i := range 2500 {
			ops++
			switch k := r.IntN(20); {
			case k == 0: // jump exactly to a flow's release time, or 1 ns before it
				if len(m.flows) > 0 {
					d := m.flows[r.IntN(len(m.flows))].deadline
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
				want := m.expire(now)
				m.now = now
				if fmt.Sprint(sortedPackets(got)) != fmt.Sprint(sortedPackets(want)) {
					t.Fatalf("seed %d op %d Advance(%v): emitted %v, want %v", seed, i, now.Sub(t0), got, want)
				}
				continue
			case 1, 2, 3: // inbound, to a SNAT port near the ones in use
				dst := netip.AddrPortFrom(cfg.Frontends[r.IntN(len(cfg.Frontends))], uint16(1024+r.IntN(3*cfg.PortsPerInstance)))
				if len(m.flows) > 0 && r.IntN(3) > 0 {
					f := m.flows[r.IntN(len(m.flows))]
					dst = f.snat
					proto = f.proto
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
			want, wantEmit := m.process(p)
			if got.Action != want.Action || got.Reason != want.Reason || got.Instance != want.Instance ||
				(got.Action == Translated && (got.Tuple != want.Tuple || got.NewFlow != want.NewFlow)) {
				t.Fatalf("seed %d op %d at %v: %v %v flags %v:\n engine %+v\n model  %+v", seed, i, now.Sub(t0), p.Dir, p.Tuple, p.Flags, got, want)
			}
			tally[got.Action.String()+" "+got.Reason.String()]++
			if len(gotEmit) > 0 {
				tally["emitted"]++
			}
			if fmt.Sprint(sortedPackets(gotEmit)) != fmt.Sprint(sortedPackets(wantEmit)) {
				t.Fatalf("seed %d op %d: emitted %v, want %v", seed, i, gotEmit, wantEmit)
			}
			if e.Flows() != len(m.flows) {
				t.Fatalf("seed %d op %d: engine has %d flows, model %d", seed, i, e.Flows(), len(m.flows))
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
