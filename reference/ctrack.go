package reference

// Connection-tracking TCP states, in the kernel's order
// (nf_conntrack_proto_tcp.c).
const (
	ctNone uint8 = iota
	ctSynSent
	ctSynRecv
	ctEstablished
	ctFinWait
	ctCloseWait
	ctLastAck
	ctTimeWait
	ctClose
	ctSynSent2
	ctInvalid
	ctIgnore
)

// Packet kinds, by the flags that decide them (the kernel's
// get_conntrack_index).
const (
	ckSYN uint8 = iota
	ckSYNACK
	ckFIN
	ckACK
	ckRST
	ckNone
)

func ctKind(f TCPFlags) uint8 {
	switch {
	case f&RST != 0:
		return ckRST
	case f&SYN != 0 && f&ACK != 0:
		return ckSYNACK
	case f&SYN != 0:
		return ckSYN
	case f&FIN != 0:
		return ckFIN
	case f&ACK != 0:
		return ckACK
	}
	return ckNone
}

// ctValid reports whether flags are a combination TCP allows, once ECE,
// CWR and PSH are set aside (the kernel's tcp_valid_flags): a FIN needs an
// ACK; no flags at all, SYN with FIN or with RST are invalid (L11).
func ctValid(f TCPFlags) bool {
	switch f &^ (ECE | CWR | PSH) {
	case SYN, SYN | URG, SYN | ACK, RST, RST | ACK, FIN | ACK, FIN | ACK | URG, ACK, ACK | URG:
		return true
	}
	return false
}

// ctTable is the kernel's TCP transition table: [original 0, reply 1][kind][state].
var ctTable = [2][6][10]uint8{
	{
		{ctSynSent, ctSynSent, ctIgnore, ctIgnore, ctIgnore, ctIgnore, ctIgnore, ctSynSent, ctSynSent, ctSynSent2},
		{ctInvalid, ctInvalid, ctSynRecv, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctSynRecv},
		{ctInvalid, ctInvalid, ctFinWait, ctFinWait, ctLastAck, ctLastAck, ctLastAck, ctTimeWait, ctClose, ctInvalid},
		{ctEstablished, ctInvalid, ctEstablished, ctEstablished, ctCloseWait, ctCloseWait, ctTimeWait, ctTimeWait, ctClose, ctInvalid},
		{ctInvalid, ctClose, ctClose, ctClose, ctClose, ctClose, ctClose, ctClose, ctClose, ctClose},
		{ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid},
	},
	{
		{ctInvalid, ctSynSent2, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctSynSent, ctInvalid, ctSynSent2},
		{ctInvalid, ctSynRecv, ctIgnore, ctIgnore, ctIgnore, ctIgnore, ctIgnore, ctIgnore, ctIgnore, ctSynRecv},
		{ctInvalid, ctInvalid, ctFinWait, ctFinWait, ctLastAck, ctLastAck, ctLastAck, ctTimeWait, ctClose, ctInvalid},
		{ctInvalid, ctIgnore, ctSynRecv, ctEstablished, ctCloseWait, ctCloseWait, ctTimeWait, ctTimeWait, ctClose, ctIgnore},
		{ctInvalid, ctClose, ctClose, ctClose, ctClose, ctClose, ctClose, ctClose, ctClose, ctClose},
		{ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid, ctInvalid},
	},
}

// A TCP flow's tracking state, packed in conntrack.ext[id].
const (
	ctStateMask    = 0xf
	ctCloseInit0   = 1 << 4 // a FIN from the original side moved the flow to FIN_WAIT
	ctCloseInit1   = 1 << 5 // the same from the reply side
	ctLastReply    = 1 << 6 // the last packet that moved the state came from the reply side
	ctLastShift    = 7      // 3 bits: its kind
	ctSimultaneous = 1 << 10
)

// conntrack is the linux profile's lifecycle (TimersConntrack): the
// kernel's connection tracking, its timeouts those of the profile's
// Conntrack (the device's sysctls). Every packet of a flow restarts the
// timer of the state it leaves the flow in (L5), but for those the state
// table ignores and a SYN retransmitted with no answer; a RST on a flow
// that never saw a reply ends it at once, any other moves it to CLOSE
// (L6); a SYN on a closed flow reopens it (L6); UDP flows get the stream
// timeout once replied and more than 2 s old (L7); ICMP echo its own
// (L10). Sequence numbers and windows are not tracked: every packet is
// taken as in window.
type conntrack struct {
	// ext holds per flow ID the TCP tracking state, or a UDP flow's start.
	ext                                                                  []uint64
	synSent, synRecv, est, finWait, closeWait, lastAck, timeWait, closeT int64
	unack, udp, udpStream, icmp, streamAfter                             int64
	loose                                                                bool
}

func newConntrack(e *Engine) *conntrack {
	c := e.prof.Conntrack
	return &conntrack{synSent: int64(c.SynSent), synRecv: int64(c.SynRecv), est: int64(c.Established),
		finWait: int64(c.FinWait), closeWait: int64(c.CloseWait), lastAck: int64(c.LastAck), timeWait: int64(c.TimeWait),
		closeT: int64(c.Close), unack: int64(c.Unacknowledged), udp: int64(c.UDP), udpStream: int64(c.UDPStream), streamAfter: int64(c.StreamAfter),
		icmp: int64(c.ICMP), loose: c.Loose && !e.cfg.Strict}
}

func (c *conntrack) timeout(s uint8) int64 {
	switch s {
	case ctSynSent, ctSynSent2:
		return c.synSent
	case ctSynRecv:
		return c.synRecv
	case ctEstablished:
		return c.est
	case ctFinWait:
		return c.finWait
	case ctCloseWait:
		return c.closeWait
	case ctLastAck:
		return c.lastAck
	case ctTimeWait:
		return c.timeWait
	}
	return c.closeT
}

// open is L9: a SYN opens a TCP flow; a pure ACK too under tcp_loose; any
// other TCP packet with no flow is invalid (L11 for flags TCP forbids).
func (c *conntrack) open(e *Engine, proto Proto, flags TCPFlags) (DropReason, Behavior, bool) {
	if proto != TCP {
		return NotDropped, NoBehavior, false
	}
	if !ctValid(flags) {
		return DropInvalid, L11, false
	}
	switch ctTable[0][ctKind(flags)][ctNone] {
	case ctSynSent:
		return NotDropped, NoBehavior, false
	case ctEstablished:
		if c.loose {
			return NotDropped, NoBehavior, false
		}
	}
	return DropInvalid, L9, false
}

func (c *conntrack) start(e *Engine, f *flow, id uint32, t int64) {
	for int(id) >= len(c.ext) {
		c.ext = append(c.ext, 0)
	}
	c.ext[id] = uint64(ckNone) << ctLastShift
	if f.proto == UDP {
		c.ext[id] = uint64(t)
	}
}

func (c *conntrack) touch(e *Engine, f *flow, id uint32, t int64, flags TCPFlags, dir uint8) step {
	switch f.proto {
	case UDP:
		d := c.udp
		if f.state&stIn != 0 && t-int64(c.ext[id]) > c.streamAfter {
			d = c.udpStream
		}
		e.setDeadline(f, id, t+d)
		f.state |= dir
		return stepPass
	case ICMP:
		e.setDeadline(f, id, t+c.icmp)
		f.state |= dir
		return stepPass
	}
	if !ctValid(flags) {
		return stepInvalid
	}
	x := c.ext[id]
	d := uint8(0)
	if dir == stIn {
		d = 1
	}
	kind := ctKind(flags)
	old := uint8(x & ctStateMask)
	lastKind := uint8(x>>ctLastShift) & 7
	lastDir := uint8(0)
	if x&ctLastReply != 0 {
		lastDir = 1
	}
	nw := ctTable[d][kind][old]
	switch nw {
	case ctSynSent:
		if old >= ctTimeWait {
			if x&(ctCloseInit0|ctCloseInit1) != 0 || (lastDir == d && lastKind == ckRST) {
				return stepReopen
			}
			return c.ignore(f, id, kind, d, dir)
		}
	case ctIgnore:
		if kind == ckSYNACK && lastKind == ckSYN && lastDir != d {
			old, nw = ctSynSent, ctSynRecv // the answer to a SYN it ignored: back in step
			break
		}
		return c.ignore(f, id, kind, d, dir)
	case ctInvalid:
		return stepInvalid
	case ctSynSent2:
		x |= ctSimultaneous
	case ctSynRecv:
		if d == 1 && kind == ckACK && x&ctSimultaneous != 0 {
			nw = ctEstablished
		}
	}
	x = x&^(ctStateMask|ctLastReply|7<<ctLastShift) | uint64(nw) | uint64(kind)<<ctLastShift
	if d == 1 {
		x |= ctLastReply
	}
	if old != nw && nw == ctFinWait {
		x |= ctCloseInit0 << d
	}
	c.ext[id] = x
	timeout := c.timeout(nw)
	if kind == ckRST {
		timeout = c.closeT
	}
	if f.state&stIn == 0 {
		switch {
		case kind == ckRST:
			f.state |= dir
			return stepKill // L6: a RST on a flow that never saw a reply
		case kind == ckSYN && old == ctSynSent:
			f.state |= dir
			return stepPass // a retransmitted SYN does not restart the timer
		case nw == ctEstablished:
			timeout = min(timeout, c.unack) // picked up: no long timeout before a reply
		}
	}
	e.setDeadline(f, id, t+timeout)
	f.state |= dir
	return stepPass
}

// ignore lets a packet through without changing the flow's state or timer.
func (c *conntrack) ignore(f *flow, id uint32, kind, d, dir uint8) step {
	x := c.ext[id]&^(ctLastReply|7<<ctLastShift) | uint64(kind)<<ctLastShift
	if d == 1 {
		x |= ctLastReply
	}
	c.ext[id] = x
	f.state |= dir
	return stepIgnore
}

func (c *conntrack) ended(e *Engine, f *flow, id uint32) (ReleaseReason, Behavior) {
	switch f.proto {
	case UDP:
		return ReleaseIdle, L7
	case ICMP:
		return ReleaseIdle, L10
	}
	switch uint8(c.ext[id] & ctStateMask) {
	case ctClose:
		return ReleaseRST, L6
	case ctFinWait, ctCloseWait, ctLastAck, ctTimeWait:
		return ReleaseFIN, L5
	}
	return ReleaseIdle, L5
}

func (c *conntrack) miss(*Engine, Packet, int64, uint16) (Verdict, bool) { return Verdict{}, false }
