package reference

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// SetPool changes the backend pool at time t (B16). backends must extend
// or truncate the current list (instances keep their identity by
// position); poolSize is at least len(backends), 0 meaning len(backends).
//
// Under the default table, when the pool crosses into a smaller tier each
// instance keeps the lower part of its blocks and flows on the reclaimed
// ports are released silently; later packets of those flows are dropped as
// released. A smaller pool only adds ports. A manual allocation never
// shrinks: an instance past its capacity gets no ports, recorded as a
// ConfigChanged event with Ports 0.
//
// The timers due by t fire first; the packets they make the NAT send (B14
// RSTs) are returned, with their own times, by the next Process,
// ProcessReply or Advance, before that call's own.
func (e *Engine) SetPool(t time.Time, backends []netip.Addr, poolSize int) error {
	if e.alloc == nil || e.prof.Timers != TimersHold {
		return &ConfigError{Field: "pool", Value: e.prof.Name, Reason: "pool changes are modelled for azure-lb only (B16)"}
	}
	if poolSize == 0 {
		poolSize = len(backends)
	}
	old := e.cfg.Backends
	n := min(len(old), len(backends))
	if !slices.Equal(old[:n], backends[:n]) {
		return &ConfigError{Field: "backends", Value: backends, Behavior: B16, Reason: "a pool change must keep the existing instances in order (extend or truncate the list)"}
	}
	if err := checkAddrs("backend", backends); err != nil {
		return err
	}
	if poolSize < 1 || poolSize < len(backends) {
		return &ConfigError{Field: "pool size", Value: poolSize, Reason: fmt.Sprintf("want at least 1 and at least the %d backends given", len(backends))}
	}
	if e.cfg.PortsPerInstance == 0 && poolSize > e.prof.maxPool() {
		return &ConfigError{Field: "pool size", Value: poolSize, Behavior: B3,
			Reason: fmt.Sprintf("default allocation covers pools of 1 to %d", e.prof.maxPool())}
	}
	// The timers due by t fire; the packets they send (B14) wait for the
	// next call that returns packets.
	e.emit = e.pending
	ts, err := e.setTime(t)
	e.pending, e.emit = e.emit, nil
	if err != nil {
		return err
	}
	before := make([][]blockRef, len(e.alloc.inst))
	copy(before, e.alloc.inst)
	lost := e.alloc.resize(poolSize)

	// Release the flows of removed instances and on reclaimed blocks.
	lostSet := map[uint64]bool{}
	for i, bs := range lost {
		for _, b := range bs {
			lostSet[uint64(i)<<32|uint64(b.ip)<<16|uint64(b.idx)] = true
		}
	}
	// Equivalent mutant: ">" → ">=" scans the flows for nothing.
	if len(lostSet) > 0 {
		bsz := uint16(e.prof.BlockSize)
		for id := range e.flows {
			f := &e.flows[id]
			if f.state&stLive == 0 {
				continue
			}
			idx := (f.snatPort - e.prof.FirstPort) / bsz
			if lostSet[uint64(f.inst)<<32|uint64(f.snatIP)<<16|uint64(idx)] {
				e.addTomb(f, ts, tombReclaimed)
				e.release(uint32(id), ts, ReleaseReclaimed, B16)
			}
		}
	}
	for _, b := range backends[n:] {
		e.backIdx[v4(b)] = int32(slices.Index(backends, b))
	}
	for _, b := range old[n:] {
		delete(e.backIdx, v4(b))
	}
	e.cfg.Backends = slices.Clone(backends)
	e.cfg.PoolSize = poolSize
	// Equivalent mutant: "<" → "<=" reslices to the same length.
	if poolSize < len(e.insts) {
		e.insts = e.insts[:poolSize]
	}
	for len(e.insts) < poolSize {
		e.insts = append(e.insts, instance{})
	}
	for i := range e.insts {
		in := &e.insts[i]
		if i < len(backends) {
			in.addr = backends[i]
		}
		var prev []blockRef
		if i < len(before) {
			prev = before[i]
		}
		if i < len(before) && slices.Equal(prev, e.alloc.inst[i]) {
			continue
		}
		e.setBlocks(i, e.alloc.inst[i])
		e.reslot(uint32(i))
		if e.obs != nil {
			ev := Event{Time: t, Kind: ConfigChanged, Behavior: B16, Instance: i, Ports: in.ports}
			ev.Inside = netip.AddrPortFrom(in.addr, 0)
			e.obs(ev)
		}
	}
	return nil
}

// reslot recomputes the slots of instance inst's flows after its blocks
// changed, and rebuilds its contended-destination bitmaps.
func (e *Engine) reslot(inst uint32) {
	for k := range e.dests {
		if k.inst == inst {
			delete(e.dests, k)
		}
	}
	in := &e.insts[inst]
	bs := e.prof.BlockSize
	count := map[destKey]int{}
	var ids []uint32
	for id := range e.flows {
		f := &e.flows[id]
		if f.state&stLive == 0 || f.inst != inst {
			continue
		}
		b := blockRef{f.snatIP, (f.snatPort - e.prof.FirstPort) / uint16(bs)}
		j, _ := slices.BinarySearchFunc(in.blocks, b, cmpBlock)
		f.slot = uint16(j*bs + int(f.snatPort-e.prof.FirstPort)%bs)
		// Equivalent mutant: "++" → "--" gives a lone flow on slot 0 a
		// record too, which answers as no record does (slot 0 taken).
		count[destKey{inst, f.dstIP, e.flowKeyPort(f), f.proto}]++
		ids = append(ids, uint32(id))
	}
	for _, id := range ids {
		f := &e.flows[id]
		dk := destKey{inst, f.dstIP, e.flowKeyPort(f), f.proto}
		if count[dk] == 1 && f.slot == 0 {
			continue
		}
		r := e.dests[dk]
		if r == nil {
			r = &destRec{}
			e.dests[dk] = r
		}
		r.set(int(f.slot))
	}
}

// InstanceStats counts one backend instance's use of one protocol's ports.
type InstanceStats struct {
	Instance int
	Inside   netip.Addr
	Proto    Proto
	// Allocated is the instance's total; InUse the SNAT ports carrying at
	// least one flow now; Peak the most in use at once.
	Allocated, InUse, Peak int
	// Flows counts flows created; ExhaustionDrops new flows refused (B9),
	// the first at FirstExhaustion.
	Flows, ExhaustionDrops uint64
	FirstExhaustion        time.Time
	// Releases counts released flows by reason.
	Releases [ReleaseReclaimed + 1]uint64
	PerIP    []IPStats
}

// IPStats is one instance's use of one frontend IP.
type IPStats struct {
	IP                     netip.Addr
	Allocated, InUse, Peak int
	Flows                  uint64
}

// Stats returns, per instance and protocol (TCP, then UDP), the counters
// of its ports. ICMP echo mappings (L10, R6) are not counted here.
func (e *Engine) Stats() []InstanceStats {
	out := make([]InstanceStats, 0, 2*len(e.insts)) // a capacity hint: mutants of it are equivalent
	for i := range e.insts {
		in := &e.insts[i]
		for _, proto := range [2]Proto{TCP, UDP} {
			st := &in.stat[protoIndex(proto)]
			s := InstanceStats{Instance: i, Inside: in.addr, Proto: proto, Allocated: in.ports, InUse: st.inUse,
				Peak: st.peak, Flows: st.flows, ExhaustionDrops: st.exhausted, Releases: st.releases}
			if st.exhausted > 0 {
				s.FirstExhaustion = utc(st.firstExhaustion)
			}
			for _, is := range st.ips {
				s.PerIP = append(s.PerIP, IPStats{IP: e.cfg.Frontends[is.ip], Allocated: is.allocated, InUse: is.inUse, Peak: is.peak, Flows: is.flows})
			}
			out = append(out, s)
		}
	}
	return out
}

// Drops returns how many packets were dropped (or answered with a RST) for
// each reason, indexed by DropReason (NumDropReasons long).
func (e *Engine) Drops() []uint64 { return slices.Clone(e.drops[:]) }

// InUse returns how many of instance inst's SNAT ports carry at least one
// flow now, for TCP and for UDP: what Stats reports as InUse, without
// building the statistics.
func (e *Engine) InUse(inst int) (tcp, udp int) {
	if inst < 0 || inst >= len(e.insts) {
		return 0, 0
	}
	st := &e.insts[inst].stat
	return st[0].inUse, st[1].inUse
}
