package fuzz

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/natcheck/natcheck/internal/pcapgen"
	"github.com/natcheck/natcheck/internal/profilecheck"
	"github.com/natcheck/natcheck/reference"
)

// OpKind is what one operation of a scenario does.
type OpKind uint8

// Operation kinds.
const (
	// OpPacket sends Op.Packet through the NAT.
	OpPacket OpKind = iota
	// OpAdvance lets time pass to Op.Time with no packet.
	OpAdvance
	// OpResize changes the pool to Op.Pool instances (B16).
	OpResize
	// OpReply sends a server's reply to a flow: Op.Packet is the reply as
	// recorded on the inside (server → inside endpoint), and a run
	// addresses it to the SNAT endpoint of that endpoint's live flow
	// toward the server (Lookup), or to Unmapped when there is none.
	OpReply
)

// Unmapped is where a run sends a reply whose flow is not live: a
// frontend IP's first port, which no flow of a scenario's replies uses
// unless the instance holds it.
func Unmapped(sc Scenario) netip.AddrPort { return netip.AddrPortFrom(sc.Config.Frontends[0], 1024) }

// Op is one operation at Time.
type Op struct {
	Kind   OpKind
	Time   time.Time
	Packet reference.Packet
	Pool   int
}

// Scenario is a configuration and the operations to run on it.
type Scenario struct {
	Config reference.Config
	// Backends is every instance address a resize may bring in; Config
	// starts with a prefix of it.
	Backends []netip.Addr
	Ops      []Op
}

// T0 is the time of a scenario's first operation.
var T0 = profilecheck.T0

// The values a scenario draws from, the profile runs' own
// (internal/profilecheck), and its steps of time.
var (
	frontends  = profilecheck.Frontends
	servers    = profilecheck.Servers
	flagTable  = profilecheck.FlagTable
	smallSteps = []time.Duration{0, time.Nanosecond, time.Millisecond, 100 * time.Millisecond, time.Second, 5 * time.Second, 14 * time.Second, 15 * time.Second}
	hugeSteps  = []time.Duration{time.Minute, 4 * time.Minute, 240 * time.Second, 5 * time.Minute, 2 * time.Hour, 30 * 24 * time.Hour}
)

// backendList is n instance addresses: 10.0.0.1, 10.0.0.2, …
func backendList(n int) []netip.Addr { return profilecheck.Backends(n) }

// A shape is a family of configurations, each aimed at code the others do
// not reach: few instances with few ports (timers, filtering, exhaustion);
// more than 64 flows to one destination from one instance; hundreds of
// instances; instances spanning two frontend IPs; pools on the default
// table's tier edges, changed with live flows.
const (
	shapeSmall = iota
	shapeWide
	shapeMany
	shapeSpan
	shapeEdge
	numShapes
)

// shapeOf builds the configuration of shape s from the variant bits v and
// the parameter byte p, and returns how instances are picked (from an
// operation's byte) and how a resize byte becomes a pool size.
func shapeOf(s int, v, p byte) (cfg reference.Config, all []netip.Addr, pick func(byte) int, resize func(byte) int) {
	switch s {
	case shapeWide:
		all = backendList(2)
		cfg = reference.Config{Frontends: frontends[:1], Backends: all[:1+int(p&1)],
			PortsPerInstance: []int{64, 72, 128, 136, 200, 0}[int(p>>1)%6]}
		pick = func(x byte) int { return int(x) % 2 }
		resize = func(x byte) int { return 1 + int(x)%2 }
	case shapeMany:
		all = backendList(1000)
		pool := []int{120, 201, 401, 801, 1000, 300}[int(p)%6]
		cfg = reference.Config{Frontends: frontends[:1+int(v)%3], Backends: all[:pool]}
		pick = func(x byte) int {
			if x < 128 {
				return []int{0, 1, pool / 2, pool - 1}[x%4]
			}
			return int(x-128) * len(all) / 128
		}
		resize = func(x byte) int { return min(len(all), max(1, pool+int(x)-128)) }
	case shapeSpan:
		all = backendList(5)
		switch int(p) % 3 {
		case 0: // instance 1: 8 ports on IP 1, then IP 2
			cfg = reference.Config{Frontends: frontends[:2], Backends: all[:2], PortsPerInstance: 63992}
		case 1: // instance 2: 16 ports on IP 1
			cfg = reference.Config{Frontends: frontends[:2], Backends: all[:3+int(p>>2)%2], PortsPerInstance: 31992}
		default: // instances 1 and 2 each span two of three IPs
			cfg = reference.Config{Frontends: frontends[:3], Backends: all[:3], PortsPerInstance: 63992}
		}
		pick = func(x byte) int { return []int{1, 2, 1, 2, 0, 3, 4, 1}[x%8] }
		resize = func(x byte) int { return 1 + int(x)%len(all) }
	case shapeEdge:
		all = backendList(205)
		edge := []int{50, 100, 200}[int(p)%3]
		cfg = reference.Config{Frontends: frontends[:1+int(v)%2], Backends: all[:edge-1+int(p>>2)%3]}
		pick = func(x byte) int { return []int{0, 0, 1, 2, edge - 2}[x%5] }
		resize = func(x byte) int { return edge - 2 + int(x)%5 }
	default:
		all = backendList(4)
		cfg = reference.Config{Frontends: frontends[:1+int(v)%2], Backends: all[:1+int(p)%3],
			PortsPerInstance: []int{8, 16, 0, 8, 24, 64}[int(p>>2)%6]}
		pick = func(x byte) int { return int(x) % 4 }
		resize = func(x byte) int { return 1 + int(x)%4 }
	}
	return cfg, all, pick, resize
}

// MaxOps bounds a scenario's operations (bursts make many of few bytes),
// which keeps each fuzz run short.
const MaxOps = 2048

// Decode turns fuzz bytes into a scenario. Every input decodes. The first
// byte picks the shape (its value mod 5) and variant bits (the rest), the
// second the timers and rules, the third the shape's pool and allocation;
// then every 4 bytes k, x, y, z are one operation, by k mod 16:
//
//	0–6   an outbound packet: instance x, server y&7, UDP when (y>>3)&3 is
//	      0, ICMP or a fragment when it is 3, source port 2000 +
//	      (z>>3)<<3 + y>>5, flags z&7
//	7–8   a burst of 1+y new flows (SYN, or UDP when z&8) from instance x
//	      to server z&7, source ports 2000 + 16(z>>4) onward
//	9–10  a reply to the x-th last outbound packet, flags y&7, from the
//	      next source port when y&8
//	11    an inbound packet to a SNAT port of frontend y%IPs
//	12–13 a small step of time
//	14    a huge step of time, with no packet
//	15    a pool change to a size picked by x
//
// Decoding stops after MaxOps operations. Values are kept small so that
// flows collide, instances run out of ports
// and timers fire on their boundaries.
func Decode(data []byte) Scenario {
	b := func(i int) byte {
		if i < len(data) {
			return data[i]
		}
		return 0
	}
	cfg, all, pick, resize := shapeOf(int(b(0))%numShapes, b(0)/numShapes, b(2))
	cfg.IdleTimeout = []time.Duration{4 * time.Minute, 5 * time.Minute, 120 * time.Minute, 4 * time.Minute}[int(b(1))%4]
	cfg.TCPResetOnIdle = b(1)>>2&1 == 1
	cfg.Strict = b(1)>>3&7 == 0
	cfg.Protocols = []reference.Protocols{reference.AllProtocols, reference.AllProtocols, reference.AllProtocols, reference.TCPOnly}[int(b(1)>>6)]
	sc := Scenario{Config: cfg, Backends: all}
	now := T0
	var recent []reference.Tuple // the last outbound tuples, for replies
	out := func(p reference.Packet) {
		sc.Ops = append(sc.Ops, Op{Kind: OpPacket, Time: now, Packet: p})
		if len(recent) == 32 {
			recent = recent[1:]
		}
		recent = append(recent, p.Tuple)
	}
	for i := 3; i < len(data) && len(sc.Ops) < MaxOps; i += 4 {
		k, x, y, z := b(i)%16, b(i+1), b(i+2), b(i+3)
		inside := all[min(pick(x), len(all)-1)]
		switch {
		case k < 7:
			proto, frag := reference.TCP, false
			switch y >> 3 & 3 {
			case 0:
				proto = reference.UDP
			case 3:
				if z&8 != 0 {
					proto = reference.ICMP
				} else {
					frag = true
				}
			}
			src := netip.AddrPortFrom(inside, 2000+uint16(z>>3)<<3+uint16(y>>5))
			out(reference.Packet{Time: now, Dir: reference.Outbound, Fragment: frag,
				Tuple: reference.Tuple{Proto: proto, Src: src, Dst: servers[y&7]}, Flags: flagTable[z&7]})
		case k < 9:
			proto := reference.TCP
			if z&8 != 0 {
				proto = reference.UDP
			}
			for j := range 1 + int(y) {
				src := netip.AddrPortFrom(inside, 2000+uint16((16*int(z>>4)+j)%256))
				out(reference.Packet{Time: now, Dir: reference.Outbound, Tuple: reference.Tuple{Proto: proto, Src: src, Dst: servers[z&7]}, Flags: reference.SYN})
			}
		case k < 11:
			if len(recent) == 0 {
				continue
			}
			o := recent[len(recent)-1-int(x)%len(recent)]
			from := o.Dst
			if y&8 != 0 {
				from = netip.AddrPortFrom(from.Addr(), from.Port()+1)
			}
			sc.Ops = append(sc.Ops, Op{Kind: OpReply, Time: now, Packet: reference.Packet{Time: now, Dir: reference.Inbound,
				Tuple: reference.Tuple{Proto: o.Proto, Src: from, Dst: o.Src}, Flags: flagTable[y&7]}})
		case k == 11:
			proto := reference.TCP
			if x&8 == 0 {
				proto = reference.UDP
			}
			dst := netip.AddrPortFrom(cfg.Frontends[int(y)%len(cfg.Frontends)], 1024+uint16((int(z)<<8|int(y))%4096))
			sc.Ops = append(sc.Ops, Op{Kind: OpPacket, Time: now, Packet: reference.Packet{Time: now, Dir: reference.Inbound,
				Tuple: reference.Tuple{Proto: proto, Src: servers[x&7], Dst: dst}, Flags: flagTable[int(x>>4)%len(flagTable)]}})
		case k < 14:
			now = now.Add(smallSteps[x&7] + time.Duration(y)*time.Millisecond + time.Duration(z%16)*time.Second)
		case k == 14:
			now = now.Add(hugeSteps[int(x)%len(hugeSteps)] - time.Duration(y%2)*time.Nanosecond)
			sc.Ops = append(sc.Ops, Op{Kind: OpAdvance, Time: now})
		default:
			sc.Ops = append(sc.Ops, Op{Kind: OpResize, Time: now, Pool: resize(x)})
		}
	}
	return sc
}

// Flags returns the natcheck replay flags that configure the engine as the
// scenario does.
func (sc Scenario) Flags() string {
	c := sc.Config
	var fr, bk []string
	for _, a := range c.Frontends {
		fr = append(fr, a.String())
	}
	for _, a := range c.Backends {
		bk = append(bk, a.String())
	}
	s := fmt.Sprintf("--frontend %s --backends %s --ports-per-instance %d --protocol %s",
		strings.Join(fr, ","), strings.Join(bk, ","), c.PortsPerInstance, c.Protocols)
	if c.IdleTimeout != 0 {
		s += " --idle-timeout " + c.IdleTimeout.String()
	}
	if c.TCPResetOnIdle {
		s += " --tcp-reset-on-idle"
	}
	if c.Strict {
		s += " --strict"
	}
	return s
}

// Resolve returns the packet op sends: for OpReply, the reply addressed
// to the SNAT endpoint lookup gives for its flow (Unmapped when none).
func (sc Scenario) Resolve(op Op, lookup func(reference.Tuple) (netip.AddrPort, bool)) reference.Packet {
	p := op.Packet
	if op.Kind != OpReply {
		return p
	}
	snat, ok := lookup(reference.Tuple{Proto: p.Tuple.Proto, Src: p.Tuple.Dst, Dst: p.Tuple.Src})
	if !ok {
		snat = Unmapped(sc)
	}
	p.Tuple.Dst = snat
	return p
}

// WriteCapture writes the scenario's packets as a pcap file (Ethernet,
// IPv4, valid checksums): outbound packets as the backends sent them,
// inbound ones as recorded on the outside, to the SNAT IP:port (replies
// addressed as a run of the reference engine addresses them). `natcheck
// replay` with Flags() replays it through the same configuration; time
// steps are the gaps between timestamps. Pool changes (OpResize) cannot
// be expressed in a capture and are listed in the returned note.
func (sc Scenario) WriteCapture(w io.Writer) (note string, err error) {
	e, err := reference.New(sc.Config)
	if err != nil {
		return "", fmt.Errorf("write scenario capture: %w", err)
	}
	var packets []reference.Packet
	var resizes []string
	for i, op := range sc.Ops {
		switch op.Kind {
		case OpResize:
			resizes = append(resizes, fmt.Sprintf("op %d at +%v: pool of %d", i, op.Time.Sub(T0), op.Pool))
			if _, err := e.Advance(op.Time, nil); err == nil {
				_ = e.SetPool(op.Time, sc.Backends[:op.Pool], 0) // a refused change is part of the scenario
			}
		case OpAdvance:
			_, _ = e.Advance(op.Time, nil)
		default:
			p := sc.Resolve(op, e.Lookup)
			packets = append(packets, p)
			_, _, _ = e.Process(p, nil)
		}
	}
	if err := pcapgen.WritePCAP(w, packets, []byte("natcheck")); err != nil {
		return "", fmt.Errorf("write scenario capture: %w", err)
	}
	if len(resizes) > 0 {
		note = "pool changes not in the capture: " + strings.Join(resizes, "; ")
	}
	return note, nil
}
