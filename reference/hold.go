package reference

// holdTimers is the lifecycle of azure-lb and azure-natgw (TimersHold):
// an idle timer restarted by every translated packet (B12, G5); a FIN or
// a RST fixes the release time, which later packets do not move (B10,
// B11, G4), a RST only ever shortening it; on azure-natgw a SYN with no
// answer is closed after HalfOpen (G4).
type holdTimers struct {
	// idle is the idle timeout of TCP (idle[0]) and UDP (idle[1], G5's
	// fixed one): indexed by proto>>4&1, 0 for TCP (6), 1 for UDP (17).
	idle     [2]int64
	fin, rst int64
	halfOpen int64 // 0: no half-open close
	strict   bool  // C5's strict mode: only a SYN opens a TCP flow
	// resetUnknown answers TCP packets with no flow with a RST (G6)
	// instead of opening a flow (outbound) or dropping them (inbound).
	resetUnknown bool
	// ids: the items of a release by FIN, by RST, by the idle timer and by
	// the half-open close.
	finID, rstID, idleID, halfID Behavior
}

func newHoldTimers(e *Engine) holdTimers {
	p := e.prof
	h := holdTimers{fin: int64(p.FINHold), rst: int64(p.RSTHold), halfOpen: int64(p.Gateway.HalfOpen),
		strict: e.cfg.Strict || p.SYNOnly, resetUnknown: p.ResetUnknown,
		finID: B10, rstID: B11, idleID: B12, halfID: B12}
	idle := int64(e.cfg.IdleTimeout)
	h.idle = [2]int64{idle, idle}
	if p.Gateway.UDPIdle != 0 {
		h.idle[UDP>>4&1] = int64(p.Gateway.UDPIdle)
	}
	if p.Name == NameAzureNATGW {
		h.finID, h.rstID, h.idleID, h.halfID = G4, G4, G5, G4
	}
	return h
}

func (h *holdTimers) open(e *Engine, proto Proto, flags TCPFlags) (DropReason, Behavior, bool) {
	if proto != TCP || flags&(SYN|ACK) == SYN || !h.strict {
		return NotDropped, NoBehavior, false
	}
	if h.resetUnknown {
		return DropUnsolicited, e.ids.notSYN, true
	}
	return DropNotSYN, e.ids.notSYN, false
}

func (h *holdTimers) start(e *Engine, f *flow, id uint32, t int64) {
	if h.halfOpen != 0 && f.proto == TCP {
		f.state |= stHalfOpen
		f.deadline = t + h.halfOpen
	}
}

// refresh is touch's common case, small enough to be inlined at the
// packet path's call sites: a packet that is neither a TCP FIN nor a RST,
// of a flow whose release time no FIN or RST has fixed and that is not
// half-open, restarts the idle timer (B12, G5). It reports false, having
// changed nothing, for every other packet, which touch then applies.
func (h *holdTimers) refresh(f *flow, t int64, flags TCPFlags, dir uint8) bool {
	if f.state&(stFixed|stHalfOpen) != 0 || (f.proto == TCP && flags&(FIN|RST) != 0) {
		return false
	}
	f.state |= dir
	f.deadline = t + h.idle[f.proto>>4&1]
	return true
}

// touch applies a translated packet to its flow: the idle timer restarts
// (B12, G5) unless a FIN or a RST has fixed the release time (B10, B11,
// G4), or the flow is half-open and the packet is not its answer (G4).
func (h *holdTimers) touch(e *Engine, f *flow, id uint32, t int64, flags TCPFlags, dir uint8) step {
	f.state |= dir
	if f.proto == TCP && flags&(FIN|RST) != 0 {
		d := f.deadline
		if flags&RST != 0 && (f.state&stFixed == 0 || t+h.rst < d) {
			d = t + h.rst
			f.state |= stFixed | stRSTSet
		}
		if flags&FIN != 0 && f.state&stFixed == 0 {
			d = t + h.fin
			f.state |= stFixed
		}
		e.setDeadline(f, id, d)
	}
	if f.state&stFixed == 0 {
		if f.state&stHalfOpen != 0 {
			if dir != stIn {
				return stepPass // G4: the SYN's close runs on until an answer
			}
			f.state &^= stHalfOpen
		}
		f.deadline = t + h.idle[f.proto>>4&1]
	}
	return stepPass
}

func (h *holdTimers) ended(e *Engine, f *flow, _ uint32) (ReleaseReason, Behavior) {
	switch {
	case f.state&stRSTSet != 0:
		return ReleaseRST, h.rstID
	case f.state&stFixed != 0:
		return ReleaseFIN, h.finID
	case f.state&stHalfOpen != 0:
		return ReleaseIdle, h.halfID
	}
	return ReleaseIdle, h.idleID
}

// miss answers an inbound TCP packet with no flow with a RST toward its
// sender on azure-natgw (G6); azure-lb drops it (B8).
func (h *holdTimers) miss(e *Engine, p Packet, t int64, fi uint16) (Verdict, bool) {
	if !h.resetUnknown || p.Tuple.Proto != TCP {
		return Verdict{}, false
	}
	return e.resetBack(&p, G6, -1), true
}
