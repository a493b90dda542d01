// Package rfcmodel is a deliberately simple, slow model of the rfc profile
// (SEMANTICS.md R1–R7, the IETF behavioural requirements), written from
// that document for differential tests of the reference engine's rfc
// profile: mappings and connections in slices, every question answered
// by a scan, time compared with time.Time. It shares no code with the
// engine, only its public types. The profile is deterministic, so the
// model's verdicts must equal the engine's.
//
// The reading fixed here, where the RFCs leave a choice:
//   - R1: a UDP or ICMP mapping per inside endpoint, with the remote
//     endpoints it has sent to; TCP connections per 5-tuple, the
//     connections of one inside endpoint sharing its public endpoint.
//   - R3: inside IP i (in configuration order) uses public IP i mod k; a
//     new mapping keeps the inside port when free, else takes the lowest
//     free port of the same parity in the same range (1–1023 or
//     1024–65535), else the lowest free port of that range. An ICMP
//     identifier is chosen the same way.
//   - R5: a TCP connection is established once it has translated a
//     packet each way; a FIN seen both ways or a RST makes it transitory
//     again, for good. Both timers are idle timers restarted by every
//     translated packet. Any outbound TCP packet opens a connection
//     (Config.Strict: only a SYN).
//   - R2 for TCP: an inbound SYN with no connection opens one when the
//     filter lets its source through a live connection's public endpoint.
//   - R7: a packet from inside to a public endpoint is translated as
//     outbound (its sender's mapping), then taken as inbound from that
//     mapping's public endpoint, and filtered.
//   - R6's errors: an ICMP error quoting a packet of a live mapping or
//     connection goes on translated: inbound (quoting public endpoint →
//     remote) to the inside endpoint, outer destination and quoted source
//     rewritten; outbound (quoting remote → inside endpoint) from the
//     public endpoint, outer source and quoted destination rewritten. The
//     quoted remote must pass the mapping's filter (a connection's remote
//     must be its own); the outer source is not filtered. The error
//     moves no timer and no TCP state. Anything else is dropped.
package rfcmodel

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// mapping is a UDP or ICMP mapping (R1, R4, R6).
type mapping struct {
	proto          reference.Proto
	inst           int
	inside, public netip.AddrPort
	peers          []netip.AddrPort
	deadline       time.Time
}

// conn is a TCP connection (R5).
type conn struct {
	inst                   int
	inside, remote, public netip.AddrPort
	out, in                bool // translated a packet that way
	finOut, finIn, reset   bool
	deadline               time.Time
}

func (c *conn) established() bool {
	return c.out && c.in && !c.reset && !(c.finOut && c.finIn)
}

// Model is one rfc NAT's state. Its zero value is not usable: call New.
type Model struct {
	cfg      reference.Config
	t        reference.RFCTimers
	filter   reference.Filtering
	maps     []*mapping
	conns    []*conn
	now      time.Time
	seeded   bool
	backends []netip.Addr
	fronts   []netip.Addr
}

// New returns a model of cfg (its Profile the rfc one).
func New(cfg reference.Config) (*Model, error) {
	if cfg.Profile.Name != reference.NameRFC {
		return nil, fmt.Errorf("rfcmodel: profile %q, want rfc", cfg.Profile.Name)
	}
	t := cfg.Profile.RFC
	switch {
	case t.UDP < 2*time.Minute:
		return nil, &reference.ConfigError{Field: "UDP mapping timer", Value: t.UDP, Behavior: reference.R4, Reason: "want at least 2 minutes"}
	case t.TCPEstablished < 124*time.Minute:
		return nil, &reference.ConfigError{Field: "TCP established idle timeout", Value: t.TCPEstablished, Behavior: reference.R5, Reason: "want at least 124 minutes"}
	case t.TCPTransitory < 4*time.Minute:
		return nil, &reference.ConfigError{Field: "TCP transitory idle timeout", Value: t.TCPTransitory, Behavior: reference.R5, Reason: "want at least 4 minutes"}
	case len(cfg.Frontends) == 0:
		return nil, &reference.ConfigError{Field: "frontends", Value: 0, Behavior: reference.R3, Reason: "want at least one public IP"}
	}
	return &Model{cfg: cfg, t: cfg.Profile.RFC, filter: cfg.Profile.Filtering, backends: cfg.Backends, fronts: cfg.Frontends}, nil
}

// Flows returns the number of live mappings and connections.
func (m *Model) Flows() int { return len(m.maps) + len(m.conns) }

// Deadlines returns every release time, earliest first.
func (m *Model) Deadlines() []time.Time {
	var ds []time.Time
	for _, x := range m.maps {
		ds = append(ds, x.deadline)
	}
	for _, c := range m.conns {
		ds = append(ds, c.deadline)
	}
	slices.SortFunc(ds, func(a, b time.Time) int { return a.Compare(b) })
	return ds
}

// Advance releases everything due at or before t.
func (m *Model) Advance(t time.Time) error {
	if m.seeded && t.Before(m.now) {
		return fmt.Errorf("rfcmodel: time %v before %v", t, m.now)
	}
	m.now, m.seeded = t, true
	m.maps = slices.DeleteFunc(m.maps, func(x *mapping) bool { return !x.deadline.After(t) })
	m.conns = slices.DeleteFunc(m.conns, func(c *conn) bool { return !c.deadline.After(t) })
	return nil
}

// Process runs p through the model and returns its verdict.
func (m *Model) Process(p reference.Packet) (reference.Verdict, error) {
	if err := m.Advance(p.Time); err != nil {
		return reference.Verdict{}, err
	}
	tu := p.Tuple
	if p.Fragment || (tu.Proto != reference.TCP && tu.Proto != reference.UDP && tu.Proto != reference.ICMP) || p.ICMPOther {
		r := reference.DropUnsupported
		if p.Fragment {
			r = reference.DropFragment
		}
		return drop(r, reference.NoBehavior, -1), nil
	}
	if p.Embedded != nil {
		return m.icmpError(p), nil
	}
	if p.Dir == reference.Inbound {
		return m.inbound(p, tu.Src), nil
	}
	v := m.outbound(p)
	if v.Action != reference.Translated || !slices.Contains(m.fronts, tu.Dst.Addr()) {
		return v, nil
	}
	// R7: the translated packet comes back in, from the sender's public
	// endpoint, to the public endpoint it was sent to.
	back := p
	back.Dir = reference.Inbound
	back.Tuple = v.Tuple
	h := m.inbound(back, v.Tuple.Src)
	if h.Action != reference.Translated {
		return h, nil
	}
	h.Action, h.Behavior = reference.Hairpinned, reference.R7
	return h, nil
}

func drop(r reference.DropReason, b reference.Behavior, inst int) reference.Verdict {
	return reference.Verdict{Action: reference.Dropped, Reason: r, Behavior: b, Instance: inst}
}

func (m *Model) outbound(p reference.Packet) reference.Verdict {
	tu := p.Tuple
	inst := slices.Index(m.backends, tu.Src.Addr())
	if tu.Proto == reference.TCP {
		for _, c := range m.conns {
			if c.inside == tu.Src && c.remote == tu.Dst {
				m.touchConn(c, p, true)
				return reference.Verdict{Action: reference.Translated, Behavior: reference.R1, Instance: c.inst,
					Tuple: reference.Tuple{Proto: tu.Proto, Src: c.public, Dst: tu.Dst}}
			}
		}
		if inst < 0 {
			return drop(reference.DropNoInstance, reference.NoBehavior, -1)
		}
		if m.cfg.Strict && p.Flags&(reference.SYN|reference.ACK) != reference.SYN {
			return drop(reference.DropNotSYN, reference.R5, inst)
		}
		pub, fresh, ok := m.publicFor(tu, inst)
		if !ok {
			return drop(reference.DropExhausted, reference.R3, inst)
		}
		c := &conn{inst: inst, inside: tu.Src, remote: tu.Dst, public: pub}
		m.conns = append(m.conns, c)
		m.touchConn(c, p, true)
		b := reference.R1
		if fresh {
			b = reference.R3
		}
		return reference.Verdict{Action: reference.Translated, Behavior: b, Instance: inst, NewFlow: true,
			Tuple: reference.Tuple{Proto: tu.Proto, Src: pub, Dst: tu.Dst}}
	}
	remote := tu.Dst
	for _, x := range m.maps {
		if x.proto == tu.Proto && x.inside == tu.Src {
			if !slices.Contains(x.peers, remote) {
				x.peers = append(x.peers, remote)
			}
			x.deadline = p.Time.Add(m.timer(x.proto))
			return reference.Verdict{Action: reference.Translated, Behavior: reference.R1, Instance: x.inst,
				Tuple: reference.Tuple{Proto: tu.Proto, Src: x.public, Dst: tu.Dst}}
		}
	}
	if inst < 0 {
		return drop(reference.DropNoInstance, reference.NoBehavior, -1)
	}
	pub, _, ok := m.publicFor(tu, inst)
	if !ok {
		return drop(reference.DropExhausted, reference.R3, inst)
	}
	x := &mapping{proto: tu.Proto, inst: inst, inside: tu.Src, public: pub, peers: []netip.AddrPort{remote}, deadline: p.Time.Add(m.timer(tu.Proto))}
	m.maps = append(m.maps, x)
	return reference.Verdict{Action: reference.Translated, Behavior: reference.R3, Instance: inst, NewFlow: true,
		Tuple: reference.Tuple{Proto: tu.Proto, Src: pub, Dst: tu.Dst}}
}

func (m *Model) timer(proto reference.Proto) time.Duration {
	if proto == reference.ICMP {
		return m.t.ICMP
	}
	return m.t.UDP
}

// publicFor returns the public endpoint of tu's inside endpoint: its
// TCP connections' one (R1), or a new one (R3, fresh).
func (m *Model) publicFor(tu reference.Tuple, inst int) (pub netip.AddrPort, fresh, ok bool) {
	if tu.Proto == reference.TCP {
		for _, c := range m.conns {
			if c.inside == tu.Src {
				return c.public, false, true
			}
		}
	}
	ip := m.fronts[inst%len(m.fronts)]
	taken := func(port int) bool {
		a := netip.AddrPortFrom(ip, uint16(port))
		if tu.Proto == reference.TCP {
			for _, c := range m.conns {
				if c.public == a {
					return true
				}
			}
			return false
		}
		for _, x := range m.maps {
			if x.proto == tu.Proto && x.public == a {
				return true
			}
		}
		return false
	}
	want := int(tu.Src.Port())
	lo, hi := 1024, 65535
	if want < 1024 {
		lo, hi = 1, 1023
	}
	if want >= lo && !taken(want) {
		return netip.AddrPortFrom(ip, uint16(want)), true, true
	}
	for _, parity := range []bool{true, false} {
		for port := lo; port <= hi; port++ {
			if (!parity || port%2 == want%2) && !taken(port) {
				return netip.AddrPortFrom(ip, uint16(port)), true, true
			}
		}
	}
	return netip.AddrPort{}, false, false
}

// allowed is R2: may remote send through a mapping that has sent to
// peers?
func (m *Model) allowed(peers []netip.AddrPort, remote netip.AddrPort) bool {
	switch m.filter {
	case reference.FilterEndpointIndependent:
		return true
	case reference.FilterAddress:
		return slices.ContainsFunc(peers, func(a netip.AddrPort) bool { return a.Addr() == remote.Addr() })
	}
	return slices.Contains(peers, remote)
}

// inbound is a packet from remote to the public endpoint tu.Dst.
func (m *Model) inbound(p reference.Packet, remote netip.AddrPort) reference.Verdict {
	tu := p.Tuple
	if tu.Proto == reference.TCP {
		var peers []netip.AddrPort
		var owner *conn
		for _, c := range m.conns {
			if c.public != tu.Dst {
				continue
			}
			if c.remote == remote {
				m.touchConn(c, p, false)
				return reference.Verdict{Action: reference.Translated, Behavior: reference.R2, Instance: c.inst,
					Tuple: reference.Tuple{Proto: tu.Proto, Src: remote, Dst: c.inside}}
			}
			peers = append(peers, c.remote)
			owner = c
		}
		if owner == nil || !m.allowed(peers, remote) || p.Flags&(reference.SYN|reference.ACK) != reference.SYN {
			inst := -1
			if owner != nil {
				inst = owner.inst
			}
			return drop(reference.DropUnsolicited, reference.R2, inst)
		}
		c := &conn{inst: owner.inst, inside: owner.inside, remote: remote, public: owner.public}
		m.conns = append(m.conns, c)
		m.touchConn(c, p, false)
		return reference.Verdict{Action: reference.Translated, Behavior: reference.R2, Instance: c.inst, NewFlow: true,
			Tuple: reference.Tuple{Proto: tu.Proto, Src: remote, Dst: c.inside}}
	}
	for _, x := range m.maps {
		if x.proto != tu.Proto || x.public != tu.Dst {
			continue
		}
		if !m.allowed(x.peers, remote) {
			return drop(reference.DropUnsolicited, reference.R2, x.inst)
		}
		if m.t.InboundRefresh {
			x.deadline = p.Time.Add(m.timer(x.proto))
		}
		return reference.Verdict{Action: reference.Translated, Behavior: reference.R2, Instance: x.inst,
			Tuple: reference.Tuple{Proto: tu.Proto, Src: remote, Dst: x.inside}}
	}
	return drop(reference.DropUnsolicited, reference.R2, -1)
}

// touchConn applies a translated packet to c (R5).
func (m *Model) touchConn(c *conn, p reference.Packet, out bool) {
	if out {
		c.out = true
		c.finOut = c.finOut || p.Flags.Has(reference.FIN)
	} else {
		c.in = true
		c.finIn = c.finIn || p.Flags.Has(reference.FIN)
	}
	c.reset = c.reset || p.Flags.Has(reference.RST)
	d := m.t.TCPTransitory
	if c.established() {
		d = m.t.TCPEstablished
	}
	c.deadline = p.Time.Add(d)
}

// icmpError is R6's second half: p is an ICMP error quoting *p.Embedded.
func (m *Model) icmpError(p reference.Packet) reference.Verdict {
	q := *p.Embedded
	if p.Tuple.Proto != reference.ICMP || (q.Proto != reference.TCP && q.Proto != reference.UDP && q.Proto != reference.ICMP) {
		return drop(reference.DropUnsupported, reference.NoBehavior, -1)
	}
	// The mapping's side of the quoted packet, and its remote side.
	mine, remote, outer := q.Src, q.Dst, p.Tuple.Dst
	if p.Dir == reference.Outbound {
		mine, remote, outer = q.Dst, q.Src, p.Tuple.Src
	}
	if mine.Addr() != outer.Addr() {
		return drop(reference.DropUnsolicited, reference.R6, -1)
	}
	inbound := p.Dir == reference.Inbound
	var inside, public netip.AddrPort
	inst, found := -1, false
	if q.Proto == reference.TCP {
		for _, c := range m.conns {
			if c.remote == remote && ((inbound && c.public == mine) || (!inbound && c.inside == mine)) {
				inside, public, inst, found = c.inside, c.public, c.inst, true
				break
			}
		}
	} else {
		for _, x := range m.maps {
			if x.proto == q.Proto && ((inbound && x.public == mine) || (!inbound && x.inside == mine)) {
				inst = x.inst
				if m.allowed(x.peers, remote) {
					inside, public, found = x.inside, x.public, true
				}
				break
			}
		}
	}
	if !found {
		return drop(reference.DropUnsolicited, reference.R6, inst)
	}
	v := reference.Verdict{Action: reference.Translated, Behavior: reference.R6, Instance: inst}
	if inbound {
		v.Tuple = reference.Tuple{Proto: reference.ICMP, Src: p.Tuple.Src, Dst: netip.AddrPortFrom(inside.Addr(), p.Tuple.Dst.Port())}
		v.Embedded = &reference.Tuple{Proto: q.Proto, Src: inside, Dst: q.Dst}
	} else {
		v.Tuple = reference.Tuple{Proto: reference.ICMP, Src: netip.AddrPortFrom(public.Addr(), p.Tuple.Src.Port()), Dst: p.Tuple.Dst}
		v.Embedded = &reference.Tuple{Proto: q.Proto, Src: q.Src, Dst: public}
	}
	return v
}
