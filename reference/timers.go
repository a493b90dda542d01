package reference

import (
	"cmp"
	"math/bits"
	"net/netip"
	"slices"
	"time"
)

func trailingZeros(x uint64) int { return bits.TrailingZeros64(x) }

// link files flow id in the wheel bucket of its deadline. A deadline in a
// bucket that has already been loaded (a timer shorter than a bucket, as
// a sysctl may set) goes straight to the due list.
func (e *Engine) link(id uint32) {
	f := &e.flows[id]
	if e.started && f.deadline>>wheelShift < e.cursor {
		e.addDue(id)
		return
	}
	b := uint32((f.deadline >> wheelShift) & e.wheelMask)
	head := e.wheel[b]
	f.prev = wheelHead | b
	f.next = head
	if head != 0 {
		e.flows[head-1].prev = id + 1
	}
	e.wheel[b] = id + 1
	// Equivalent mutant: "++" → "--" leaves wheelN below zero, never zero
	// again: fire then loads each empty bucket of a long gap in turn
	// instead of skipping them (slower, the same releases; see unlink).
	e.wheelN++
}

// setDeadline sets flow id's release time to d. A later time is only
// stored (the flow's bucket files it again when it comes due); an earlier
// one moves the flow to the bucket of d, unless it is not filed yet (a new
// flow) or already in the due list.
func (e *Engine) setDeadline(f *flow, id uint32, d int64) {
	// Equivalent mutant: "<" → "<=" files an unchanged deadline again in
	// its own bucket.
	if d < f.deadline && f.prev != 0 && f.state&stInDue == 0 {
		e.unlink(id)
		f.deadline = d
		e.link(id)
		return
	}
	f.deadline = d
}

// unlink takes flow id out of its wheel bucket.
func (e *Engine) unlink(id uint32) {
	f := &e.flows[id]
	if f.prev&wheelHead != 0 {
		e.wheel[f.prev&^wheelHead] = f.next
	} else {
		e.flows[f.prev-1].next = f.next
	}
	if f.next != 0 {
		e.flows[f.next-1].prev = f.prev
	}
	f.prev, f.next = 0, 0
	// Equivalent mutant: "--" → "++" leaves wheelN above zero, and wheelN
	// only lets fire skip the empty buckets of a long gap: with it wrong,
	// fire loads each empty bucket in turn (slower, the same releases).
	e.wheelN--
}

// fire releases, in order of release time, every flow due at or before t.
// Each bucket is loaded once; a flow whose deadline moved on since it was
// filed is filed again, so a refresh costs nothing until its bucket comes.
func (e *Engine) fire(t int64) {
	for {
		for e.duePos < len(e.due) {
			d := e.due[e.duePos]
			if d.deadline > t {
				e.nextTimer = d.deadline
				return
			}
			e.duePos++
			f := &e.flows[d.id]
			if f.state&stInDue == 0 {
				continue // released meanwhile (B16)
			}
			f.state &^= stInDue
			if f.deadline > d.deadline {
				e.link(d.id)
				continue
			}
			e.expire(d.id, d.deadline)
		}
		e.due, e.duePos = e.due[:0], 0
		if e.wheelN == 0 {
			// Nothing is filed: skip the empty buckets of a long gap.
			// Equivalent mutant: "+1" → "-1" stops two buckets short; they
			// are empty too and are loaded for nothing.
			e.cursor = max(e.cursor, t>>wheelShift+1)
		}
		start := e.cursor << wheelShift
		if start > t {
			e.nextTimer = start
			return
		}
		e.load(e.cursor)
		e.cursor++
	}
}

// load moves bucket c's flows that are due within it to the due list,
// and files the others again. Flows due at the same nanosecond are
// released in the order of (instance, outbound key): an order that depends
// only on the flows, not on their slab IDs, so that engines that split the
// instances between them release (and report) in the same order as one
// engine holding them all (C9).
func (e *Engine) load(c int64) {
	b := c & e.wheelMask
	next := e.wheel[b]
	e.wheel[b] = 0
	for next != 0 {
		id := next - 1
		f := &e.flows[id]
		next = f.next
		f.prev, f.next = 0, 0
		e.wheelN-- // equivalent mutant: "++" (see unlink)
		if f.deadline>>wheelShift > c {
			e.link(id)
			continue
		}
		f.state |= stInDue
		k := e.outKey(f)
		e.due = append(e.due, dueEntry{deadline: f.deadline, inst: f.inst, id: id, ka: k.a, kb: k.b})
	}
	if len(e.due) > 1 { // equivalent mutant: ">=" sorts a list of one
		slices.SortFunc(e.due, cmpDue)
	}
}

func cmpDue(a, b dueEntry) int {
	if c := cmp.Compare(a.deadline, b.deadline); c != 0 {
		return c
	}
	if c := cmp.Compare(a.inst, b.inst); c != 0 {
		return c
	}
	if c := cmp.Compare(a.ka, b.ka); c != 0 {
		return c
	}
	return cmp.Compare(a.kb, b.kb)
}

// addDue puts flow id, due in a bucket already loaded, in the due list in
// its place, and makes sure the next timer check comes by its deadline.
func (e *Engine) addDue(id uint32) {
	f := &e.flows[id]
	f.state |= stInDue
	k := e.outKey(f)
	d := dueEntry{deadline: f.deadline, inst: f.inst, id: id, ka: k.a, kb: k.b}
	rest := e.due[e.duePos:]
	i, _ := slices.BinarySearchFunc(rest, d, cmpDue)
	e.due = slices.Insert(e.due, e.duePos+i, d)
	e.nextTimer = min(e.nextTimer, f.deadline)
}

// expire ends flow id at its release time.
func (e *Engine) expire(id uint32, at int64) {
	f := &e.flows[id]
	reason, b := e.ended(f, id)
	if reason == ReleaseIdle && e.cfg.TCPResetOnIdle && f.proto == TCP && f.state&(stOut|stIn) == stOut|stIn {
		// B14: an established flow that idles out is reset both ways, and
		// its later packets are answered with a RST.
		inside := netip.AddrPortFrom(addr4(f.inIP), f.inPort)
		remote := netip.AddrPortFrom(addr4(f.dstIP), f.dstPort)
		ts := utc(at)
		e.emit = append(e.emit,
			Packet{Time: ts, Dir: Inbound, Tuple: Tuple{Proto: TCP, Src: remote, Dst: inside}, Flags: RST | ACK},
			Packet{Time: ts, Dir: Outbound, Tuple: Tuple{Proto: TCP, Src: e.snat(f), Dst: remote}, Flags: RST | ACK})
		if e.obs != nil {
			e.event(f, at, ResetSent, B14)
		}
		e.addTomb(f, at, tombReset)
	}
	e.release(id, at, reason, b)
}

// release frees flow id's slot and index entries; b is the behaviour that
// released it.
func (e *Engine) release(id uint32, at int64, reason ReleaseReason, b Behavior) {
	f := &e.flows[id]
	if f.prev != 0 {
		e.unlink(id)
	}
	e.out.remove(hashKey(e.outKey(f)), id)
	e.in.remove(hashKey(e.inKey(f)), id)
	if e.lowest {
		lowestFreePicker{}.released(e, id, at, reason)
	} else {
		e.pick.released(e, id, at, reason)
	}
	e.portRef(f, -1)
	st := &e.insts[f.inst].stat[protoIndex(f.proto)]
	st.releases[reason]++
	if e.peerPorts {
		portFilter{}.released(e, f, id)
	} else {
		e.filt.released(e, f, id)
	}
	if e.obs != nil {
		ev := Event{Time: utc(at), Kind: Released, Behavior: b, Instance: int(f.inst), Proto: f.proto,
			Inside: netip.AddrPortFrom(addr4(f.inIP), f.inPort), Remote: netip.AddrPortFrom(addr4(f.dstIP), f.dstPort),
			SNAT: e.snat(f), Release: reason}
		e.obs(ev)
	}
	*f = flow{}
	e.freeIDs = append(e.freeIDs, id)
	e.live--
}

// addTomb remembers, for one idle timeout, a flow ended by B14 or B16 so
// that its later packets get a RST or are dropped as released.
func (e *Engine) addTomb(f *flow, at int64, kind tombKind) {
	// Equivalent mutant: "<=" → "<" keeps a tomb that ends at this very
	// nanosecond until the next purge; a lookup reads a tomb only while
	// its until is later than the packet's time, so a kept one is inert.
	for len(e.tombQ) > 0 && e.tombQ[0].until <= at {
		q := e.tombQ[0]
		m := e.tombOut
		if q.inbound {
			m = e.tombIn
		}
		if tb, ok := m[q.k]; ok && tb.until == q.until {
			delete(m, q.k)
		}
		e.tombQ = e.tombQ[1:]
	}
	tb := tomb{until: at + e.idle, kind: kind, inst: int32(f.inst), snatIP: f.snatIP, snatPort: f.snatPort,
		inIP: f.inIP, inPort: f.inPort}
	e.tombOut[e.outKey(f)] = tb
	e.tombIn[e.inKey(f)] = tb
	e.tombQ = append(e.tombQ, tombEntry{e.outKey(f), false, tb.until}, tombEntry{e.inKey(f), true, tb.until})
}

// Drain lets time pass until every live flow has been released (B10–B12)
// and appends the packets the NAT sends meanwhile (B14 RSTs). It returns
// the time it stopped at: the last release time, or the engine's current
// time when no flow was live. A replay calls it after the last packet to
// see how the flows still open would end.
func (e *Engine) Drain(emit []Packet) (time.Time, []Packet, error) {
	last := e.now
	for id := range e.flows {
		if f := &e.flows[id]; f.state&stLive != 0 {
			last = max(last, f.deadline)
		}
	}
	emit, err := e.Advance(utc(last), emit)
	return utc(last), emit, err
}
