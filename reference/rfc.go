package reference

import (
	"net/netip"
	"slices"
)

// rfcTimers is the rfc profile's lifecycle (TimersRFC): a UDP or ICMP
// mapping lives RFC.UDP (RFC.ICMP) after its last outbound packet, or
// inbound one with InboundRefresh (R4, R6); a TCP connection has an idle
// timer of TCPEstablished once it has translated a packet each way and
// TCPTransitory before that, after a FIN each way and after a RST, which
// is translated (R5).
type rfcTimers struct {
	t      RFCTimers
	strict bool
	// tcp holds per flow ID the FINs seen (bit 0 outbound, bit 1
	// inbound) and a RST (bit 2).
	tcp []uint8
}

func (r *rfcTimers) open(e *Engine, proto Proto, flags TCPFlags) (DropReason, Behavior, bool) {
	if r.strict && proto == TCP && flags&(SYN|ACK) != SYN {
		return DropNotSYN, R5, false
	}
	return NotDropped, NoBehavior, false
}

func (r *rfcTimers) start(e *Engine, f *flow, id uint32, t int64) {
	for int(id) >= len(r.tcp) {
		r.tcp = append(r.tcp, 0)
	}
	r.tcp[id] = 0
}

func (r *rfcTimers) touch(e *Engine, f *flow, id uint32, t int64, flags TCPFlags, dir uint8) step {
	if f.proto != TCP {
		if dir == stOut || r.t.InboundRefresh {
			d := r.t.UDP
			if f.proto == ICMP {
				d = r.t.ICMP
			}
			e.setDeadline(f, id, t+int64(d))
		}
		f.state |= dir
		return stepPass
	}
	f.state |= dir
	x := r.tcp[id]
	if flags&FIN != 0 {
		x |= 1 << (dir >> 5) // stOut → bit 0, stIn → bit 1
	}
	if flags&RST != 0 {
		x |= 4
	}
	r.tcp[id] = x
	d := r.t.TCPTransitory
	if f.state&(stOut|stIn) == stOut|stIn && x&4 == 0 && x&3 != 3 {
		d = r.t.TCPEstablished
	}
	e.setDeadline(f, id, t+int64(d))
	return stepPass
}

func (r *rfcTimers) ended(e *Engine, f *flow, id uint32) (ReleaseReason, Behavior) {
	switch f.proto {
	case UDP:
		return ReleaseIdle, R4
	case ICMP:
		return ReleaseIdle, R6
	}
	switch {
	case r.tcp[id]&4 != 0:
		return ReleaseRST, R5
	case r.tcp[id]&3 == 3:
		return ReleaseFIN, R5
	}
	return ReleaseIdle, R5
}

// miss is R2 for a TCP SYN from outside to a public endpoint whose inside
// endpoint has live connections but none with this remote end: it opens a
// connection when the filter lets the remote in (endpoint-independent: any;
// address-dependent: one of the connections goes to its IP).
func (r *rfcTimers) miss(e *Engine, p Packet, t int64, fi uint16) (Verdict, bool) {
	tu := &p.Tuple
	if tu.Proto != TCP {
		return Verdict{}, false
	}
	pp := e.pick.(*parityPicker)
	owner, ok := pp.owner[pubKey{fi, tu.Dst.Port()}]
	if !ok {
		return Verdict{}, false
	}
	rec := pp.eim[owner]
	allowed := e.prof.Filtering == FilterEndpointIndependent
	if e.prof.Filtering == FilterAddress {
		src := v4(tu.Src.Addr())
		allowed = slices.ContainsFunc(rec.ids, func(id uint32) bool { return e.flows[id].dstIP == src })
	}
	if !allowed || p.Flags&(SYN|ACK) != SYN {
		return e.drop(&p, DropUnsolicited, R2, int(rec.inst)), true
	}
	return e.openInbound(&p, t, rec, owner), true
}

// openInbound creates a TCP connection for inbound p through the public
// endpoint of an existing mapping (R2 with a filter that lets p in).
func (e *Engine) openInbound(p *Packet, t int64, rec *eimRec, owner srcKey) Verdict {
	tu := &p.Tuple
	nf := flow{inIP: owner.ip, inPort: owner.port, dstIP: v4(tu.Src.Addr()), dstPort: tu.Src.Port(),
		snatIP: rec.ip, snatPort: rec.port, inst: rec.inst, proto: TCP, state: stLive}
	id, f, _ := e.addFlow(nf, hashKey(e.outKey(&nf)), t)
	e.life.touch(e, f, id, t, p.Flags, stIn)
	e.link(id)
	if e.obs != nil {
		e.event(f, t, MappingReused, R2)
	}
	return Verdict{Action: Translated, Behavior: R2, Instance: int(f.inst), NewFlow: true,
		Tuple: Tuple{Proto: TCP, Src: tu.Src, Dst: netip.AddrPortFrom(addr4(f.inIP), f.inPort)}}
}

// pubKey names a public endpoint (frontend IP index and port) of TCP.
type pubKey struct {
	ip   uint16
	port uint16
}

// eimRec is an inside endpoint's TCP mapping: its public endpoint and
// live connections (R1).
type eimRec struct {
	ip, port uint16
	inst     uint32
	ids      []uint32
}

// parityPicker is rfc's port choice (PortParity, QuotaShared): inside IP
// i uses public IP i mod k (paired pooling); a new mapping keeps the inside
// port when free, else takes the lowest free port of its parity in its
// range (1–1023 or 1024–65535), else the lowest free one of the range
// (R3). A TCP connection of an inside endpoint that has one takes its
// public endpoint (R1).
type parityPicker struct {
	used  [3][]portBits // per protocol index and frontend IP: public ports in use
	eim   map[srcKey]*eimRec
	owner map[pubKey]srcKey
}

type portBits [1024]uint64

func newParityPicker(e *Engine) *parityPicker {
	pp := &parityPicker{eim: map[srcKey]*eimRec{}, owner: map[pubKey]srcKey{}}
	for i := range pp.used {
		pp.used[i] = make([]portBits, len(e.front4))
	}
	return pp
}

func (b *portBits) has(p int) bool { return b[p>>6]&(1<<(p&63)) != 0 }
func (b *portBits) set(p int)      { b[p>>6] |= 1 << (p & 63) }
func (b *portBits) clear(p int)    { b[p>>6] &^= 1 << (p & 63) }

// lowest returns the lowest port in [lo, hi] not in b whose parity is
// want%2 (any parity when anyParity), or -1.
func (b *portBits) lowest(lo, hi, want int, anyParity bool) int {
	mask := ^uint64(0)
	if !anyParity {
		mask = 0x5555555555555555 // even ports
		if want%2 == 1 {
			mask <<= 1
		}
	}
	for w := lo >> 6; w <= hi>>6; w++ {
		free := ^b[w] & mask
		if w == lo>>6 {
			free &= ^uint64(0) << (lo & 63)
		}
		if free != 0 {
			if p := w<<6 + trailingZeros(free); p <= hi {
				return p
			}
			return -1
		}
	}
	return -1
}

func (pp *parityPicker) pick(e *Engine, inst uint32, proto Proto, inside netip.AddrPort, k key) (ip, port, slot uint16, fresh, ok bool) {
	if proto == TCP {
		if rec, ok := pp.eim[srcKey{v4(inside.Addr()), inside.Port(), TCP}]; ok {
			return rec.ip, rec.port, 0, false, true
		}
	}
	ip = uint16(int(inst) % len(e.front4))
	b := &pp.used[protoIndex(proto)][ip]
	want := int(inside.Port())
	lo, hi := 1024, 65535
	if want < 1024 {
		lo, hi = 1, 1023
	}
	// Equivalent mutant: "want >= lo" → "want > lo": for want == lo, free,
	// lowest below returns lo itself (same parity, first in range).
	if want >= lo && !b.has(want) {
		return ip, uint16(want), 0, true, true
	}
	// Equivalent mutants: "got < 0" → "got <= 0" (here and below): lowest
	// never returns port 0 (lo is at least 1).
	got := b.lowest(lo, hi, want, false)
	if got < 0 {
		got = b.lowest(lo, hi, want, true)
	}
	if got < 0 {
		return 0, 0, 0, false, false
	}
	return ip, uint16(got), 0, true, true
}

func (pp *parityPicker) added(e *Engine, id uint32) {
	f := &e.flows[id]
	if f.proto != TCP {
		pp.used[protoIndex(f.proto)][f.snatIP].set(int(f.snatPort))
		return
	}
	k := f.src()
	rec, ok := pp.eim[k]
	if !ok {
		rec = &eimRec{ip: f.snatIP, port: f.snatPort, inst: f.inst}
		pp.eim[k] = rec
		pp.owner[pubKey{f.snatIP, f.snatPort}] = k
		pp.used[0][f.snatIP].set(int(f.snatPort))
	}
	rec.ids = append(rec.ids, id)
}

func (pp *parityPicker) released(e *Engine, id uint32, _ int64, _ ReleaseReason) {
	f := &e.flows[id]
	if f.proto != TCP {
		pp.used[protoIndex(f.proto)][f.snatIP].clear(int(f.snatPort))
		return
	}
	k := f.src()
	rec := pp.eim[k]
	rec.ids = slices.DeleteFunc(rec.ids, func(x uint32) bool { return x == id })
	if len(rec.ids) == 0 {
		delete(pp.eim, k)
		delete(pp.owner, pubKey{rec.ip, rec.port})
		pp.used[0][rec.ip].clear(int(rec.port))
	}
}

// rfcFilter is R2 for the endpoint-independent mappings of the rfc
// profile: the remote endpoints a mapping has sent to beyond its first,
// and the filtering behaviour that decides who may send back.
type rfcFilter struct {
	mode  Filtering
	peers map[uint32][]uint64 // flow ID → ip<<16 | port
}

func (r *rfcFilter) sent(e *Engine, f *flow, id uint32, ip uint32, port uint16) {
	v := uint64(ip)<<16 | uint64(port)
	if !slices.Contains(r.peers[id], v) {
		r.peers[id] = append(r.peers[id], v)
	}
}

func (r *rfcFilter) allowed(e *Engine, f *flow, id uint32, ip uint32, port uint16) bool {
	switch r.mode {
	case FilterEndpointIndependent:
		return true
	case FilterAddress:
		return f.dstIP == ip || slices.ContainsFunc(r.peers[id], func(v uint64) bool { return uint32(v>>16) == ip })
	}
	return slices.Contains(r.peers[id], uint64(ip)<<16|uint64(port))
}

func (r *rfcFilter) released(e *Engine, f *flow, id uint32) { delete(r.peers, id) }
