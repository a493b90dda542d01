// Package learn finds, among the frames a NAT sends out of one side, the
// translation of each packet sent into the other, with no marker written
// into the packets: a packet is known by what a NAT does not change — its
// protocol, its remote endpoint (the destination of an outbound packet,
// the source of an inbound one), its TCP flags, a hash of its payload (of
// the quote's unmapped part for an ICMP error: PayloadKey), and,
// where the NAT keeps them, its IPv4 identification and its TCP sequence
// number (shifted by a per-flow constant, learnt from the flow's SYN, by a
// NAT that randomises sequence numbers). Which fields survive is the
// NAT's, measured once at the start (Fields).
//
// A Matcher holds the packets in flight. Before sending, the caller asks
// whether the new packet's key collides with one still unmatched
// (Collides) and holds it back until that one is matched or expired: then
// every frame that comes out belongs to exactly one packet. Observe takes
// a frame that came out and returns the packet it translates, learning
// the flow's mapping (inside endpoint ↔ public endpoint) and its sequence
// shift; Expire returns the packets that did not come out by a deadline:
// dropped.
//
// It imports reference for the packet vocabulary and replay/frame for the
// decoded frame.
package learn

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/frame"
)

// Fields are what the NAT keeps of a packet beyond its remote endpoint,
// protocol, flags and payload (measured by a calibration).
type Fields struct {
	// IPID: the NAT forwards the IPv4 identification field unchanged.
	IPID bool
	// SeqShift: the NAT adds a per-flow constant to the sequence numbers
	// of outbound TCP segments (and takes it from the acknowledgements of
	// inbound ones); false when it keeps them.
	SeqShift bool
}

// Sent is a packet put on one side of the NAT, as the Matcher needs it.
type Sent struct {
	// ID is the caller's handle for the packet, returned by Observe and
	// Expire.
	ID uint64
	// Dir is the side it was put on: Outbound on the inside.
	Dir reference.Dir
	// Tuple is the packet's tuple as sent (inside endpoint → remote for
	// an outbound packet; remote → public endpoint for an inbound one).
	Tuple reference.Tuple
	Flags reference.TCPFlags
	// Seq is the TCP sequence number, IPID the IPv4 identification.
	Seq  uint32
	IPID uint16
	// Payload is the transport payload's hash (Hash).
	Payload uint64
	// At is when it was sent.
	At time.Time
}

// Hash is the hash of a transport payload that keys a packet (64-bit
// FNV-1a, written out: hash/fnv's would allocate a hasher per packet).
func Hash(payload []byte) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, c := range payload {
		h ^= uint64(c)
		h *= prime
	}
	return h
}

// PayloadKey is the payload part of the key of a packet travelling in dir
// (Outbound: from the inside), decoded as f from data: the hash (Hash) of
// its transport payload; for an ICMP error, of what a NAT keeps of the
// packet it quotes when it translates the error: its protocol and its
// remote endpoint (the quoted destination of an error from the outside,
// the quoted source of one from the inside), not the mapped endpoint, and
// not its checksums, which the NAT rewrites. The caller keys the packet it
// sends and the frame it sees with it.
func PayloadKey(dir reference.Dir, data []byte, f *frame.Frame) uint64 {
	if f.Quoted {
		remote := f.QuotedDst
		if dir == reference.Outbound {
			remote = f.QuotedSrc
		}
		a := remote.Addr().As4()
		return Hash([]byte{byte(f.QuotedProto), a[0], a[1], a[2], a[3], byte(remote.Port() >> 8), byte(remote.Port())})
	}
	start := f.End - f.PayloadLen
	if !f.Transport || start < f.L4 || start > len(data) || f.End > len(data) {
		return Hash(nil)
	}
	return Hash(data[start:f.End])
}

// key identifies a packet in flight: what a frame that translates it
// must have. Collisions are judged on it, so that a frame always has at
// most one candidate; a NAT that shifts sequence numbers leaves them out
// of it (a SYN's shift is not known until it comes out).
type key struct {
	dir     reference.Dir
	proto   reference.Proto
	remote  netip.AddrPort
	flags   reference.TCPFlags
	payload uint64
	ipid    uint16
	// seq is a TCP segment's sequence number when the NAT keeps them: a
	// retransmission aside, it tells apart the segments of a flow that a
	// capture recorded with one IP ID (0, under DF).
	seq uint32
}

// flow is what is learnt of one flow, by its inside tuple (inside endpoint
// → remote).
type flow struct {
	public netip.AddrPort
	// shift is added to an outbound segment's sequence number by the NAT.
	shift    uint32
	hasShift bool
}

// Match is a frame matched to the packet it translates.
type Match struct {
	Sent Sent
	// Out is the tuple the packet left the NAT with.
	Out reference.Tuple
	// Latency is the time from its sending to the frame's timestamp.
	Latency time.Duration
	// New is set when the match taught a mapping not known before.
	New bool
	// Late is set when the packet had been judged dropped (Expire): the
	// NAT took longer than the deadline, and that judgement was wrong.
	Late bool
}

// Matcher holds the packets in flight and what was learnt of their flows.
// It is used by one goroutine at a time. The zero Matcher is not usable:
// call New.
type Matcher struct {
	fields Fields
	// inflight holds the packets in flight, one per key; more the others
	// of a key, when Add was called for a packet that Collides.
	inflight map[key]Sent
	more     map[key][]Sent
	n        int
	// pending counts the outbound packets in flight by tuple.
	pending map[reference.Tuple]int
	// expired are packets Expire judged dropped, kept so that a frame
	// that comes out after all is seen as late, not as the NAT's own.
	expired  map[key][]Sent
	flows    map[reference.Tuple]*flow           // by inside tuple
	byPublic map[reference.Tuple]reference.Tuple // public endpoint → remote tuple, to its inside tuple
}

// New returns a Matcher for a NAT that keeps fields.
func New(fields Fields) *Matcher {
	return &Matcher{fields: fields, inflight: map[key]Sent{}, more: map[key][]Sent{}, expired: map[key][]Sent{}, pending: map[reference.Tuple]int{}, flows: map[reference.Tuple]*flow{}, byPublic: map[reference.Tuple]reference.Tuple{}}
}

// Fields returns what the Matcher assumes the NAT keeps.
func (m *Matcher) Fields() Fields { return m.fields }

func (m *Matcher) keyOf(s Sent) key {
	k := key{dir: s.Dir, proto: s.Tuple.Proto, flags: s.Flags, payload: s.Payload}
	if s.Dir == reference.Outbound {
		k.remote = s.Tuple.Dst
	} else {
		k.remote = s.Tuple.Src
	}
	if m.fields.IPID {
		k.ipid = s.IPID
	}
	if s.Tuple.Proto == reference.TCP && !m.fields.SeqShift {
		k.seq = s.Seq
	}
	return k
}

// Collides reports whether s's key is that of a packet still in flight:
// the caller holds s back until that one is matched or expired.
func (m *Matcher) Collides(s Sent) bool {
	_, ok := m.inflight[m.keyOf(s)]
	return ok
}

// Add records s as sent.
func (m *Matcher) Add(s Sent) {
	k := m.keyOf(s)
	if _, ok := m.inflight[k]; ok {
		m.more[k] = append(m.more[k], s)
	} else {
		m.inflight[k] = s
	}
	m.n++
	if s.Dir == reference.Outbound {
		m.pending[s.Tuple]++
	}
}

// Pending reports whether an outbound packet of inside tuple t is in
// flight: its flow's mapping may be about to be learnt.
func (m *Matcher) Pending(t reference.Tuple) bool { return m.pending[t] > 0 }

// done takes s out of the pending count.
func (m *Matcher) done(s Sent) {
	if s.Dir != reference.Outbound {
		return
	}
	if m.pending[s.Tuple]--; m.pending[s.Tuple] <= 0 {
		delete(m.pending, s.Tuple)
	}
}

// InFlight is the number of packets sent and neither matched nor expired.
func (m *Matcher) InFlight() int { return m.n }

// Observe takes f, a frame that came out of the NAT at ts on the side
// opposite dir's entry (dir is the direction of travel: Outbound for a
// frame seen on the outside), whose transport payload hashes to payload,
// and returns the packet it translates. ok is false for a frame that
// translates no packet in flight (one the NAT sent on its own, or one
// sent too late for its deadline).
func (m *Matcher) Observe(dir reference.Dir, f *frame.Frame, payload uint64, ts time.Time) (Match, bool) {
	k := key{dir: dir, proto: f.Proto, payload: payload}
	if f.Proto == reference.TCP {
		k.flags = f.Flags
	}
	if dir == reference.Outbound {
		k.remote = netip.AddrPortFrom(f.Dst, f.DstPort)
	} else {
		k.remote = netip.AddrPortFrom(f.Src, f.SrcPort)
	}
	if m.fields.IPID {
		k.ipid = f.ID
	}
	if f.Proto == reference.TCP && !m.fields.SeqShift {
		k.seq = f.Seq
	}
	s, ok := m.take(k, f)
	if !ok {
		for i, s := range m.expired[k] {
			if m.fits(s, f) {
				m.expired[k] = append(m.expired[k][:i:i], m.expired[k][i+1:]...)
				return Match{Sent: s, Out: f.Tuple(), Latency: ts.Sub(s.At), Late: true}, true
			}
		}
		return Match{}, false
	}
	m.n--
	m.done(s)
	out := f.Tuple()
	mt := Match{Sent: s, Out: out, Latency: ts.Sub(s.At)}
	if dir == reference.Outbound {
		fl := m.flows[s.Tuple]
		if fl == nil || fl.public != out.Src {
			fl = &flow{public: out.Src}
			m.flows[s.Tuple] = fl
			m.byPublic[out.Reverse()] = s.Tuple
			mt.New = true
		}
		if f.Proto == reference.TCP && !fl.hasShift && s.Flags.Has(reference.SYN) {
			fl.shift, fl.hasShift = f.Seq-s.Seq, true
		}
	}
	return mt, true
}

// fits reports whether frame f, whose key is s's, can be s's translation:
// the tuple the NAT must have kept is kept, and a TCP sequence number is
// the one expected once the flow's shift is known.
func (m *Matcher) fits(s Sent, f *frame.Frame) bool {
	if s.Dir == reference.Inbound {
		// Translated back to the inside endpoint the mapping names, when it
		// is known.
		if in, ok := m.byPublic[s.Tuple]; ok && netip.AddrPortFrom(f.Dst, f.DstPort) != in.Src && s.Tuple.Proto != reference.ICMP {
			return false
		}
		return f.Proto != reference.TCP || f.Seq == s.Seq
	}
	if f.Proto != reference.TCP {
		return true
	}
	fl := m.flows[s.Tuple]
	switch {
	case !m.fields.SeqShift:
		return f.Seq == s.Seq
	case fl != nil && fl.hasShift && !s.Flags.Has(reference.SYN):
		return f.Seq == s.Seq+fl.shift
	}
	return true // a SYN, or a flow whose shift is not known: the loose key alone
}

// Public returns the public endpoint learnt for the flow of inside tuple
// t (inside endpoint → remote).
func (m *Matcher) Public(t reference.Tuple) (netip.AddrPort, bool) {
	fl, ok := m.flows[t]
	if !ok {
		return netip.AddrPort{}, false
	}
	return fl.public, true
}

// Inside returns the inside tuple of the flow whose translation is t
// (public endpoint → remote), reversed: what an inbound packet remote →
// public endpoint is translated to.
func (m *Matcher) Inside(t reference.Tuple) (reference.Tuple, bool) {
	in, ok := m.byPublic[t.Reverse()]
	return in, ok
}

// Shift returns the sequence shift learnt for the flow of inside tuple t.
func (m *Matcher) Shift(t reference.Tuple) (uint32, bool) {
	fl, ok := m.flows[t]
	if !ok || !fl.hasShift {
		return 0, false
	}
	return fl.shift, true
}

// Forget drops what was learnt of the flow of inside tuple t (it was
// released: a new flow of that tuple may get another mapping).
func (m *Matcher) Forget(t reference.Tuple) {
	if fl, ok := m.flows[t]; ok {
		delete(m.byPublic, reference.Tuple{Proto: t.Proto, Src: fl.public, Dst: t.Dst}.Reverse())
		delete(m.flows, t)
	}
}

// Expire removes the packets sent before deadline that are still in
// flight and appends them to dropped, in the order of their IDs. They are
// kept apart until Forget: a frame that translates one of them after all
// is matched as Late (ForgetExpired lets them go).
func (m *Matcher) Expire(deadline time.Time, dropped []Sent) []Sent {
	from := len(dropped)
	drop := func(k key, s Sent) {
		dropped = append(dropped, s)
		m.expired[k] = append(m.expired[k], s)
		m.n--
		m.done(s)
	}
	for k, extra := range m.more {
		kept := extra[:0]
		for _, s := range extra {
			if s.At.Before(deadline) {
				drop(k, s)
			} else {
				kept = append(kept, s)
			}
		}
		if len(kept) == 0 {
			delete(m.more, k)
		} else {
			m.more[k] = kept
		}
	}
	for k, s := range m.inflight {
		if s.At.Before(deadline) {
			drop(k, s)
			m.promote(k)
		}
	}
	slices.SortFunc(dropped[from:], func(a, b Sent) int { return cmp.Compare(a.ID, b.ID) })
	return dropped
}

// ForgetExpired lets go of the packets Expire judged dropped that were
// sent before t: a frame of theirs would come out too late to be told
// from the NAT's own.
func (m *Matcher) ForgetExpired(t time.Time) {
	for k, ss := range m.expired {
		kept := ss[:0]
		for _, s := range ss {
			if !s.At.Before(t) {
				kept = append(kept, s)
			}
		}
		if len(kept) == 0 {
			delete(m.expired, k)
		} else {
			m.expired[k] = kept
		}
	}
}

// take removes and returns the packet in flight under k that f can
// translate.
func (m *Matcher) take(k key, f *frame.Frame) (Sent, bool) {
	if s, ok := m.inflight[k]; ok && m.fits(s, f) {
		m.promote(k)
		return s, true
	}
	extra := m.more[k]
	for i, s := range extra {
		if m.fits(s, f) {
			if len(extra) == 1 {
				delete(m.more, k)
			} else {
				m.more[k] = append(extra[:i:i], extra[i+1:]...)
			}
			return s, true
		}
	}
	return Sent{}, false
}

// promote replaces the packet in flight under k by the next of its key,
// or removes the key.
func (m *Matcher) promote(k key) {
	extra := m.more[k]
	if len(extra) == 0 {
		delete(m.inflight, k)
		return
	}
	m.inflight[k] = extra[0]
	if len(extra) == 1 {
		delete(m.more, k)
	} else {
		m.more[k] = extra[1:]
	}
}
