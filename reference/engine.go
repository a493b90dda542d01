package reference

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"
)

// ErrTimeWentBackwards is matched by the error of a call whose time is
// earlier than the engine's current time.
var ErrTimeWentBackwards = errors.New("time went backwards")

// TimeError is a call made with a time earlier than the engine's clock.
type TimeError struct {
	Now, Got time.Time
}

func (e *TimeError) Error() string {
	return fmt.Sprintf("engine: time %s is %v before the engine's time %s",
		e.Got.UTC().Format(time.RFC3339Nano), e.Now.Sub(e.Got), e.Now.UTC().Format(time.RFC3339Nano))
}

// Is makes errors.Is(err, ErrTimeWentBackwards) true.
func (e *TimeError) Is(target error) bool { return target == ErrTimeWentBackwards }

// ErrTimeOutOfRange is matched by the error of a call whose time the
// engine cannot count in: its clock is int64 nanoseconds since 1970, with
// room for the longest deadline after it.
var ErrTimeOutOfRange = errors.New("time out of range")

// RangeError is a call made with a time outside [EarliestTime, LatestTime].
type RangeError struct {
	Got time.Time
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("engine: time %s is outside the engine's range %s to %s",
		e.Got.UTC().Format(time.RFC3339Nano), EarliestTime.Format(time.RFC3339), LatestTime.Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrTimeOutOfRange) true.
func (e *RangeError) Is(target error) bool { return target == ErrTimeOutOfRange }

// timeMargin keeps every deadline and timing-wheel bucket start the engine
// computes from a valid time within int64 nanoseconds: it exceeds twice
// the longest timer a profile takes (maxHold, about 1.1 years: Linux's
// default ESTABLISHED timeout is 5 days, and a sysctl may say more) plus
// the wheel's span.
const timeMargin = 1 << 56

// EarliestTime and LatestTime bound the packet times the engine takes
// (years 1677 and 2262, less a margin).
var (
	EarliestTime = time.Unix(0, math.MinInt64+timeMargin).UTC()
	LatestTime   = time.Unix(0, math.MaxInt64-timeMargin).UTC()

	// earliestSec and latestSec are the bounds' Unix seconds (InRange).
	earliestSec, latestSec = EarliestTime.Unix(), LatestTime.Unix()
)

// InRange reports whether t is within [EarliestTime, LatestTime], the
// times the engine takes (a call with another time is a *RangeError). A
// time whose Unix second lies strictly between the bounds' seconds is in
// range: two compares instead of time.Time's Before and After, two
// calls; only a time in one of the bounds' own seconds takes the exact
// comparisons.
func InRange(t time.Time) bool {
	if s := t.Unix(); s > earliestSec && s < latestSec {
		return true
	}
	return inRangeExact(t)
}

func inRangeExact(t time.Time) bool { return !t.Before(EarliestTime) && !t.After(LatestTime) }

// Flow states, as bits of flow.state.
const (
	stLive     = 1 << iota
	stFixed    // a FIN or a RST set the release time (B10, B11)
	stRSTSet   // the release time was set by a RST
	stInDue    // the flow is in the due list, not in a wheel bucket
	stOut      // an outbound packet was translated
	stIn       // an inbound packet was translated
	stUDPPeers // the UDP mapping has more peer ports in Engine.peers (peers.go)
	stHalfOpen // azure-natgw: a SYN with no answer yet (G4)
)

// flow is one live flow: a TCP connection or a UDP mapping. It is 40 bytes;
// addresses are stored as uint32 (the engine is IPv4-only, as the profiles
// are) and the SNAT address as the frontend's index.
type flow struct {
	inIP, dstIP     uint32
	inPort, dstPort uint16 // dstPort: a UDP mapping's first peer port
	snatPort        uint16
	slot            uint16 // index of the SNAT port among the instance's ports (C3 order)
	inst            uint32
	snatIP          uint16
	proto           Proto
	state           uint8
	deadline        int64  // release time, ns of packet time
	prev, next      uint32 // timing-wheel links: id+1, 0 for none; prev has wheelHead set at a bucket's head
}

const wheelHead = 1 << 31

func packKey(a uint32, ap uint16, b uint32, bp uint16, proto Proto) key {
	return key{uint64(a)<<32 | uint64(b), uint64(ap)<<24 | uint64(bp)<<8 | uint64(proto)}
}

// keyIP and keyPort are the parts of a destination (or, inbound, a
// source) that key a flow under the engine's mapping (Profile.Mapping):
// B6/B7 for azure-lb (a UDP mapping per destination IP), the full 5-tuple
// for linux and azure-natgw (L3, G3), the inside endpoint alone for rfc's
// UDP and ICMP mappings (R1).
func (e *Engine) keyIP(proto Proto, ip uint32) uint32     { return ip & e.kMask[proto&31].ip }
func (e *Engine) keyPort(proto Proto, port uint16) uint16 { return port & e.kMask[proto&31].port }
func (e *Engine) flowKeyPort(f *flow) uint16              { return e.keyPort(f.proto, f.dstPort) }
func (e *Engine) outKey(f *flow) key {
	return packKey(f.inIP, f.inPort, e.keyIP(f.proto, f.dstIP), e.flowKeyPort(f), f.proto)
}
func (e *Engine) inKey(f *flow) key {
	return packKey(uint32(f.snatIP), f.snatPort, e.keyIP(f.proto, f.dstIP), e.flowKeyPort(f), f.proto)
}

// instance is one backend instance: its blocks in C3 order and its counters.
type instance struct {
	addr   netip.Addr
	blocks []blockRef
	ports  int
	stat   [3]protoStat // TCP, UDP, ICMP
}

type protoStat struct {
	inUse, peak     int
	flows           uint64
	exhausted       uint64
	firstExhaustion int64
	releases        [ReleaseReclaimed + 1]uint64
	ips             []ipStat
}

type ipStat struct {
	ip                     uint16
	allocated, inUse, peak int
	flows                  uint64
}

func protoIndex(p Proto) int {
	switch p {
	case UDP:
		return 1
	case ICMP:
		return 2
	}
	return 0
}

// dueEntry is a flow due in the bucket being fired, with its sort key:
// release time, then instance and outbound key (see load).
type dueEntry struct {
	deadline int64
	inst, id uint32
	ka, kb   uint64
}

type tombKind uint8

const (
	tombReset     tombKind = iota + 1 // B14: answer with a RST
	tombReclaimed                     // B16: drop
)

// tomb is what the engine remembers of a flow ended by B14 or B16, for one
// idle timeout after its release (C7): enough to name the flow in events
// and to answer or drop its late packets on either side.
type tomb struct {
	until    int64
	inst     int32
	kind     tombKind
	snatIP   uint16
	snatPort uint16
	inPort   uint16
	inIP     uint32
}

func (tb *tomb) inside() netip.AddrPort { return netip.AddrPortFrom(addr4(tb.inIP), tb.inPort) }

type tombEntry struct {
	k       key
	inbound bool
	until   int64
}

// Engine is a reference SNAT engine for one configuration. It is not safe
// for concurrent use: a replay that uses several cores gives each its own
// engine and its own instances (their port ranges are disjoint, B5).
type Engine struct {
	// What every packet reads comes first, to share cache lines: the
	// clock, the seams (strategy.go, chosen in New from the profile; hold
	// is life when it is the hold timers, called directly, so that the
	// packet path of azure-lb pays no interface call for its timers), the
	// frontends, the flow table and its indexes.
	now, nextTimer     int64
	started            bool
	hairpin, fragments bool        // Profile.Hairpin, Profile.Fragments
	carry              uint64      // bit p set: protocol p is translated (B15, L10, G8, R6)
	hold               *holdTimers // &holdT when the lifecycle is the hold timers
	holdT              holdTimers
	lowest, peerPorts  bool // the picker is lowestFreePicker, the filter portFilter
	life               lifecycle
	filt               filter
	front              []netip.Addr // cfg.Frontends
	flows              []flow
	out, in            flowIndex
	kMask              [32]keyMask
	ids                behaviorIDs
	pick               picker
	emit               []Packet
	// pending are the packets the NAT sent while SetPool moved the clock
	// (it has no emit slice): the next call that takes one returns them
	// first.
	pending []Packet

	cfg      Config
	prof     *Profile
	obs      Observer
	idle     int64 // Config.IdleTimeout: how long C7 remembers a flow
	front4   []uint32
	frontIdx map[uint32]uint16
	backIdx  map[uint32]int32
	alloc    *allocator
	insts    []instance

	freeIDs []uint32
	live    int
	dests   map[destKey]*destRec
	peers   peerSet
	refs    [3][][]uint32

	// The timing wheel: buckets of 2^wheelShift ns; flows sit in the bucket
	// of a deadline no later than their own (idle refreshes do not move
	// them; the bucket re-files them when it comes due).
	wheel     []uint32
	wheelMask int64
	wheelN    int
	cursor    int64 // buckets below cursor have been loaded into due
	due       []dueEntry
	duePos    int

	tombOut, tombIn map[key]tomb
	tombQ           []tombEntry

	drops [dropEnd]uint64
	// warmed is a sink for Warm's loads.
	warmed uint32
}

// wheelShift makes a bucket 2^30 ns, about 1.07 s: below the shortest hold
// (RST, 15 s), so a deadline set by a packet never falls in a bucket that
// has already come due.
const wheelShift = 30

// New returns an engine for cfg, or a *ConfigError.
func New(cfg Config) (*Engine, error) {
	c, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg: c, obs: c.Observer,
		idle:     int64(c.IdleTimeout),
		frontIdx: make(map[uint32]uint16, len(c.Frontends)),
		backIdx:  make(map[uint32]int32, len(c.Backends)),
		out:      newFlowIndex(1024), in: newFlowIndex(1024),
		dests: map[destKey]*destRec{}, peers: newPeerSet(),
		tombOut: map[key]tomb{}, tombIn: map[key]tomb{},
	}
	e.prof = &e.cfg.Profile
	for i, a := range c.Frontends {
		e.front4 = append(e.front4, v4(a))
		e.frontIdx[v4(a)] = uint16(i)
	}
	for i := range e.refs {
		e.refs[i] = make([][]uint32, len(c.Frontends))
	}
	for _, pr := range []Proto{TCP, UDP, ICMP} {
		if (pr == ICMP && e.prof.ICMPEcho) || (pr != ICMP && c.Protocols.carries(pr)) {
			e.carry |= 1 << pr
		}
	}
	e.front, e.hairpin, e.fragments = c.Frontends, e.prof.Hairpin, e.prof.Fragments
	e.strategies()
	// The wheel spans more than the longest deadline a packet can set, up
	// to 2^16 buckets (19.5 h); a longer deadline is filed again each time
	// its bucket comes round.
	// Equivalent mutants here and in the loop below: the wheel's size is a
	// speed choice only. A flow filed in a bucket that comes due before its
	// deadline is filed again (load), so a smaller or larger wheel releases
	// every flow at the same nanosecond.
	span := int64(longestTimer(&c))>>wheelShift + 4
	n := int64(64)
	for n < span && n < 1<<16 {
		n *= 2
	}
	e.wheel = make([]uint32, n)
	e.wheelMask = n - 1
	e.insts = make([]instance, c.PoolSize)
	if e.prof.Quota == QuotaPerInstance {
		e.alloc = newAllocator(e.prof, len(c.Frontends), c.PoolSize, c.PortsPerInstance)
	}
	for i := range e.insts {
		if i < len(c.Backends) {
			e.insts[i].addr = c.Backends[i]
			e.backIdx[v4(c.Backends[i])] = int32(i)
		}
		if e.alloc != nil {
			e.setBlocks(i, e.alloc.inst[i])
		} else {
			e.sharedInventory(i)
		}
	}
	return e, nil
}

func v4(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

func addr4(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

// setBlocks gives instance i its blocks and recounts its per-IP allocation.
func (e *Engine) setBlocks(i int, blocks []blockRef) {
	in := &e.insts[i]
	in.blocks = blocks
	in.ports = len(blocks) * e.prof.BlockSize
	for p := range in.stat {
		st := &in.stat[p]
		for j := range st.ips {
			st.ips[j].allocated = 0
		}
		for _, b := range blocks {
			st.ip(b.ip).allocated += e.prof.BlockSize
		}
	}
}

func (st *protoStat) ip(ip uint16) *ipStat {
	for j := range st.ips {
		if st.ips[j].ip == ip {
			return &st.ips[j]
		}
	}
	st.ips = append(st.ips, ipStat{ip: ip})
	slices.SortFunc(st.ips, func(a, b ipStat) int { return int(a.ip) - int(b.ip) })
	for j := range st.ips {
		if st.ips[j].ip == ip {
			return &st.ips[j]
		}
	}
	panic("unreachable")
}

// Config returns the engine's configuration with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Plan returns the current allocation. Under a shared inventory (G1, R3)
// every instance's ranges are every frontend IP's whole range.
func (e *Engine) Plan() Plan {
	if e.alloc == nil {
		return sharedPlan(&e.cfg)
	}
	return e.alloc.plan(e.cfg.Frontends, e.cfg.Backends)
}

// Now returns the engine's current time: the latest time it was given.
func (e *Engine) Now() time.Time { return utc(e.now) }

// Flows returns the number of live flows.
func (e *Engine) Flows() int { return e.live }

// setTime moves the engine's clock to t and fires every timer due at or
// before t (B13: a flow whose release time is T is gone for a packet at T).
func (e *Engine) setTime(t time.Time) (int64, error) {
	// InRange, inlined by hand (it is too large for the compiler to
	// inline), with UnixNano from the second it reads.
	var ns int64
	if s := t.Unix(); s > earliestSec && s < latestSec {
		ns = s*1e9 + int64(t.Nanosecond())
	} else if !inRangeExact(t) {
		return 0, &RangeError{Got: t}
	} else {
		ns = t.UnixNano()
	}
	if e.started && ns < e.now {
		return ns, &TimeError{Now: utc(e.now), Got: t}
	}
	if !e.started {
		e.started = true
		e.cursor = ns >> wheelShift
		e.nextTimer = e.cursor << wheelShift
	}
	e.now = ns
	if ns >= e.nextTimer {
		e.fire(ns)
	}
	return ns, nil
}

// begin starts a call that appends the packets the NAT sends to emit:
// those SetPool's clock left pending come first.
func (e *Engine) begin(emit []Packet) {
	// Equivalent mutant: "> 0" → ">= 0" appends nothing and empties an
	// empty slice.
	if len(e.pending) > 0 {
		emit = append(emit, e.pending...)
		e.pending = e.pending[:0]
	}
	e.emit = emit
}

// Advance moves time to t without a packet, firing the timers due by then,
// and appends to emit the packets the NAT sends meanwhile (B14 RSTs).
func (e *Engine) Advance(t time.Time, emit []Packet) ([]Packet, error) {
	e.begin(emit)
	_, err := e.setTime(t)
	emit, e.emit = e.emit, nil
	return emit, err
}

// Process runs one packet through the NAT at p.Time. It returns the
// verdict and appends to emit the packets the NAT sends by then (B14 RSTs,
// from timers that fired before p, or in answer to p). A packet earlier
// than the engine's time is an error (*TimeError) and changes nothing.
//
// Process does not allocate for a packet of an established flow.
func (e *Engine) Process(p Packet, emit []Packet) (Verdict, []Packet, error) {
	e.begin(emit)
	t, err := e.setTime(p.Time)
	if err != nil {
		emit, e.emit = e.emit, nil
		return Verdict{Instance: -1}, emit, err
	}
	var v Verdict
	if p.Dir == Inbound {
		v = e.inbound(&p, t)
	} else {
		v = e.outbound(&p, t)
	}
	emit, e.emit = e.emit, nil
	return v, emit, nil
}

// admitBehavior is the behaviour that refuses a packet admit turned away:
// the profile's protocol item (B15, L10, G8), none for a malformed packet.
func (e *Engine) admitBehavior(r DropReason) Behavior {
	switch r {
	case DropMalformed:
		return NoBehavior
	case DropFragment:
		return e.ids.fragment
	}
	return e.ids.unsupported
}

// admit applies B15 (L10, G8) to a packet in either direction, and
// refuses a packet whose ports cannot be read (Packet.Malformed).
func (e *Engine) admit(p *Packet) DropReason {
	if p.Malformed {
		return DropMalformed
	}
	if p.Fragment && !e.fragments {
		return DropFragment
	}
	if !e.carries(p.Tuple.Proto) || p.ICMPOther || !p.Tuple.Src.Addr().Is4() || !p.Tuple.Dst.Addr().Is4() {
		return DropUnsupported
	}
	return NotDropped
}

func (e *Engine) lookup(x *flowIndex, h uint64, k key, inbound bool) (uint32, bool) {
	h32 := uint32(h)
	for i := uint64(h32) & x.mask; ; i = (i + 1) & x.mask {
		s := x.slots[i]
		if s == 0 {
			return 0, false
		}
		if uint32(s>>32) == h32 {
			id := uint32(s) - 1
			f := &e.flows[id]
			if (inbound && e.inKey(f) == k) || (!inbound && e.outKey(f) == k) {
				return id, true
			}
		}
	}
}

func (e *Engine) snat(f *flow) netip.AddrPort {
	return netip.AddrPortFrom(e.front[f.snatIP], f.snatPort)
}

func (e *Engine) outbound(p *Packet, t int64) Verdict {
	if r := e.admit(p); r != NotDropped {
		return e.drop(p, r, e.admitBehavior(r), -1)
	}
	if p.Embedded != nil {
		return e.icmpError(p)
	}
	tu := &p.Tuple
	inIP, dstIP := v4(tu.Src.Addr()), v4(tu.Dst.Addr())
	k := packKey(inIP, tu.Src.Port(), e.keyIP(tu.Proto, dstIP), e.keyPort(tu.Proto, tu.Dst.Port()), tu.Proto)
	h := hashKey(k)
	id, ok := e.lookup(&e.out, h, k, false)
	if !ok {
		return e.newFlow(p, t, k, h, inIP)
	}
	f := &e.flows[id]
	if f.dstPort != tu.Dst.Port() || f.dstIP != dstIP {
		e.sent(f, id, dstIP, tu.Dst.Port())
	}
	v := Verdict{Action: Translated, Behavior: e.ids.out[f.proto&31], Instance: int(f.inst),
		Tuple: Tuple{Proto: f.proto, Src: e.snat(f), Dst: tu.Dst}}
	var st step
	if h := e.hold; h != nil { // direct: no wrapper frame on the hot path
		if !h.refresh(f, t, p.Flags, stOut) {
			st = h.touch(e, f, id, t, p.Flags, stOut)
		}
	} else {
		st = e.life.touch(e, f, id, t, p.Flags, stOut)
	}
	switch st {
	case stepPass, stepIgnore:
	case stepInvalid:
		return e.drop(p, DropInvalid, L11, int(f.inst))
	case stepKill:
		e.releaseNow(id, t)
	case stepReopen:
		e.releaseNow(id, t)
		return e.newFlow(p, t, k, h, inIP)
	}
	if e.hairpin {
		return e.hairpinned(p, t, v)
	}
	return v
}

// carries reports whether the engine translates protocol p.
// Equivalent mutant: "p < 64" → "p <= 64": a shift by 64 gives 0 anyway.
func (e *Engine) carries(p Proto) bool { return p < 64 && e.carry>>p&1 != 0 }

// hairpinned sends translated outbound v back in when its destination is a
// public endpoint of the NAT (R7): it enters as an inbound packet from the
// sender's SNAT endpoint, and is filtered like one.
func (e *Engine) hairpinned(p *Packet, t int64, v Verdict) Verdict {
	if _, ok := e.frontIndex(v4(v.Tuple.Dst.Addr())); !ok {
		return v
	}
	back := Packet{Time: p.Time, Dir: Inbound, Tuple: v.Tuple, Flags: p.Flags}
	h := e.inbound(&back, t)
	if h.Action == Translated {
		h.Action, h.Behavior = Hairpinned, R7
		if e.obs != nil {
			e.obs(Event{Time: p.Time, Kind: HairpinDelivered, Behavior: R7, Instance: h.Instance, Proto: p.Tuple.Proto,
				Inside: p.Tuple.Src, Remote: h.Tuple.Dst, SNAT: h.Tuple.Src})
		}
	}
	return h
}

func (e *Engine) newFlow(p *Packet, t int64, k key, h uint64, inIP uint32) Verdict {
	tu := &p.Tuple
	inst, ok := e.backIdx[inIP]
	if !ok {
		return e.drop(p, DropNoInstance, NoBehavior, -1)
	}
	if p.Fragment {
		// L10: a fragment is translated with its datagram's flow; it
		// cannot open one (its transport header may be missing).
		return e.drop(p, DropFragment, e.ids.fragment, int(inst))
	}
	syn := tu.Proto == TCP && p.Flags&(SYN|ACK) == SYN
	// Equivalent mutants of this guard (and tombIn's): a lookup in an empty
	// map finds nothing; the guard only spares the hash.
	if len(e.tombOut) > 0 {
		if tb, ok := e.tombOut[k]; ok && tb.until > t {
			if !syn {
				return e.tombVerdict(p, tb)
			}
			delete(e.tombOut, k)
		}
	}
	var r DropReason
	var b Behavior
	var reset bool
	if h := e.hold; h != nil {
		r, b, reset = h.open(e, tu.Proto, p.Flags)
	} else {
		r, b, reset = e.life.open(e, tu.Proto, p.Flags)
	}
	if reset {
		return e.resetBack(p, b, int(inst))
	} else if r != NotDropped {
		return e.drop(p, r, b, int(inst))
	}
	var ip, port, slot uint16
	var fresh bool
	if e.lowest {
		ip, port, slot, fresh, ok = lowestFreePicker{}.pick(e, uint32(inst), tu.Proto, tu.Src, k)
	} else {
		ip, port, slot, fresh, ok = e.pick.pick(e, uint32(inst), tu.Proto, tu.Src, k)
	}
	if !ok {
		return e.exhausted(p, t, int(inst))
	}
	id, f, shared := e.addFlow(flow{inIP: inIP, dstIP: v4(tu.Dst.Addr()), inPort: tu.Src.Port(), dstPort: tu.Dst.Port(),
		snatIP: ip, snatPort: port, slot: slot, inst: uint32(inst), proto: tu.Proto, state: stLive}, h, t)
	var st step
	if h := e.hold; h != nil {
		if !h.refresh(f, t, p.Flags, stOut) {
			st = h.touch(e, f, id, t, p.Flags, stOut)
		}
	} else {
		st = e.life.touch(e, f, id, t, p.Flags, stOut)
	}
	e.link(id)
	b = e.ids.opened[f.proto&31]
	if !fresh && e.ids.reuse != NoBehavior {
		b = e.ids.reuse
	}
	if e.obs != nil {
		kind := MappingCreated
		if shared {
			kind = MappingReused
		}
		e.event(f, t, kind, b)
		if tu.Proto == TCP && !syn && e.ids.notSYN != NoBehavior {
			e.event(f, t, PickedUp, e.ids.notSYN)
		}
	}
	v := Verdict{Action: Translated, Behavior: b, Instance: int(inst), NewFlow: true,
		Tuple: Tuple{Proto: f.proto, Src: e.snat(f), Dst: tu.Dst}}
	if st == stepKill {
		e.releaseNow(id, t)
	}
	if e.hairpin {
		return e.hairpinned(p, t, v)
	}
	return v
}

// addFlow puts a new flow in the slab and the indexes (h: the hash of its
// outbound key) and tells the picker and the lifecycle; the caller applies
// its first packet (touch) and files it in the wheel (link). shared
// reports whether its SNAT port already carried flows.
func (e *Engine) addFlow(nf flow, h uint64, t int64) (id uint32, f *flow, shared bool) {
	if n := len(e.freeIDs); n > 0 {
		id = e.freeIDs[n-1]
		e.freeIDs = e.freeIDs[:n-1]
	} else {
		id = uint32(len(e.flows))
		e.flows = append(e.flows, flow{})
	}
	f = &e.flows[id]
	*f = nf
	e.live++
	e.out.insert(h, id)
	e.in.insert(hashKey(e.inKey(f)), id)
	shared = e.portRef(f, 1)
	if !e.lowest {
		e.pick.added(e, id)
	}
	if h := e.hold; h != nil {
		h.start(e, f, id, t)
	} else {
		e.life.start(e, f, id, t)
	}
	return id, f, shared
}

// The seams as the packet path calls them. The strategies of azure-lb
// (the hold timers, the lowest-free picker, the peer-port filter) are
// called directly, the others through their interfaces: the choice is
// made once in New (hold, lowest, peerPorts), and azure-lb pays no
// interface call.

func (e *Engine) ended(f *flow, id uint32) (ReleaseReason, Behavior) {
	if h := e.hold; h != nil {
		return h.ended(e, f, id)
	}
	return e.life.ended(e, f, id)
}

func (e *Engine) sent(f *flow, id uint32, ip uint32, port uint16) {
	if e.peerPorts {
		portFilter{}.sent(e, f, id, ip, port)
		return
	}
	e.filt.sent(e, f, id, ip, port)
}

func (e *Engine) allowed(f *flow, id uint32, ip uint32, port uint16) bool {
	if e.peerPorts {
		return portFilter{}.allowed(e, f, id, ip, port)
	}
	return e.filt.allowed(e, f, id, ip, port)
}

// releaseNow releases flow id at t, as its lifecycle names it (L6).
func (e *Engine) releaseNow(id uint32, t int64) {
	f := &e.flows[id]
	// Equivalent mutant: "!= 0" → "== 0" leaves the bit set, and release
	// clears the whole flow before anything reads it.
	if f.state&stInDue != 0 {
		f.state &^= stInDue // its due entry is passed over
	}
	r, b := e.ended(f, id)
	e.release(id, t, r, b)
}

// resetBack answers p, which has no flow, with a RST toward its sender
// (G6).
func (e *Engine) resetBack(p *Packet, b Behavior, inst int) Verdict {
	if p.Flags&RST != 0 {
		return e.drop(p, DropUnsolicited, b, inst) // a RST is never answered
	}
	rst := Packet{Time: p.Time, Dir: Inbound, Tuple: p.Tuple.Reverse(), Flags: RST | ACK}
	if p.Dir == Inbound {
		rst.Dir = Outbound
	}
	e.emit = append(e.emit, rst)
	if e.obs != nil {
		ev := Event{Time: p.Time, Kind: ResetSent, Behavior: b, Instance: inst, Proto: TCP}
		if p.Dir == Outbound {
			ev.Inside, ev.Remote = p.Tuple.Src, p.Tuple.Dst
		} else {
			ev.Remote, ev.SNAT = p.Tuple.Src, p.Tuple.Dst
		}
		e.obs(ev)
	}
	v := e.drop(p, DropUnsolicited, b, inst)
	v.Action = Reset
	return v
}

func (e *Engine) inbound(p *Packet, t int64) Verdict {
	if r := e.admit(p); r != NotDropped {
		return e.drop(p, r, e.admitBehavior(r), -1)
	}
	if p.Embedded != nil {
		return e.icmpError(p)
	}
	tu := &p.Tuple
	fi, ok := e.frontIndex(v4(tu.Dst.Addr()))
	if !ok {
		return e.drop(p, DropUnsolicited, e.ids.unsolicited, -1)
	}
	k := packKey(uint32(fi), tu.Dst.Port(), e.keyIP(tu.Proto, v4(tu.Src.Addr())), e.keyPort(tu.Proto, tu.Src.Port()), tu.Proto)
	h := hashKey(k)
	if id, ok := e.lookup(&e.in, h, k, true); ok {
		return e.inboundFlow(p, t, id)
	}
	// Equivalent mutants: see tombOut's guard.
	if len(e.tombIn) > 0 {
		if tb, ok := e.tombIn[k]; ok && tb.until > t {
			return e.tombVerdict(p, tb)
		}
	}
	if v, ok := e.life.miss(e, *p, t, fi); ok {
		return v
	}
	return e.drop(p, DropUnsolicited, e.ids.unsolicited, -1)
}

// inboundFlow is B8 (L8, G7, R2) for an inbound packet that matches flow
// id: a source other than the flow's first remote endpoint must pass the
// filter; a translated packet moves the flow's timers (B12, L5, G5, R4).
func (e *Engine) inboundFlow(p *Packet, t int64, id uint32) Verdict {
	tu := &p.Tuple
	f := &e.flows[id]
	if src := v4(tu.Src.Addr()); (f.dstPort != tu.Src.Port() || f.dstIP != src) && !e.allowed(f, id, src, tu.Src.Port()) {
		return e.drop(p, DropUnsolicited, e.ids.unsolicited, int(f.inst))
	}
	v := Verdict{Action: Translated, Behavior: e.ids.in[f.proto&31], Instance: int(f.inst),
		Tuple: Tuple{Proto: f.proto, Src: tu.Src, Dst: netip.AddrPortFrom(addr4(f.inIP), f.inPort)}}
	var st step
	if h := e.hold; h != nil {
		if !h.refresh(f, t, p.Flags, stIn) {
			st = h.touch(e, f, id, t, p.Flags, stIn)
		}
	} else {
		st = e.life.touch(e, f, id, t, p.Flags, stIn)
	}
	switch st {
	case stepInvalid:
		return e.drop(p, DropInvalid, L11, int(f.inst))
	case stepKill:
		e.releaseNow(id, t)
	case stepReopen:
		// A SYN from outside reopening a closed flow: the flow goes, and
		// nothing inside asked for the new one (L6, L8).
		e.releaseNow(id, t)
		return e.drop(p, DropUnsolicited, e.ids.unsolicited, -1)
	}
	return v
}

// icmpError handles an ICMP error (p.Embedded set) under a profile that
// translates ICMP (R6, L10): one whose quoted packet belongs to a live
// flow goes on translated, and one that matches none is dropped.
// Inbound, the quoted packet is one the NAT sent (SNAT endpoint → remote):
// the outer destination and the quoted source go back to the inside
// endpoint. Outbound, it is one the inside endpoint received (remote →
// inside endpoint): the outer source and the quoted destination become
// the SNAT endpoint. Either way the quoted remote must be one the flow's
// filter lets in (B8, L8, R2), as a packet from it would, and the error's
// own source is not filtered: routers on the path send errors (RFC 5508).
// An error changes neither the flow's state nor its timers (RFC 5382
// REQ-10; conntrack's RELATED packets touch no timer). It allocates the
// verdict's Embedded, on this path only.
func (e *Engine) icmpError(p *Packet) Verdict {
	em := p.Embedded
	if p.Tuple.Proto != ICMP || (em.Proto != TCP && em.Proto != UDP && em.Proto != ICMP) || !em.Src.Addr().Is4() || !em.Dst.Addr().Is4() {
		return e.drop(p, DropUnsupported, e.ids.unsupported, -1)
	}
	var (
		id     uint32
		ok     bool
		remote netip.AddrPort
	)
	if p.Dir == Inbound {
		remote = em.Dst
		if fi, isFront := e.frontIndex(v4(em.Src.Addr())); isFront && em.Src.Addr() == p.Tuple.Dst.Addr() {
			k := packKey(uint32(fi), em.Src.Port(), e.keyIP(em.Proto, v4(remote.Addr())), e.keyPort(em.Proto, remote.Port()), em.Proto)
			id, ok = e.lookup(&e.in, hashKey(k), k, true)
		}
	} else {
		remote = em.Src
		if em.Dst.Addr() == p.Tuple.Src.Addr() {
			k := packKey(v4(em.Dst.Addr()), em.Dst.Port(), e.keyIP(em.Proto, v4(remote.Addr())), e.keyPort(em.Proto, remote.Port()), em.Proto)
			id, ok = e.lookup(&e.out, hashKey(k), k, false)
		}
	}
	if !ok {
		return e.drop(p, DropUnsolicited, e.ids.icmpError, -1)
	}
	f := &e.flows[id]
	if ip := v4(remote.Addr()); (f.dstPort != remote.Port() || f.dstIP != ip) && !e.allowed(f, id, ip, remote.Port()) {
		return e.drop(p, DropUnsolicited, e.ids.icmpError, int(f.inst))
	}
	v := Verdict{Action: Translated, Behavior: e.ids.icmpError, Instance: int(f.inst)}
	if p.Dir == Inbound {
		inside := netip.AddrPortFrom(addr4(f.inIP), f.inPort)
		v.Tuple = Tuple{Proto: ICMP, Src: p.Tuple.Src, Dst: netip.AddrPortFrom(inside.Addr(), p.Tuple.Dst.Port())}
		v.Embedded = &Tuple{Proto: em.Proto, Src: inside, Dst: em.Dst}
	} else {
		v.Tuple = Tuple{Proto: ICMP, Src: netip.AddrPortFrom(e.front[f.snatIP], p.Tuple.Src.Port()), Dst: p.Tuple.Dst}
		v.Embedded = &Tuple{Proto: em.Proto, Src: em.Src, Dst: e.snat(f)}
	}
	return v
}

func (e *Engine) frontIndex(a uint32) (uint16, bool) {
	// Equivalent mutants: the scan and the map give the same answer; the
	// scan is faster for a few frontends.
	if len(e.front4) <= 8 {
		for i, f := range e.front4 {
			if f == a {
				return uint16(i), true
			}
		}
		return 0, false
	}
	i, ok := e.frontIdx[a]
	return i, ok
}

// tombVerdict answers a late packet of a flow that ended by B14 (a RST back
// to its sender) or by B16 (dropped), on either side of the NAT (C7). An
// inbound p is addressed to the flow's SNAT endpoint.
func (e *Engine) tombVerdict(p *Packet, tb tomb) Verdict {
	if tb.kind == tombReclaimed {
		return e.drop(p, DropReleased, B16, int(tb.inst))
	}
	rst := Packet{Time: p.Time, Dir: Inbound, Tuple: p.Tuple.Reverse(), Flags: RST | ACK}
	remote := p.Tuple.Dst
	if p.Dir == Inbound {
		rst.Dir = Outbound
		remote = p.Tuple.Src
	}
	e.emit = append(e.emit, rst)
	if e.obs != nil {
		e.obs(Event{Time: p.Time, Kind: ResetSent, Behavior: B14, Instance: int(tb.inst), Proto: TCP,
			Inside: tb.inside(), Remote: remote, SNAT: netip.AddrPortFrom(e.cfg.Frontends[tb.snatIP], tb.snatPort)})
	}
	v := e.drop(p, DropReleased, B14, int(tb.inst))
	v.Action = Reset
	return v
}

func (e *Engine) drop(p *Packet, r DropReason, b Behavior, inst int) Verdict {
	e.drops[r]++
	if e.obs != nil {
		ev := Event{Time: p.Time, Kind: PacketDropped, Behavior: b, Instance: inst, Proto: p.Tuple.Proto, Drop: r}
		if p.Dir == Outbound {
			ev.Inside, ev.Remote = p.Tuple.Src, p.Tuple.Dst
		} else {
			ev.Remote, ev.SNAT = p.Tuple.Src, p.Tuple.Dst
		}
		e.obs(ev)
	}
	return Verdict{Action: Dropped, Reason: r, Behavior: b, Instance: inst}
}

func (e *Engine) exhausted(p *Packet, t int64, inst int) Verdict {
	st := &e.insts[inst].stat[protoIndex(p.Tuple.Proto)]
	if st.exhausted == 0 {
		st.firstExhaustion = t
	}
	st.exhausted++
	e.drops[DropExhausted]++
	b := e.ids.exhausted
	if e.obs != nil {
		e.obs(Event{Time: p.Time, Kind: Exhausted, Behavior: b, Instance: inst, Proto: p.Tuple.Proto,
			Inside: p.Tuple.Src, Remote: p.Tuple.Dst, Drop: DropExhausted})
	}
	return Verdict{Action: Dropped, Reason: DropExhausted, Behavior: b, Instance: inst}
}

func (e *Engine) event(f *flow, t int64, kind EventKind, b Behavior) {
	e.obs(Event{Time: utc(t), Kind: kind, Behavior: b, Instance: int(f.inst), Proto: f.proto,
		Inside: netip.AddrPortFrom(addr4(f.inIP), f.inPort), Remote: netip.AddrPortFrom(addr4(f.dstIP), f.dstPort),
		SNAT: e.snat(f)})
}

// portRef counts a flow on its SNAT port; it reports whether the port
// already carried flows (a reuse, B6/B7).
func (e *Engine) portRef(f *flow, delta int) bool {
	pi := protoIndex(f.proto)
	refs := e.refs[pi][f.snatIP]
	if refs == nil {
		refs = make([]uint32, e.prof.PortsPerIP)
		e.refs[pi][f.snatIP] = refs
	}
	r := &refs[f.snatPort-e.prof.FirstPort]
	st := &e.insts[f.inst].stat[pi]
	is := st.ip(f.snatIP)
	// Equivalent mutant: ">" → ">=" (delta is +1 or -1).
	if delta > 0 {
		*r++
		st.flows++
		is.flows++
		if *r > 1 {
			return true
		}
		st.inUse++
		is.inUse++
		st.peak = max(st.peak, st.inUse)
		is.peak = max(is.peak, is.inUse)
		return false
	}
	*r--
	if *r == 0 {
		st.inUse--
		is.inUse--
	}
	return false
}

// utc turns the engine's nanoseconds back into a time: UTC, so that equal
// instants compare equal with ==.
func utc(ns int64) time.Time { return time.Unix(0, ns).UTC() }
