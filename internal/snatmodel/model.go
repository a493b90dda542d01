// Package snatmodel is a deliberately simple, slow model of the azure-lb
// SNAT profile, written straight from SEMANTICS.md for differential tests
// of the reference engine (its unit tests and the fuzzers): flows in a
// slice, every question answered by a scan, time compared with time.Time.
// It shares no code with the engine, only its public types. It covers
// B6–B15 and C3–C5 for a fixed pool (no pool changes, B16).
package snatmodel

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// Model is one SNAT configuration's state. Its zero value is not usable:
// call New.
type Model struct {
	cfg     reference.Config
	ports   [][]netip.AddrPort // per instance, in C3 order
	flows   []*flow
	tombOut map[string]tomb
	tombIn  map[string]tomb
	now     time.Time
}

type flow struct {
	proto                reference.Proto
	inst                 int
	inside, remote, snat netip.AddrPort
	peers                []uint16
	deadline             time.Time
	fixed, sawOut, sawIn bool
}

type tomb struct {
	until time.Time
	inst  int
}

// New returns a model of cfg, or the configuration's error.
func New(cfg reference.Config) (*Model, error) {
	pl, err := reference.PlanFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("snatmodel: %w", err)
	}
	m := &Model{cfg: cfg, tombOut: map[string]tomb{}, tombIn: map[string]tomb{}}
	for _, in := range pl.Instances {
		var ps []netip.AddrPort
		for _, r := range in.Ranges {
			for p := int(r.First); p <= int(r.Last); p++ {
				ps = append(ps, netip.AddrPortFrom(r.IP, uint16(p)))
			}
		}
		m.ports = append(m.ports, ps)
	}
	return m, nil
}

// Flows returns the number of live flows.
func (m *Model) Flows() int { return len(m.flows) }

// NextDeadline returns a live flow's release time picked by i (modulo the
// number of flows), or false when there is none: tests use it to land
// exactly on a boundary.
func (m *Model) NextDeadline(i int) (time.Time, bool) {
	if len(m.flows) == 0 {
		return time.Time{}, false
	}
	return m.flows[i%len(m.flows)].deadline, true
}

func (m *Model) idle() time.Duration {
	if m.cfg.IdleTimeout == 0 {
		return 4 * time.Minute
	}
	return m.cfg.IdleTimeout
}

// sameDest: the flow already uses its SNAT port toward this destination
// (B6: IP and port for reference.TCP; B7: IP for reference.UDP).
func (f *flow) sameDest(proto reference.Proto, dst netip.AddrPort) bool {
	if f.proto != proto || f.remote.Addr() != dst.Addr() {
		return false
	}
	return proto == reference.UDP || f.remote.Port() == dst.Port()
}

func tombKey(proto reference.Proto, a, b netip.AddrPort) string {
	if proto == reference.UDP {
		b = netip.AddrPortFrom(b.Addr(), 0)
	}
	return fmt.Sprint(proto, a, b)
}

// Expire releases every flow due at or before t and returns the packets
// the NAT sends meanwhile (B14).
func (m *Model) Expire(t time.Time) []reference.Packet {
	var emit []reference.Packet
	for {
		var due *flow
		for _, f := range m.flows {
			if !f.deadline.After(t) && (due == nil || f.deadline.Before(due.deadline)) {
				due = f
			}
		}
		if due == nil {
			return emit
		}
		if !due.fixed && m.cfg.TCPResetOnIdle && due.proto == reference.TCP && due.sawOut && due.sawIn {
			emit = append(emit,
				reference.Packet{Time: due.deadline, Dir: reference.Inbound, Tuple: reference.Tuple{Proto: reference.TCP, Src: due.remote, Dst: due.inside}, Flags: reference.RST | reference.ACK},
				reference.Packet{Time: due.deadline, Dir: reference.Outbound, Tuple: reference.Tuple{Proto: reference.TCP, Src: due.snat, Dst: due.remote}, Flags: reference.RST | reference.ACK})
			tb := tomb{until: due.deadline.Add(m.idle()), inst: due.inst}
			m.tombOut[tombKey(reference.TCP, due.inside, due.remote)] = tb
			m.tombIn[tombKey(reference.TCP, due.snat, due.remote)] = tb
		}
		m.flows = slices.DeleteFunc(m.flows, func(f *flow) bool { return f == due })
	}
}

func (m *Model) touch(f *flow, t time.Time, flags reference.TCPFlags, out bool) {
	if out {
		f.sawOut = true
	} else {
		f.sawIn = true
	}
	if f.proto == reference.TCP && flags&reference.RST != 0 {
		if d := t.Add(15 * time.Second); !f.fixed || d.Before(f.deadline) {
			f.deadline, f.fixed = d, true
		}
	}
	if f.proto == reference.TCP && flags&reference.FIN != 0 && !f.fixed {
		f.deadline, f.fixed = t.Add(240*time.Second), true
	}
	if !f.fixed {
		f.deadline = t.Add(m.idle())
	}
}

// Process runs one packet at p.Time and returns the verdict (Action,
// Reason, Instance, Tuple and NewFlow only) and the packets the NAT sent.
func (m *Model) Process(p reference.Packet) (reference.Verdict, []reference.Packet) {
	emit := m.Expire(p.Time)
	m.now = p.Time
	tu := p.Tuple
	drop := func(r reference.DropReason, inst int) (reference.Verdict, []reference.Packet) {
		return reference.Verdict{Action: reference.Dropped, Reason: r, Instance: inst}, emit
	}
	if p.Fragment {
		return drop(reference.DropFragment, -1)
	}
	if tu.Proto != reference.TCP && tu.Proto != reference.UDP || (m.cfg.Protocols == reference.TCPOnly && tu.Proto != reference.TCP) || (m.cfg.Protocols == reference.UDPOnly && tu.Proto != reference.UDP) {
		return drop(reference.DropUnsupported, -1)
	}
	reset := func(tb tomb) (reference.Verdict, []reference.Packet) {
		dir := reference.Inbound
		if p.Dir == reference.Inbound {
			dir = reference.Outbound
		}
		emit = append(emit, reference.Packet{Time: p.Time, Dir: dir, Tuple: tu.Reverse(), Flags: reference.RST | reference.ACK})
		return reference.Verdict{Action: reference.Reset, Reason: reference.DropReleased, Instance: tb.inst}, emit
	}
	if p.Dir == reference.Inbound {
		for _, f := range m.flows {
			if f.proto == tu.Proto && f.snat == tu.Dst && f.remote.Addr() == tu.Src.Addr() &&
				(f.proto == reference.UDP || f.remote.Port() == tu.Src.Port()) {
				if f.proto == reference.UDP && !slices.Contains(f.peers, tu.Src.Port()) {
					return drop(reference.DropUnsolicited, f.inst)
				}
				m.touch(f, p.Time, p.Flags, false)
				return reference.Verdict{Action: reference.Translated, Instance: f.inst, Tuple: reference.Tuple{Proto: tu.Proto, Src: tu.Src, Dst: f.inside}}, emit
			}
		}
		if tb, ok := m.tombIn[tombKey(tu.Proto, tu.Dst, tu.Src)]; ok && tb.until.After(p.Time) {
			return reset(tb)
		}
		return drop(reference.DropUnsolicited, -1)
	}
	for _, f := range m.flows {
		if f.inside == tu.Src && f.sameDest(tu.Proto, tu.Dst) {
			if !slices.Contains(f.peers, tu.Dst.Port()) {
				f.peers = append(f.peers, tu.Dst.Port())
			}
			m.touch(f, p.Time, p.Flags, true)
			return reference.Verdict{Action: reference.Translated, Instance: f.inst, Tuple: reference.Tuple{Proto: tu.Proto, Src: f.snat, Dst: tu.Dst}}, emit
		}
	}
	inst := slices.Index(m.cfg.Backends, tu.Src.Addr())
	if inst < 0 {
		return drop(reference.DropNoInstance, -1)
	}
	syn := tu.Proto == reference.TCP && p.Flags&(reference.SYN|reference.ACK) == reference.SYN
	if tb, ok := m.tombOut[tombKey(tu.Proto, tu.Src, tu.Dst)]; ok && tb.until.After(p.Time) {
		if !syn {
			return reset(tb)
		}
		delete(m.tombOut, tombKey(tu.Proto, tu.Src, tu.Dst))
	}
	if tu.Proto == reference.TCP && !syn && m.cfg.Strict {
		return drop(reference.DropNotSYN, inst)
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
			f := &flow{proto: tu.Proto, inst: inst, inside: tu.Src, remote: tu.Dst, snat: snat, peers: []uint16{tu.Dst.Port()}}
			m.flows = append(m.flows, f)
			m.touch(f, p.Time, p.Flags, true)
			return reference.Verdict{Action: reference.Translated, Instance: inst, Tuple: reference.Tuple{Proto: tu.Proto, Src: snat, Dst: tu.Dst}, NewFlow: true}, emit
		}
	}
	return drop(reference.DropExhausted, inst)
}

// SomeFlow returns the SNAT endpoint and protocol of a live flow picked by
// i (modulo the number of flows), or false when there is none.
func (m *Model) SomeFlow(i int) (netip.AddrPort, reference.Proto, bool) {
	if len(m.flows) == 0 {
		return netip.AddrPort{}, 0, false
	}
	f := m.flows[i%len(m.flows)]
	return f.snat, f.proto, true
}
