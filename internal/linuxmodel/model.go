// Package linuxmodel is a deliberately simple, slow model of the linux
// profile (SEMANTICS.md L1–L11): a stock Linux nftables/iptables SNAT with
// one rule per backend instance onto that instance's ranges, and the
// kernel's connection tracking (its TCP state table, as in
// net/netfilter/nf_conntrack_proto_tcp.c, and its UDP and ICMP timeouts).
// It serves differential tests of the reference engine's linux profile:
// flows in a slice, every question answered by a scan, time compared with
// time.Time. It shares no code with the engine, only its public types.
//
// Where Linux chooses at random (L2's probe offsets, L4's refusals), the
// model does not guess: [Model.Check] accepts any choice SEMANTICS.md
// allows and follows it; [Model.Process] makes the model's own choice
// (the lowest legal port), so the model can also stand alone as a NAT.
//
// Not modelled: sequence numbers and windows (every packet is taken as in
// window, so the "unacknowledged data" timeout and out-of-window invalid
// packets of L5 and L11 never arise) and retransmission counting.
//
// ICMP errors (L10, as conntrack takes them: RELATED to the flow their
// quoted packet belongs to): an error quoting a packet of a live flow, the
// exact 5-tuple, goes on translated (inbound: outer destination and
// quoted source back to the inside endpoint; outbound: outer source and
// quoted destination to the SNAT endpoint), moving neither the flow's
// state nor its timer; one quoting no flow is dropped.
package linuxmodel

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// Rule is one SNAT rule: an instance's inside address and the SNAT ranges
// its packets are translated onto (L1).
type Rule struct {
	Inside netip.Addr
	Ranges []reference.PortRange
}

// RulesFromPlan returns one rule per instance of plan (those with an
// inside address), as natcheck's built-in Linux device writes them.
func RulesFromPlan(plan reference.Plan) []Rule {
	var rs []Rule
	for _, in := range plan.Instances {
		if in.Inside.IsValid() {
			rs = append(rs, Rule{Inside: in.Inside, Ranges: in.Ranges})
		}
	}
	return rs
}

// TCP connection-tracking states, in the kernel's order.
type tcpState uint8

const (
	sNO tcpState = iota
	sSS
	sSR
	sES
	sFW
	sCW
	sLA
	sTW
	sCL
	sS2
	sIV // invalid
	sIG // ignored
)

var stateNames = [...]string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2", "INVALID", "IGNORE"}

func (s tcpState) String() string { return stateNames[s] }

// Packet kinds, by the flags that decide them.
const (
	kSYN = iota
	kSYNACK
	kFIN
	kACK
	kRST
	kNONE
)

// next is the kernel's transition table: [direction][kind][state].
var next = [2][6][10]tcpState{
	{ // original (outbound)
		{sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2},
		{sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR},
		{sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV},
		{sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV},
		{sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
		{sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},
	},
	{ // reply (inbound)
		{sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2},
		{sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR},
		{sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV},
		{sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG},
		{sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
		{sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},
	},
}

func kindOf(f reference.TCPFlags) int {
	switch {
	case f.Has(reference.RST):
		return kRST
	case f.Has(reference.SYN | reference.ACK):
		return kSYNACK
	case f.Has(reference.SYN):
		return kSYN
	case f.Has(reference.FIN):
		return kFIN
	case f.Has(reference.ACK):
		return kACK
	}
	return kNONE
}

// validFlags is TCP's set of legal flag combinations as conntrack checks
// them, once ECE, CWR and PSH are set aside: anything else is invalid
// (L11), a FIN without ACK included.
func validFlags(f reference.TCPFlags) bool {
	const S, A, F, R, U = reference.SYN, reference.ACK, reference.FIN, reference.RST, reference.URG
	switch f &^ (reference.ECE | reference.CWR | reference.PSH) {
	case S, S | U, S | A, R, R | A, F | A, F | A | U, A, A | U:
		return true
	}
	return false
}

type flow struct {
	proto                reference.Proto
	inst                 int
	inside, remote, snat netip.AddrPort
	born, deadline       time.Time
	seenReply            bool
	// TCP
	state        tcpState
	closeInit    [2]bool
	lastDir      int
	lastKind     int
	simultaneous bool
}

// Model is one linux SNAT's state. Its zero value is not usable: call New.
type Model struct {
	ct     reference.Conntrack
	loose  bool
	rules  []Rule
	flows  []*flow
	now    time.Time
	seeded bool
}

// New returns a model of a linux SNAT with cfg's profile numbers
// (cfg.Profile.Conntrack; cfg.Strict forces tcp_loose=0) and rules.
func New(cfg reference.Config, rules []Rule) (*Model, error) {
	if cfg.Profile.Name != reference.NameLinux {
		return nil, fmt.Errorf("linuxmodel: profile %q, want linux", cfg.Profile.Name)
	}
	return &Model{ct: cfg.Profile.Conntrack, loose: cfg.Profile.Conntrack.Loose && !cfg.Strict, rules: rules}, nil
}

// Flows returns the number of live flows.
func (m *Model) Flows() int { return len(m.flows) }

// Deadlines returns every live flow's release time, earliest first: tests
// use them to land exactly on a boundary.
func (m *Model) Deadlines() []time.Time {
	var ds []time.Time
	for _, f := range m.flows {
		ds = append(ds, f.deadline)
	}
	slices.SortFunc(ds, func(a, b time.Time) int { return a.Compare(b) })
	return ds
}

// Advance releases every flow whose release time is at or before t (a flow
// due at T is gone for a packet at T).
func (m *Model) Advance(t time.Time) error {
	if m.seeded && t.Before(m.now) {
		return fmt.Errorf("linuxmodel: time %v before %v", t, m.now)
	}
	m.now, m.seeded = t, true
	m.flows = slices.DeleteFunc(m.flows, func(f *flow) bool { return !f.deadline.After(t) })
	return nil
}

// Process runs p through the model, which makes every choice itself (the
// lowest legal SNAT port), and returns its verdict: Action, Reason,
// Behavior, Instance, Tuple and NewFlow.
func (m *Model) Process(p reference.Packet) (reference.Verdict, error) {
	return m.step(p, nil)
}

// Check runs p through the model and reports whether got, the engine's
// verdict, is one the profile allows; where the profile leaves a choice
// (which port, whether to refuse a flow at high occupancy), the model
// takes the engine's, so the two go on from the same state.
func (m *Model) Check(p reference.Packet, got reference.Verdict) error {
	want, err := m.step(p, &got)
	if err != nil {
		return err
	}
	if !same(want, got) {
		return fmt.Errorf("linuxmodel: %v %v %v: engine %s, model %s", p.Dir, p.Tuple, p.Flags, got, want)
	}
	return nil
}

func same(a, b reference.Verdict) bool {
	return a.Action == b.Action && a.Reason == b.Reason && a.Behavior == b.Behavior && a.Instance == b.Instance &&
		a.NewFlow == b.NewFlow && (a.Action != reference.Translated || a.Tuple == b.Tuple) &&
		(a.Embedded == nil) == (b.Embedded == nil) && (a.Embedded == nil || *a.Embedded == *b.Embedded)
}

// icmpError is an ICMP error quoting *p.Embedded (L10).
func (m *Model) icmpError(p reference.Packet) reference.Verdict {
	q := *p.Embedded
	if q.Proto != reference.TCP && q.Proto != reference.UDP && q.Proto != reference.ICMP {
		return drop(reference.DropUnsupported, reference.L10, -1)
	}
	var f *flow
	if p.Dir == reference.Inbound {
		if q.Src.Addr() == p.Tuple.Dst.Addr() {
			f = m.find(func(f *flow) bool { return f.proto == q.Proto && f.snat == q.Src && f.remote == q.Dst })
		}
	} else if q.Dst.Addr() == p.Tuple.Src.Addr() {
		f = m.find(func(f *flow) bool { return f.proto == q.Proto && f.inside == q.Dst && f.remote == q.Src })
	}
	if f == nil {
		return drop(reference.DropUnsolicited, reference.L10, -1)
	}
	v := reference.Verdict{Action: reference.Translated, Behavior: reference.L10, Instance: f.inst}
	if p.Dir == reference.Inbound {
		v.Tuple = reference.Tuple{Proto: reference.ICMP, Src: p.Tuple.Src, Dst: netip.AddrPortFrom(f.inside.Addr(), p.Tuple.Dst.Port())}
		v.Embedded = &reference.Tuple{Proto: q.Proto, Src: f.inside, Dst: q.Dst}
	} else {
		v.Tuple = reference.Tuple{Proto: reference.ICMP, Src: netip.AddrPortFrom(f.snat.Addr(), p.Tuple.Src.Port()), Dst: p.Tuple.Dst}
		v.Embedded = &reference.Tuple{Proto: q.Proto, Src: q.Src, Dst: f.snat}
	}
	return v
}

func drop(r reference.DropReason, b reference.Behavior, inst int) reference.Verdict {
	return reference.Verdict{Action: reference.Dropped, Reason: r, Behavior: b, Instance: inst}
}

func (m *Model) step(p reference.Packet, got *reference.Verdict) (reference.Verdict, error) {
	if err := m.Advance(p.Time); err != nil {
		return reference.Verdict{}, err
	}
	tu := p.Tuple
	switch {
	case tu.Proto == reference.ICMP && p.Embedded != nil:
		return m.icmpError(p), nil
	case tu.Proto == reference.ICMP && p.ICMPOther: // only echo and errors are tracked here
		return drop(reference.DropUnsupported, reference.L10, -1), nil
	case tu.Proto == reference.TCP, tu.Proto == reference.UDP, tu.Proto == reference.ICMP:
	default:
		return drop(reference.DropUnsupported, reference.L10, -1), nil
	}
	if p.Dir == reference.Inbound {
		f := m.find(func(f *flow) bool {
			return f.proto == tu.Proto && f.snat == tu.Dst && f.remote == tu.Src
		})
		if f == nil {
			return drop(reference.DropUnsolicited, reference.L8, -1), nil
		}
		return m.packet(f, p, 1, got)
	}
	f := m.find(func(f *flow) bool {
		return f.proto == tu.Proto && f.inside == tu.Src && f.remote == tu.Dst
	})
	if f != nil {
		return m.packet(f, p, 0, got)
	}
	return m.open(p, got)
}

func (m *Model) find(match func(*flow) bool) *flow {
	for _, f := range m.flows {
		if match(f) {
			return f
		}
	}
	return nil
}

func (m *Model) instOf(p reference.Packet) int {
	if p.Dir == reference.Outbound {
		for i, r := range m.rules {
			if r.Inside == p.Tuple.Src.Addr() {
				return i
			}
		}
		return -1
	}
	if f := m.find(func(f *flow) bool { return f.proto == p.Tuple.Proto && f.snat == p.Tuple.Dst }); f != nil {
		return f.inst
	}
	return -1
}

func (m *Model) translated(f *flow, p reference.Packet, dir int, isNew bool, b reference.Behavior) reference.Verdict {
	v := reference.Verdict{Action: reference.Translated, Behavior: b, Instance: f.inst, NewFlow: isNew}
	if dir == 0 {
		v.Tuple = reference.Tuple{Proto: f.proto, Src: f.snat, Dst: p.Tuple.Dst}
	} else {
		v.Tuple = reference.Tuple{Proto: f.proto, Src: p.Tuple.Src, Dst: f.inside}
	}
	return v
}

// open creates a flow for outbound p, if conntrack takes p as a new
// connection (L9) and a SNAT endpoint can be found (L2, L4).
func (m *Model) open(p reference.Packet, got *reference.Verdict) (reference.Verdict, error) {
	tu := p.Tuple
	inst := m.instOf(p)
	if inst < 0 {
		return drop(reference.DropNoInstance, reference.NoBehavior, -1), nil
	}
	if p.Fragment {
		return drop(reference.DropFragment, reference.L10, inst), nil // a fragment does not open a flow
	}
	if tu.Proto == reference.TCP {
		if !validFlags(p.Flags) {
			return drop(reference.DropInvalid, reference.L11, inst), nil
		}
		switch next[0][kindOf(p.Flags)][sNO] {
		case sSS:
		case sES:
			if !m.loose {
				return drop(reference.DropInvalid, reference.L9, inst), nil
			}
		default:
			return drop(reference.DropInvalid, reference.L9, inst), nil
		}
	}
	snat, ok, err := m.choose(inst, tu, got)
	if err != nil || !ok {
		return drop(reference.DropExhausted, reference.L4, inst), err
	}
	f := &flow{proto: tu.Proto, inst: inst, inside: tu.Src, remote: tu.Dst, snat: snat, born: p.Time, lastKind: kNONE}
	m.flows = append(m.flows, f)
	v, err := m.packet(f, p, 0, nil)
	v.NewFlow = true
	if v.Action == reference.Translated && f.proto != reference.ICMP {
		v.Behavior = reference.L2
	}
	return v, err
}

// choose picks the SNAT endpoint of a new flow from tu's inside endpoint
// in instance inst's ranges (L2): the endpoint of that inside endpoint's
// latest live flow whose mapping lies in the ranges, when still unique
// (the kernel's first step); else the inside source port, when in range
// and unique; else any unique port of the ranges. A refusal (L4) is
// allowed once half the ranges' ports are taken toward the destination,
// and required when all are. With got, the engine's choice is checked and
// taken.
func (m *Model) choose(inst int, tu reference.Tuple, got *reference.Verdict) (netip.AddrPort, bool, error) {
	rule := m.rules[inst]
	in := func(a netip.AddrPort) bool {
		for _, r := range rule.Ranges {
			if a.Addr() == r.IP && a.Port() >= r.First && a.Port() <= r.Last {
				return true
			}
		}
		return false
	}
	taken := map[netip.AddrPort]bool{} // SNAT endpoints with a flow of proto to tu.Dst
	for _, f := range m.flows {
		if f.proto == tu.Proto && f.remote == tu.Dst {
			taken[f.snat] = true
		}
	}
	var keep []netip.AddrPort // the source port on each IP where it is in range and unique
	var free []netip.AddrPort
	total := 0
	for _, r := range rule.Ranges {
		for port := int(r.First); port <= int(r.Last); port++ {
			total++
			a := netip.AddrPortFrom(r.IP, uint16(port))
			if taken[a] {
				continue
			}
			free = append(free, a)
			if uint16(port) == tu.Src.Port() {
				keep = append(keep, a)
			}
		}
	}
	var must netip.AddrPort
	for i := len(m.flows) - 1; i >= 0 && !must.IsValid(); i-- {
		if f := m.flows[i]; f.proto == tu.Proto && f.inside == tu.Src && in(f.snat) && !taken[f.snat] {
			must = f.snat
		}
	}
	legal := free
	switch {
	case must.IsValid():
		legal = []netip.AddrPort{must}
	case len(keep) > 0:
		legal = keep
	}
	mayRefuse := !must.IsValid() && len(keep) == 0 && 2*(total-len(free)) >= total
	if got == nil {
		if len(legal) == 0 {
			return netip.AddrPort{}, false, nil
		}
		return legal[0], true, nil
	}
	if got.Action != reference.Translated {
		if len(legal) > 0 && !mayRefuse {
			return netip.AddrPort{}, false, fmt.Errorf("linuxmodel: %v refused with %d of %d ports taken toward %v (L4: never below half); legal: %v", tu, total-len(free), total, tu.Dst, head(legal))
		}
		return netip.AddrPort{}, false, nil
	}
	if !slices.Contains(legal, got.Tuple.Src) {
		return netip.AddrPort{}, false, fmt.Errorf("linuxmodel: %v took %v; L2 allows %v", tu, got.Tuple.Src, head(legal))
	}
	return got.Tuple.Src, true, nil
}

func head(as []netip.AddrPort) string {
	if len(as) > 4 {
		return fmt.Sprintf("%v … (%d)", as[:4], len(as))
	}
	return fmt.Sprint(as)
}

// packet applies p to flow f in direction dir (0 original, 1 reply). got
// is the engine's verdict under Check, for a flow that a SYN reopens.
func (m *Model) packet(f *flow, p reference.Packet, dir int, got *reference.Verdict) (reference.Verdict, error) {
	switch f.proto {
	case reference.UDP:
		timeout := m.ct.UDP
		if f.seenReply && p.Time.Sub(f.born) > m.ct.StreamAfter {
			timeout = m.ct.UDPStream
		}
		f.deadline = p.Time.Add(timeout)
		if dir == 1 {
			f.seenReply = true
		}
		return m.translated(f, p, dir, false, m.behavior(dir)), nil
	case reference.ICMP:
		f.deadline = p.Time.Add(m.ct.ICMP)
		if dir == 1 {
			f.seenReply = true
		}
		return m.translated(f, p, dir, false, reference.L10), nil
	}
	return m.tcp(f, p, dir, got)
}

// behavior is the item a translated packet of a live flow cites: the
// 5-tuple that found it (L3), or the exact reverse tuple inbound (L8).
func (m *Model) behavior(dir int) reference.Behavior {
	if dir == 1 {
		return reference.L8
	}
	return reference.L3
}

func (m *Model) kill(f *flow) {
	m.flows = slices.DeleteFunc(m.flows, func(g *flow) bool { return g == f })
}

// tcp is the kernel's nf_conntrack_tcp_packet for a packet in window.
func (m *Model) tcp(f *flow, p reference.Packet, dir int, got *reference.Verdict) (reference.Verdict, error) {
	if !validFlags(p.Flags) {
		return drop(reference.DropInvalid, reference.L11, f.inst), nil
	}
	kind := kindOf(p.Flags)
	old := f.state
	nw := next[dir][kind][old]
	switch nw {
	case sSS:
		if old >= sTW {
			if f.closeInit[0] || f.closeInit[1] || (f.lastDir == dir && f.lastKind == kRST) {
				// L6: a new SYN reopens a closed connection: the entry is
				// deleted and the packet looked up again.
				m.kill(f)
				if dir == 1 {
					return drop(reference.DropUnsolicited, reference.L8, -1), nil
				}
				return m.open(p, got)
			}
			return m.ignore(f, p, dir, kind), nil
		}
	case sIG:
		if kind == kSYNACK && f.lastKind == kSYN && f.lastDir != dir {
			old, nw = sSS, sSR // the answer to a SYN that was ignored: back in sync
			break
		}
		return m.ignore(f, p, dir, kind), nil
	case sIV:
		return drop(reference.DropInvalid, reference.L11, f.inst), nil
	case sS2:
		f.simultaneous = true
	case sSR:
		if dir == 1 && kind == kACK && f.simultaneous {
			nw = sES
		}
	}
	f.lastKind, f.lastDir = kind, dir
	f.state = nw
	if old != nw && nw == sFW {
		f.closeInit[dir] = true
	}
	timeout := m.timeout(nw)
	if kind == kRST {
		timeout = m.ct.Close
	}
	v := m.translated(f, p, dir, false, m.behavior(dir))
	if !f.seenReply {
		if kind == kRST {
			m.kill(f) // L6: a RST on a flow that never saw a reply frees it at once
			return v, nil
		}
		if kind == kSYN && old == sSS {
			// A retransmitted SYN (or the other side's, in a simultaneous
			// open) does not restart the timer; the kernel still marks a
			// reply as seen.
			f.seenReply = f.seenReply || dir == 1
			return v, nil
		}
		if nw == sES && timeout > m.ct.Unacknowledged {
			timeout = m.ct.Unacknowledged
		}
	}
	f.deadline = p.Time.Add(timeout)
	if dir == 1 {
		f.seenReply = true
	}
	return v, nil
}

// ignore lets p through without changing the flow's state or timer.
func (m *Model) ignore(f *flow, p reference.Packet, dir, kind int) reference.Verdict {
	f.lastKind, f.lastDir = kind, dir
	if dir == 1 {
		f.seenReply = true
	}
	return m.translated(f, p, dir, false, m.behavior(dir))
}

func (m *Model) timeout(s tcpState) time.Duration {
	switch s {
	case sSS, sS2:
		return m.ct.SynSent
	case sSR:
		return m.ct.SynRecv
	case sES:
		return m.ct.Established
	case sFW:
		return m.ct.FinWait
	case sCW:
		return m.ct.CloseWait
	case sLA:
		return m.ct.LastAck
	case sTW:
		return m.ct.TimeWait
	}
	return m.ct.Close
}
