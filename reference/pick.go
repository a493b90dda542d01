package reference

import (
	"net/netip"
	"slices"
)

// keyDst returns the destination IP and port a key holds (as masked by
// the engine's mapping).
func keyDst(k key) (uint32, uint16) { return uint32(k.a), uint16(k.b >> 8) }

// taken reports whether a flow of proto already holds (ip, port) toward
// the destination part of a key: the translated tuple would not be unique
// (B6, B7, L3, G3).
func (e *Engine) taken(ip, port uint16, dstIP uint32, dport uint16, proto Proto) bool {
	k := packKey(uint32(ip), port, dstIP, dport, proto)
	_, ok := e.lookup(&e.in, hashKey(k), k, true)
	return ok
}

// slotAddr returns the frontend IP index and port of slot s of instance
// in (its ports in C3 order).
// A slot in the first block, the common case (slot 0 unless the
// destination is contended, C3), needs no division.
func (e *Engine) slotAddr(in *instance, s int) (uint16, uint16) {
	bs := e.prof.BlockSize
	if s < bs {
		b := in.blocks[0]
		return b.ip, e.prof.FirstPort + b.idx*uint16(bs) + uint16(s)
	}
	b := in.blocks[s/bs]
	return b.ip, e.prof.FirstPort + b.idx*uint16(bs) + uint16(s%bs)
}

// destKey names one (instance, protocol, destination) whose flows hold more
// than the instance's first port (see destRec).
type destKey struct {
	inst  uint32
	ip    uint32
	port  uint16
	proto Proto
}

// destRec is a bitmap of the slots an instance uses toward one destination.
// It exists only while the destination is contended: without one, the
// instance has no flow to the destination or exactly one, on slot 0. So
// the common case (one flow per destination) costs nothing here, and the
// lowest free slot (C3) is found by a word scan, not a probe per port.
type destRec struct {
	count int
	hint  int // no zero bit in words below hint
	words []uint64
}

// lowestFreePicker is azure-lb's port choice (PortLowestFree): the
// instance's lowest slot with no flow to the destination (B5, B6, B7,
// C3), or exhaustion (B9).
type lowestFreePicker struct{}

func (lowestFreePicker) pick(e *Engine, inst uint32, proto Proto, _ netip.AddrPort, k key) (ip, port, slot uint16, fresh, ok bool) {
	s, ok := e.allocSlot(inst, proto, k)
	if !ok {
		return 0, 0, 0, false, false
	}
	ip, port = e.slotAddr(&e.insts[inst], s)
	return ip, port, uint16(s), true, true
}

func (lowestFreePicker) added(*Engine, uint32) {}

func (lowestFreePicker) released(e *Engine, id uint32, _ int64, _ ReleaseReason) {
	if len(e.dests) == 0 {
		return
	}
	f := &e.flows[id]
	dk := destKey{inst: f.inst, ip: f.dstIP, port: e.flowKeyPort(f), proto: f.proto}
	if r, ok := e.dests[dk]; ok {
		r.clear(int(f.slot))
		if r.count == 0 {
			delete(e.dests, dk)
		}
	}
}

// allocSlot picks the instance's lowest slot with no flow to the
// destination of key k.
func (e *Engine) allocSlot(inst uint32, proto Proto, k key) (int, bool) {
	in := &e.insts[inst]
	if in.ports == 0 {
		return 0, false
	}
	dstIP, dport := keyDst(k)
	ports := in.ports
	dk := destKey{inst: inst, ip: dstIP, port: dport, proto: proto}
	// Equivalent mutants of this guard: a lookup in an empty map finds nothing.
	if len(e.dests) > 0 {
		if r, ok := e.dests[dk]; ok {
			s := r.lowestFree(ports)
			if s < 0 {
				return 0, false
			}
			r.set(s)
			return s, true
		}
	}
	ip, port := e.slotAddr(in, 0)
	if !e.taken(ip, port, dstIP, dport, proto) {
		return 0, true
	}
	if ports < 2 {
		return 0, false
	}
	r := &destRec{}
	r.set(0)
	r.set(1)
	e.dests[dk] = r
	return 1, true
}

func (r *destRec) lowestFree(ports int) int {
	for w := r.hint; w < len(r.words); w++ {
		if x := ^r.words[w]; x != 0 {
			r.hint = w
			s := w*64 + trailingZeros(x)
			if s >= ports {
				return -1
			}
			return s
		}
	}
	r.hint = len(r.words)
	if s := len(r.words) * 64; s < ports {
		return s
	}
	return -1
}

func (r *destRec) set(s int) {
	// Equivalent mutant: "/" → "*" appends words that stay zero past the
	// instance's ports: lowestFree finds the same lowest zero bit first.
	for s/64 >= len(r.words) {
		r.words = append(r.words, 0)
	}
	r.words[s/64] |= 1 << (s % 64)
	// Equivalent mutants of the count (here and in clear): it only decides
	// when an empty record is deleted, and an empty record answers as no
	// record does (slot 0 free or not, the lowest free bit).
	r.count++
}

func (r *destRec) clear(s int) {
	r.words[s/64] &^= 1 << (s % 64)
	r.count--
	r.hint = min(r.hint, s/64)
}

// srcKey names an inside endpoint of one protocol.
type srcKey struct {
	ip    uint32
	port  uint16
	proto Proto
}

func (f *flow) src() srcKey { return srcKey{f.inIP, f.inPort, f.proto} }

// bySource lists the live flows of each inside endpoint, oldest first.
type bySource map[srcKey][]uint32

func (b bySource) add(f *flow, id uint32) { b[f.src()] = append(b[f.src()], id) }

func (b bySource) remove(f *flow, id uint32) {
	k := f.src()
	ids := slices.DeleteFunc(b[k], func(x uint32) bool { return x == id })
	if len(ids) == 0 {
		delete(b, k)
		return
	}
	b[k] = ids
}

// probe mixes the profile's seed, a flow's key and a round number into
// the offset of a random probe: random-looking, but the same for the same
// flow whatever else the engine holds, so that engines splitting the
// instances between them choose as one engine does (C9).
// Equivalent mutants of the mix ("round+1" → "round-1"): another
// offset as random-looking and as deterministic, which the profiles allow
// (L2's probe, G2's draws).
func (e *Engine) probe(k key, round int) uint64 {
	return hashKey(key{k.a ^ e.prof.Seed, k.b ^ uint64(round+1)*0x9e3779b97f4a7c15})
}

// preservePicker is linux's port choice (PortPreserve, L2, L4), as
// Linux's nf_nat_core get_unique_tuple does it, within the instance's
// rule (its ranges, L1): the SNAT endpoint of the inside endpoint's latest
// live flow, when the new tuple stays unique; else the inside source
// port, when it lies in the ranges and the tuple is unique; else ports
// probed from an offset in rounds of 128, 64, 32, 16 and 8 (at most the
// range's size in one round), each round from a new offset: a flow may be
// refused while ports are free (L4).
type preservePicker struct {
	src bySource
}

func (pp *preservePicker) pick(e *Engine, inst uint32, proto Proto, inside netip.AddrPort, k key) (ip, port, slot uint16, fresh, ok bool) {
	in := &e.insts[inst]
	n := in.ports
	if n == 0 {
		return 0, 0, 0, false, false
	}
	dstIP, dport := keyDst(k)
	ids := pp.src[srcKey{v4(inside.Addr()), inside.Port(), proto}]
	for i := len(ids) - 1; i >= 0; i-- {
		f := &e.flows[ids[i]]
		if f.inst == inst && !e.taken(f.snatIP, f.snatPort, dstIP, dport, proto) {
			return f.snatIP, f.snatPort, f.slot, true, true
		}
	}
	bs := e.prof.BlockSize
	// Equivalent mutant: "< PortsPerIP" → "<=": the one more port's block
	// index is past every block, so the search finds none.
	if sp := inside.Port(); sp >= e.prof.FirstPort && int(sp-e.prof.FirstPort) < e.prof.PortsPerIP {
		idx := (sp - e.prof.FirstPort) / uint16(bs)
		for j := 0; j < len(in.blocks); {
			b := blockRef{in.blocks[j].ip, idx}
			if at, found := slices.BinarySearchFunc(in.blocks, b, cmpBlock); found && !e.taken(b.ip, sp, dstIP, dport, proto) {
				// Equivalent mutants of the slot: only azure-lb's lowest-free
				// picker reads a flow's slot (pool.go's reslot rebuilds it).
				return b.ip, sp, uint16(at*bs + int(sp-e.prof.FirstPort)%bs), true, true
			}
			// on to the instance's next frontend IP
			j, _ = slices.BinarySearchFunc(in.blocks, blockRef{b.ip + 1, 0}, cmpBlock)
		}
	}
	attempts := min(n, 128)
	for round := 0; ; round++ {
		off := int(e.probe(k, round) & 0xffff)
		for i := range attempts {
			s := (off + i) % n
			ip, port := e.slotAddr(in, s)
			if !e.taken(ip, port, dstIP, dport, proto) {
				return ip, port, uint16(s), true, true
			}
		}
		// Equivalent mutant: "attempts >= n" → "> n": a round as long as
		// the range has tried every slot, so a further one finds none.
		if attempts >= n || attempts < 16 {
			return 0, 0, 0, false, false
		}
		attempts /= 2
	}
}

func (pp *preservePicker) added(e *Engine, id uint32) { pp.src.add(&e.flows[id], id) }

func (pp *preservePicker) released(e *Engine, id uint32, _ int64, _ ReleaseReason) {
	pp.src.remove(&e.flows[id], id)
}

// destCount names one (frontend IP, destination, protocol) of G3's cap.
type destCount struct {
	ip    uint16
	proto Proto
	dst   uint64
}

// holdEntry is a held-down key and when the hold ends (G4).
type holdEntry struct {
	k     key
	until int64
}

// gatewayPicker is azure-natgw's port choice (PortRandom, QuotaShared):
// one inventory of every public IP's ports, shared by all instances (G1);
// a random public IP and port among those with no live flow to the
// destination (G3), not held down for it (G4) and whose IP carries fewer
// than MaxPerDestination flows to it (G3). Up to 64 random draws, then a
// scan from a random start.
type gatewayPicker struct {
	count map[destCount]int
	holds map[key]int64
	queue []holdEntry
	max   int
	hold  int64
}

func newGatewayPicker(e *Engine) *gatewayPicker {
	return &gatewayPicker{count: map[destCount]int{}, holds: map[key]int64{},
		max: e.prof.Gateway.MaxPerDestination, hold: int64(e.prof.Gateway.UDPHoldDown)}
}

func (g *gatewayPicker) held(k key, now int64) bool {
	until, ok := g.holds[k]
	return ok && until > now
}

func (g *gatewayPicker) pick(e *Engine, _ uint32, proto Proto, _ netip.AddrPort, k key) (ip, port, slot uint16, fresh, ok bool) {
	dstIP, dport := keyDst(k)
	dst := uint64(dstIP)<<16 | uint64(dport)
	nIP, n := uint64(len(e.front4)), uint64(e.prof.PortsPerIP)
	free := func(ip, port uint16) bool {
		return !e.taken(ip, port, dstIP, dport, proto) && !g.held(packKey(uint32(ip), port, dstIP, dport, proto), e.now)
	}
	under := func(ip uint16) bool { return g.max == 0 || g.count[destCount{ip, proto, dst}] < g.max }
	for round := range 64 {
		h := e.probe(k, round)
		ip, port := uint16(h%nIP), e.prof.FirstPort+uint16((h>>24)%n)
		if under(ip) && free(ip, port) {
			return ip, port, 0, true, true
		}
	}
	h := e.probe(k, 64)
	for i := range nIP {
		ip := uint16((h + i) % nIP)
		if !under(ip) {
			continue
		}
		for j := range n {
			if port := e.prof.FirstPort + uint16((h>>24+j)%n); free(ip, port) {
				return ip, port, 0, true, true
			}
		}
	}
	return 0, 0, 0, false, false
}

func (g *gatewayPicker) added(e *Engine, id uint32) {
	f := &e.flows[id]
	g.count[destCount{f.snatIP, f.proto, uint64(f.dstIP)<<16 | uint64(f.dstPort)}]++
}

// released lowers G3's count and, after a UDP flow's idle release, holds
// its (public IP, port, destination) down (G4).
func (g *gatewayPicker) released(e *Engine, id uint32, at int64, r ReleaseReason) {
	f := &e.flows[id]
	c := destCount{f.snatIP, f.proto, uint64(f.dstIP)<<16 | uint64(f.dstPort)}
	// Equivalent mutants here only keep map entries longer or for ever,
	// never change an answer: "<= 0" → "< 0" keeps a zero count (read as
	// the missing one); "until <= at" → "< at" frees a hold at the next
	// release; "==" → "!=" never frees one (the entry is always current
	// when its time comes: a key is held again only after its hold ended,
	// so after this entry was purged), and held compares the map's own
	// time; "g.hold > 0" → ">= 0" files holds that end at once.
	if g.count[c]--; g.count[c] <= 0 {
		delete(g.count, c)
	}
	for len(g.queue) > 0 && g.queue[0].until <= at {
		q := g.queue[0]
		if g.holds[q.k] == q.until {
			delete(g.holds, q.k)
		}
		g.queue = g.queue[1:]
	}
	if f.proto == UDP && r == ReleaseIdle && g.hold > 0 {
		k := e.inKey(f)
		g.holds[k] = at + g.hold
		// Equivalent mutant: "at + g.hold" → "at - g.hold" in the queue
		// only frees the map entry later or never; held compares the
		// map's own time.
		g.queue = append(g.queue, holdEntry{k, at + g.hold})
	}
}

// portFilter is the filtering of the profiles whose flows are keyed by
// the remote's IP (B8: a UDP mapping admits replies from the ports of its
// destination IP it has sent to, kept in Engine.peers; L8, G7: flows keyed
// by the full 5-tuple never get here).
type portFilter struct{}

func (portFilter) sent(e *Engine, f *flow, id uint32, _ uint32, port uint16) {
	f.state |= stUDPPeers
	e.peers.add(id, port)
}

func (portFilter) allowed(e *Engine, f *flow, id uint32, _ uint32, port uint16) bool {
	return f.state&stUDPPeers != 0 && e.peers.contains(id, port)
}

func (portFilter) released(e *Engine, f *flow, id uint32) {
	if f.state&stUDPPeers != 0 {
		e.peers.drop(id)
	}
}
