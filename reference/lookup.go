package reference

import "net/netip"

// Lookup returns the SNAT endpoint of the live flow that an outbound packet
// with tuple out would use, without changing anything: no timer fires and
// no idle timer restarts (call Advance first to look up as of a time). It
// is how a replay turns a recorded reply into what the server sent to the
// SNAT IP:port.
func (e *Engine) Lookup(out Tuple) (netip.AddrPort, bool) {
	if !e.carries(out.Proto) || !out.Src.Addr().Is4() || !out.Dst.Addr().Is4() {
		return netip.AddrPort{}, false
	}
	k := packKey(v4(out.Src.Addr()), out.Src.Port(), e.keyIP(out.Proto, v4(out.Dst.Addr())), e.keyPort(out.Proto, out.Dst.Port()), out.Proto)
	id, ok := e.lookup(&e.out, hashKey(k), k, false)
	if !ok {
		return netip.AddrPort{}, false
	}
	return e.snat(&e.flows[id]), true
}

// ProcessReply runs a reply recorded on the inside through the NAT's
// inbound path. reply travels from a server to an inside endpoint; the
// server sent it to the SNAT IP:port of that endpoint's flow toward it, so
// that is where it enters the NAT. ProcessReply is Lookup, then Process of
// the reply addressed to the SNAT endpoint, in one step: timers fire first.
// A late reply of a flow ended by B14 or B16 is addressed to the SNAT
// endpoint the flow had, remembered for one idle timeout (C7): it is
// answered with a RST (B14) or dropped as released (B16), exactly as the
// same packet recorded on the outside would be. A reply whose flow has no
// SNAT endpoint (it began before the capture, was refused, or is
// forgotten) is dropped as unsolicited (B8, C8). It returns the verdict
// and the SNAT endpoint the reply was addressed to, invalid when there was
// none.
func (e *Engine) ProcessReply(reply Packet, emit []Packet) (Verdict, netip.AddrPort, []Packet, error) {
	e.begin(emit)
	t, err := e.setTime(reply.Time)
	if err != nil {
		emit, e.emit = e.emit, nil
		return Verdict{Instance: -1}, netip.AddrPort{}, emit, err
	}
	reply.Dir = Inbound
	var v Verdict
	var snat netip.AddrPort
	p := &reply
	// Drops are reported as the flow's own outbound direction would be,
	// since the SNAT endpoint is unknown.
	asOut := Packet{Time: p.Time, Dir: Outbound, Tuple: p.Tuple.Reverse(), Flags: p.Flags}
	if r := e.admit(p); r != NotDropped {
		v = e.drop(&asOut, r, e.admitBehavior(r), -1)
	} else if p.Embedded != nil {
		v, snat = e.replyError(p, &asOut)
	} else {
		tu := &p.Tuple
		k := packKey(v4(tu.Dst.Addr()), tu.Dst.Port(), e.keyIP(tu.Proto, v4(tu.Src.Addr())), e.keyPort(tu.Proto, tu.Src.Port()), tu.Proto)
		if id, ok := e.lookup(&e.out, hashKey(k), k, false); ok {
			snat = e.snat(&e.flows[id])
			tu.Dst = snat
			v = e.inboundFlow(p, t, id)
		} else if tb, ok := e.tombOut[k]; ok && tb.until > t {
			snat = netip.AddrPortFrom(e.cfg.Frontends[tb.snatIP], tb.snatPort)
			tu.Dst = snat
			v = e.tombVerdict(p, tb)
		} else {
			v = e.drop(&asOut, DropUnsolicited, e.ids.unsolicited, -1)
		}
	}
	emit, e.emit = e.emit, nil
	return v, snat, emit, nil
}

// replyError is ProcessReply for an ICMP error as the inside host got it,
// quoting its own packet (inside endpoint → remote): it reached the NAT
// at the flow's SNAT address, quoting that packet as the NAT sent it, and
// is then an inbound error like any other (R6, L10). snat is the flow's
// SNAT endpoint, the quoted source of the outside view.
func (e *Engine) replyError(p *Packet, asOut *Packet) (Verdict, netip.AddrPort) {
	q := p.Embedded
	if p.Tuple.Proto == ICMP && q.Src.Addr().Is4() && q.Dst.Addr().Is4() && q.Src.Addr() == p.Tuple.Dst.Addr() {
		k := packKey(v4(q.Src.Addr()), q.Src.Port(), e.keyIP(q.Proto, v4(q.Dst.Addr())), e.keyPort(q.Proto, q.Dst.Port()), q.Proto)
		if id, ok := e.lookup(&e.out, hashKey(k), k, false); ok {
			snat := e.snat(&e.flows[id])
			p.Tuple.Dst = netip.AddrPortFrom(snat.Addr(), p.Tuple.Dst.Port())
			p.Embedded = &Tuple{Proto: q.Proto, Src: snat, Dst: q.Dst}
			return e.icmpError(p), snat
		}
	}
	return e.drop(asOut, DropUnsolicited, e.ids.icmpError, -1), netip.AddrPort{}
}

// Warm reads, without changing anything, the memory that Process will read
// for p: the flow index slot of its key and the flow it finds there. A
// replay that warms a batch of packets before processing them lets the
// CPU fetch their flows in parallel, where Process alone waits for each
// flow in turn (with more live flows than the caches hold, each lookup
// misses twice: the index, then the flow).
func (e *Engine) Warm(p *Packet) {
	// Equivalent mutants here and in WarmReply and warm: a changed guard
	// warms another slot or none, which changes what is in the cache,
	// never an answer (TestWarmChangesNothing); only a read past the
	// slab, which panics, is not.
	tu := &p.Tuple
	if (tu.Proto != TCP && tu.Proto != UDP) || !tu.Src.Addr().Is4() || !tu.Dst.Addr().Is4() {
		return
	}
	x, k := &e.out, key{}
	if p.Dir == Inbound {
		fi, ok := e.frontIndex(v4(tu.Dst.Addr()))
		if !ok {
			return
		}
		x, k = &e.in, packKey(uint32(fi), tu.Dst.Port(), e.keyIP(tu.Proto, v4(tu.Src.Addr())), e.keyPort(tu.Proto, tu.Src.Port()), tu.Proto)
	} else {
		k = packKey(v4(tu.Src.Addr()), tu.Src.Port(), e.keyIP(tu.Proto, v4(tu.Dst.Addr())), e.keyPort(tu.Proto, tu.Dst.Port()), tu.Proto)
	}
	e.warm(x, hashKey(k))
}

// WarmReply is Warm for a reply that ProcessReply will take.
func (e *Engine) WarmReply(reply *Packet) {
	tu := &reply.Tuple
	if (tu.Proto != TCP && tu.Proto != UDP) || !tu.Src.Addr().Is4() || !tu.Dst.Addr().Is4() {
		return
	}
	k := packKey(v4(tu.Dst.Addr()), tu.Dst.Port(), e.keyIP(tu.Proto, v4(tu.Src.Addr())), e.keyPort(tu.Proto, tu.Src.Port()), tu.Proto)
	e.warm(&e.out, hashKey(k))
}

// warm loads the home slot of h and the flow it names when its hash
// matches; the loads feed e.warmed so that the compiler keeps them.
func (e *Engine) warm(x *flowIndex, h uint64) {
	s := x.slots[uint64(uint32(h))&x.mask]
	if uint32(s>>32) == uint32(h) && s != 0 {
		e.warmed += e.flows[uint32(s)-1].inIP
	}
}
