// Package profilecheck runs the engine of the linux, azure-natgw and rfc
// profiles on operations decoded from bytes (Run) and judges the run with
// two oracles that share no code with the engine: the profile's slow model
// (internal/linuxmodel, natgwmodel, rfcmodel), verdict by verdict
// (Compare), and the invariants every engine of the profile keeps whatever
// its random choices (Invariants). The fuzz targets of package fuzz feed
// it fuzzed bytes; reference/'s own tests feed it seeded random bytes
// (Input), so that the profiles' strategies are run, and mutants in them
// killed, by the engine package's tests. It may import reference and the
// models, never replay or specs.
package profilecheck

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// T0 is the time of a run's first operation.
var T0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// The values operations draw from, shared with package fuzz's scenarios.
var (
	// Frontends are the public IPs a configuration takes a prefix of.
	Frontends = []netip.Addr{netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("203.0.113.3")}
	// Servers: three ports on one IP, so that keys per IP:port and per IP
	// differ, and more IPs.
	Servers = []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:443"), netip.MustParseAddrPort("198.51.100.1:80"),
		netip.MustParseAddrPort("198.51.100.2:443"), netip.MustParseAddrPort("198.51.100.3:53"),
		netip.MustParseAddrPort("198.51.100.4:443"), netip.MustParseAddrPort("198.51.100.1:53"),
		netip.MustParseAddrPort("198.51.100.2:53"), netip.MustParseAddrPort("198.51.100.5:8443")}
	// FlagTable are the TCP flag sets a packet is sent with.
	FlagTable = []reference.TCPFlags{reference.SYN, reference.SYN, reference.ACK, reference.SYN | reference.ACK,
		reference.PSH | reference.ACK, reference.FIN | reference.ACK, reference.RST, reference.RST | reference.ACK}
)

// Backends is n instance addresses: 10.0.0.1, 10.0.0.2, …
func Backends(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	a := netip.MustParseAddr("10.0.0.1")
	for i := range out {
		out[i] = a
		a = a.Next()
	}
	return out
}

// Input is n bytes from a PCG generator seeded with seed: the input of a
// seeded run, replayed by passing the same bytes again.
func Input(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x70726f66696c65))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// ShortConntrack is a linux connection-tracking table whose timeouts are
// 1 to 3 s, some shorter than the engine's timing-wheel bucket (2^30 ns),
// so that a run sees many releases, on time, of every state.
func ShortConntrack() reference.Conntrack {
	return reference.Conntrack{
		SynSent: time.Second, SynRecv: time.Second, Established: 3 * time.Second,
		FinWait: 2 * time.Second, CloseWait: time.Second, LastAck: time.Second,
		TimeWait: 2 * time.Second, Close: time.Second, Unacknowledged: 3 * time.Second,
		UDP: time.Second, UDPStream: 2 * time.Second, ICMP: time.Second,
		StreamAfter: time.Second, Loose: true,
	}
}

// Config decodes a configuration of profile p from the first three
// bytes of an input: one or two frontend IPs, one to three backends,
// and the profile's own knobs (linux: ports per instance, strict mode and
// one run in four ShortConntrack; azure-natgw: the TCP idle timeout and one
// run in four a small inventory; rfc: the filtering behaviour, inbound
// refresh and one run in four strict mode, R5).
func Config(p reference.Profile, b0, b1, b2 byte) reference.Config {
	cfg := reference.Config{
		Profile:   p,
		Frontends: Frontends[:1+int(b0)%2],
		Backends:  Backends(1 + int(b2)%3),
	}
	switch p.Name {
	case reference.NameLinux:
		cfg.PortsPerInstance = []int{8, 16, 0, 8}[int(b0>>1)%4]
		cfg.Strict = b1&7 == 0
		if b1>>3&3 == 0 {
			cfg.Profile.Conntrack = ShortConntrack()
		}
	case reference.NameAzureNATGW:
		cfg.IdleTimeout = []time.Duration{4 * time.Minute, 5 * time.Minute, 120 * time.Minute, 4 * time.Minute}[int(b1)%4]
		if b1>>2&3 == 0 {
			// A small inventory: 8 ports per IP and at most 6 flows of an
			// IP to one destination, so that G3's cap and exhaustion, and
			// the picker's scan after its random draws, are reached.
			cfg.Profile.PortsPerIP, cfg.Profile.Gateway.MaxPerDestination = 8, 6
		}
	case reference.NameRFC:
		cfg.Profile.Filtering = reference.Filtering(int(b1) % 3)
		cfg.Profile.RFC.InboundRefresh = b1>>2&1 == 0
		cfg.Strict = b1>>3&3 == 0
		cfg.Strict = b1>>3&7 == 0
	}
	return cfg
}

// profileSteps are the time steps of a profile comparison: the profiles'
// timers (2 s of L7, 10 s to 432,000 s of L5, 16 s, 30 s, 65 s of G4, 4
// and 124 minutes of R4/R5) and small ones.
var profileSteps = []time.Duration{0, time.Nanosecond, time.Millisecond, 500 * time.Millisecond, 2 * time.Second,
	10 * time.Second, 16 * time.Second, 30 * time.Second, 65 * time.Second, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute,
	124 * time.Minute, 432000 * time.Second}

// router sends the ICMP errors of a run: an address on the path, not a
// flow's remote (errors are not filtered by their source).
var router = netip.MustParseAddrPort("192.0.2.254:0")

// endpoint is a flow the engine opened: what an inbound packet may be
// aimed at.
type endpoint struct {
	proto                reference.Proto
	snat, remote, inside netip.AddrPort
}

// Hooks are what Run asks after each operation.
type Hooks struct {
	// Deadlines are release times to land on (nil: none known).
	Deadlines func() []time.Time
	// Packet judges one packet's verdict and emitted packets.
	Packet func(pk reference.Packet, v reference.Verdict, emit []reference.Packet) error
	// Advance judges a step of time with no packet.
	Advance func(t time.Time, emit []reference.Packet) error
}

// Run decodes data into a configuration of profile p (Config, from the
// first three bytes) and operations (4 bytes each, k x y z, by k mod 16):
//
//	0–4   an outbound packet: TCP, UDP, ICMP or a fragment, from one of 16
//	      ports of a backend (some inside the linux instance's range) to a
//	      server, or to a public endpoint of the NAT (R7)
//	5     an outbound packet of a flow opened lately (of the last 8), from
//	      its inside endpoint to its remote one
//	6     a burst of 2 to 17 new flows from one backend to one server, from
//	      consecutive ports: more than an instance or an IP may hold (L4,
//	      G3)
//	7–10  an inbound packet aimed at a flow opened lately: from its remote
//	      endpoint, or another port or IP of it; or an ICMP error quoting
//	      a packet of such a flow (or of those variants), from a router
//	      toward the SNAT address, or from inside toward the remote
//	11    an unsolicited inbound packet
//	12–13 a step of time
//	14–15 a step landing exactly on (or 1 ns before) a release time the
//	      hooks know
//
// It runs them through an engine built with observer and hands each outcome
// to the hooks newHooks builds, stopping at the first error.
func Run(p reference.Profile, data []byte, observer reference.Observer,
	newHooks func(cfg reference.Config, e *reference.Engine) (Hooks, error)) error {
	b := func(i int) byte {
		if i < len(data) {
			return data[i]
		}
		return 0
	}
	cfg := Config(p, b(0), b(1), b(2))
	cfg.Observer = observer
	e, err := reference.New(cfg)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	cfg.Observer = nil
	h, err := newHooks(cfg, e)
	if err != nil {
		return err
	}
	now := T0
	var opened []endpoint
	// recent is one of the last 8 flows opened.
	recent := func(x byte) endpoint { return opened[len(opened)-1-int(x)%min(len(opened), 8)] }
	// 16 inside ports: more flows to one server than an 8-port instance
	// has ports (L4).
	insidePorts := []uint16{1000, 1001, 1002, 1003, 1024, 1025, 1026, 1027, 1028, 1029, 1030, 1031, 1032, 2000, 40000, 50000}
	var emit []reference.Packet
	op := 0
	send := func(pk reference.Packet) error {
		if pk.Tuple.Proto != reference.TCP {
			pk.Flags = 0
		}
		v, em, err := e.Process(pk, emit[:0])
		emit = em
		if err != nil {
			return fmt.Errorf("op %d: engine: %w", op, err)
		}
		if err := h.Packet(pk, v, emit); err != nil {
			return fmt.Errorf("op %d at +%v, %v %v %v: %w", op, now.Sub(T0), pk.Dir, pk.Tuple, pk.Flags, err)
		}
		if v.Action == reference.Translated && pk.Dir == reference.Outbound && v.NewFlow {
			o := endpoint{proto: v.Tuple.Proto, snat: v.Tuple.Src, remote: v.Tuple.Dst, inside: pk.Tuple.Src}
			if !slices.Contains(opened, o) {
				opened = append(opened, o)
			}
		}
		return nil
	}
	for i := 3; i+3 < len(data); i += 4 {
		op = i / 4
		k, x, y, z := b(i)%16, b(i+1), b(i+2), b(i+3)
		var pk reference.Packet
		switch {
		case k < 5: // outbound
			proto := []reference.Proto{reference.TCP, reference.TCP, reference.UDP, reference.ICMP}[int(y>>4)%4]
			src := netip.AddrPortFrom(cfg.Backends[int(x)%len(cfg.Backends)], insidePorts[int(x>>2)%len(insidePorts)])
			dst := Servers[int(y)%len(Servers)]
			if z>>4 == 15 && len(opened) > 0 { // to a public endpoint of the NAT (R7)
				dst = opened[int(y)%len(opened)].snat
			}
			if proto == reference.ICMP {
				dst = netip.AddrPortFrom(dst.Addr(), 0)
			}
			pk = reference.Packet{Time: now, Dir: reference.Outbound, Tuple: reference.Tuple{Proto: proto, Src: src, Dst: dst},
				Flags: FlagTable[int(z)%len(FlagTable)], Fragment: z>>3 == 30}
		case k == 5: // outbound, of a flow opened lately
			if len(opened) == 0 {
				continue
			}
			o := recent(x)
			pk = reference.Packet{Time: now, Dir: reference.Outbound, Tuple: reference.Tuple{Proto: o.proto, Src: o.inside, Dst: o.remote},
				Flags: FlagTable[int(z)%len(FlagTable)]}
		case k == 6: // a burst of new flows
			proto := []reference.Proto{reference.TCP, reference.UDP}[int(y)%2]
			in, dst := cfg.Backends[int(x)%len(cfg.Backends)], Servers[int(y>>1)%len(Servers)]
			for j := range 2 + int(z)%16 {
				if err := send(reference.Packet{Time: now, Dir: reference.Outbound, Flags: reference.SYN,
					Tuple: reference.Tuple{Proto: proto, Src: netip.AddrPortFrom(in, 3000+uint16(x>>2)*16+uint16(j)), Dst: dst}}); err != nil {
					return err
				}
			}
			continue
		case k < 11: // inbound, aimed at a flow opened lately
			if len(opened) == 0 {
				continue
			}
			o := recent(x)
			src := o.remote
			switch y % 4 {
			case 1:
				if src.Port() != 0 {
					src = netip.AddrPortFrom(src.Addr(), src.Port()+1)
				}
			case 2:
				src = netip.AddrPortFrom(Servers[int(y>>2)%len(Servers)].Addr(), src.Port())
			}
			pk = reference.Packet{Time: now, Dir: reference.Inbound, Tuple: reference.Tuple{Proto: o.proto, Src: src, Dst: o.snat},
				Flags: FlagTable[int(z)%len(FlagTable)], Fragment: z>>3 == 30}
			switch z >> 3 {
			case 28: // an ICMP error from a router, quoting a packet the NAT sent (R6, L10)
				pk = reference.Packet{Time: now, Dir: reference.Inbound, Tuple: reference.Tuple{Proto: reference.ICMP, Src: router, Dst: netip.AddrPortFrom(o.snat.Addr(), 0)},
					Embedded: &reference.Tuple{Proto: o.proto, Src: o.snat, Dst: src}}
			case 29: // an ICMP error from inside, quoting a packet it received
				pk = reference.Packet{Time: now, Dir: reference.Outbound, Tuple: reference.Tuple{Proto: reference.ICMP, Src: netip.AddrPortFrom(o.inside.Addr(), 0), Dst: netip.AddrPortFrom(src.Addr(), 0)},
					Embedded: &reference.Tuple{Proto: o.proto, Src: src, Dst: o.inside}}
			}
		case k == 11: // unsolicited
			pk = reference.Packet{Time: now, Dir: reference.Inbound, Tuple: reference.Tuple{Proto: []reference.Proto{reference.TCP, reference.UDP}[int(y)%2],
				Src: Servers[int(x)%len(Servers)], Dst: netip.AddrPortFrom(cfg.Frontends[int(y>>1)%len(cfg.Frontends)], 1024+uint16(z)%64)},
				Flags: FlagTable[int(z>>2)%len(FlagTable)]}
		case k < 14: // a time step
			now = now.Add(profileSteps[int(x)%len(profileSteps)] + time.Duration(y)*time.Millisecond)
			continue
		default: // land on a release time, or 1 ns before
			var ds []time.Time
			if h.Deadlines != nil {
				ds = h.Deadlines()
			}
			if len(ds) == 0 {
				now = now.Add(profileSteps[int(x)%len(profileSteps)])
			} else {
				d := ds[int(x)%len(ds)]
				if y&1 == 1 {
					d = d.Add(-time.Nanosecond)
				}
				if d.After(now) {
					now = d
				}
			}
			emit, err = e.Advance(now, emit[:0])
			if err != nil {
				return fmt.Errorf("op %d: engine: %w", op, err)
			}
			if err := h.Advance(now, emit); err != nil {
				return fmt.Errorf("op %d: Advance(+%v): %w", op, now.Sub(T0), err)
			}
			continue
		}
		if err := send(pk); err != nil {
			return err
		}
		if z&1 == 1 {
			now = now.Add(profileSteps[int(z>>1)%5])
		}
	}
	return nil
}
