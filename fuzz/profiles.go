package fuzz

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/natcheck/natcheck/internal/linuxmodel"
	"github.com/natcheck/natcheck/internal/natgwmodel"
	"github.com/natcheck/natcheck/internal/rfcmodel"
	"github.com/natcheck/natcheck/reference"
)

// ProfileConfig decodes a configuration of profile p from the first three
// bytes of a fuzz input: one or two frontend IPs, one to three backends,
// and the profile's own knobs (linux: ports per instance and strict mode;
// azure-natgw: the TCP idle timeout; rfc: the filtering behaviour and
// inbound refresh).
func ProfileConfig(p reference.Profile, b0, b1, b2 byte) reference.Config {
	cfg := reference.Config{
		Profile:   p,
		Frontends: frontends[:1+int(b0)%2],
		Backends:  backendList(1 + int(b2)%3),
	}
	switch p.Name {
	case reference.NameLinux:
		cfg.PortsPerInstance = []int{8, 16, 0, 8}[int(b0>>1)%4]
		cfg.Strict = b1&7 == 0
	case reference.NameAzureNATGW:
		cfg.IdleTimeout = []time.Duration{4 * time.Minute, 5 * time.Minute, 120 * time.Minute, 4 * time.Minute}[int(b1)%4]
	case reference.NameRFC:
		cfg.Profile.Filtering = reference.Filtering(int(b1) % 3)
		cfg.Profile.RFC.InboundRefresh = b1>>2&1 == 0
		cfg.Strict = b1>>3&7 == 0
	}
	return cfg
}

// profileModel is a profile's slow model seen from the comparison: it
// checks the engine's verdict and emitted packets for one packet, and
// lets time pass.
type profileModel interface {
	check(p reference.Packet, v reference.Verdict, emit []reference.Packet) error
	advance(t time.Time) error
	flows() int
	deadlines() []time.Time
}

type linuxCheck struct{ m *linuxmodel.Model }

func (l linuxCheck) check(p reference.Packet, v reference.Verdict, emit []reference.Packet) error {
	if len(emit) > 0 {
		return fmt.Errorf("linux sends no packets of its own; the engine sent %v", emit)
	}
	return l.m.Check(p, v)
}
func (l linuxCheck) advance(t time.Time) error { return l.m.Advance(t) }
func (l linuxCheck) flows() int                { return l.m.Flows() }
func (l linuxCheck) deadlines() []time.Time    { return l.m.Deadlines() }

type natgwCheck struct{ m *natgwmodel.Model }

func (g natgwCheck) check(p reference.Packet, v reference.Verdict, emit []reference.Packet) error {
	return g.m.Check(p, v, emit)
}
func (g natgwCheck) advance(t time.Time) error { return g.m.Advance(t) }
func (g natgwCheck) flows() int                { return g.m.Flows() }
func (g natgwCheck) deadlines() []time.Time    { return g.m.Deadlines() }

// rfcCheck compares exactly: the rfc profile chooses nothing at random.
type rfcCheck struct{ m *rfcmodel.Model }

func (r rfcCheck) check(p reference.Packet, v reference.Verdict, emit []reference.Packet) error {
	want, err := r.m.Process(p)
	if err != nil {
		return err
	}
	if len(emit) > 0 {
		return fmt.Errorf("rfc sends no packets of its own; the engine sent %v", emit)
	}
	if v.Action != want.Action || v.Reason != want.Reason || v.Behavior != want.Behavior || v.Instance != want.Instance ||
		v.NewFlow != want.NewFlow || ((v.Action == reference.Translated || v.Action == reference.Hairpinned) && v.Tuple != want.Tuple) ||
		(v.Embedded == nil) != (want.Embedded == nil) || (v.Embedded != nil && *v.Embedded != *want.Embedded) {
		return fmt.Errorf("engine %s, model %s", v, want)
	}
	return nil
}
func (r rfcCheck) advance(t time.Time) error { return r.m.Advance(t) }
func (r rfcCheck) flows() int                { return r.m.Flows() }
func (r rfcCheck) deadlines() []time.Time    { return r.m.Deadlines() }

func newProfileModel(cfg reference.Config, e *reference.Engine) (profileModel, error) {
	switch cfg.Profile.Name {
	case reference.NameLinux:
		m, err := linuxmodel.New(cfg, linuxmodel.RulesFromPlan(e.Plan()))
		return linuxCheck{m}, err
	case reference.NameAzureNATGW:
		m, err := natgwmodel.New(cfg)
		return natgwCheck{m}, err
	case reference.NameRFC:
		m, err := rfcmodel.New(cfg)
		return rfcCheck{m}, err
	}
	return nil, fmt.Errorf("no model of profile %q", cfg.Profile.Name)
}

// profileSteps are the time steps of a profile comparison: the profiles'
// timers (2 s of L7, 10 s to 432,000 s of L5, 16 s, 30 s, 65 s of G4, 4
// and 124 minutes of R4/R5) and small ones.
var profileSteps = []time.Duration{0, time.Nanosecond, time.Millisecond, 500 * time.Millisecond, 2 * time.Second,
	10 * time.Second, 16 * time.Second, 30 * time.Second, 65 * time.Second, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute,
	124 * time.Minute, 432000 * time.Second}

// router sends the ICMP errors of a profile comparison: an address on the
// path, not a flow's remote (errors are not filtered by their source).
var router = netip.MustParseAddrPort("192.0.2.254:0")

// endpoint is a flow the engine opened: what an inbound packet may be
// aimed at.
type endpoint struct {
	proto                reference.Proto
	snat, remote, inside netip.AddrPort
}

// CompareProfile runs the engine of profile p and the profile's slow
// model (internal/linuxmodel, natgwmodel or rfcmodel) on the operations
// data decodes to (runProfile), and returns the first disagreement: a
// verdict, an emitted packet or a number of live flows the model does not
// allow. Every input decodes; the same input gives the same run.
func CompareProfile(p reference.Profile, data []byte) error {
	var m profileModel
	return runProfile(p, data, nil, func(cfg reference.Config, e *reference.Engine) (profileHooks, error) {
		var err error
		m, err = newProfileModel(cfg, e)
		return profileHooks{
			deadlines: func() []time.Time { return m.deadlines() },
			packet: func(pk reference.Packet, v reference.Verdict, emit []reference.Packet) error {
				if err := m.check(pk, v, emit); err != nil {
					return err
				}
				if e.Flows() != m.flows() {
					return fmt.Errorf("the engine has %d flows, the model %d", e.Flows(), m.flows())
				}
				return nil
			},
			advance: func(t time.Time, emit []reference.Packet) error {
				if err := m.advance(t); err != nil {
					return err
				}
				if len(emit) > 0 {
					return fmt.Errorf("the engine sent %v", emit)
				}
				if e.Flows() != m.flows() {
					return fmt.Errorf("the engine has %d flows, the model %d", e.Flows(), m.flows())
				}
				return nil
			},
		}, err
	})
}

// profileHooks are what runProfile asks after each operation.
type profileHooks struct {
	// deadlines are release times to land on (nil: none known).
	deadlines func() []time.Time
	// packet judges one packet's verdict and emitted packets.
	packet func(pk reference.Packet, v reference.Verdict, emit []reference.Packet) error
	// advance judges a step of time with no packet.
	advance func(t time.Time, emit []reference.Packet) error
}

// runProfile decodes data into a configuration of profile p
// (ProfileConfig, from the first three bytes) and operations (4 bytes
// each): an outbound packet (TCP, UDP, ICMP, or a fragment, from a few
// inside endpoints, some of them inside the linux instance's range, to a
// few servers or a public endpoint of the NAT), an inbound packet aimed at
// an endpoint the engine opened (from the remote it was sent to, or
// another port or IP of it), an ICMP error quoting a packet of such a
// flow (or of its variants) from either side, an unsolicited one, a time step, or a step
// landing exactly on (or 1 ns before) a release time the hooks know. It
// runs them through an engine built with observer and hands each outcome
// to the hooks newHooks builds, stopping at the first error.
func runProfile(p reference.Profile, data []byte, observer reference.Observer,
	newHooks func(cfg reference.Config, e *reference.Engine) (profileHooks, error)) error {
	b := func(i int) byte {
		if i < len(data) {
			return data[i]
		}
		return 0
	}
	cfg := ProfileConfig(p, b(0), b(1), b(2))
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
	insidePorts := []uint16{1000, 1001, 1002, 1024, 1025, 1031, 1032, 40000}
	var emit []reference.Packet
	for i := 3; i+3 < len(data); i += 4 {
		k, x, y, z := b(i)%16, b(i+1), b(i+2), b(i+3)
		var pk reference.Packet
		switch {
		case k < 7: // outbound
			proto := []reference.Proto{reference.TCP, reference.TCP, reference.UDP, reference.ICMP}[int(y>>4)%4]
			src := netip.AddrPortFrom(cfg.Backends[int(x)%len(cfg.Backends)], insidePorts[int(x>>2)%len(insidePorts)])
			dst := servers[int(y)%len(servers)]
			if z>>4 == 15 && len(opened) > 0 { // to a public endpoint of the NAT (R7)
				dst = opened[int(y)%len(opened)].snat
			}
			if proto == reference.ICMP {
				dst = netip.AddrPortFrom(dst.Addr(), 0)
			}
			pk = reference.Packet{Time: now, Dir: reference.Outbound, Tuple: reference.Tuple{Proto: proto, Src: src, Dst: dst},
				Flags: flagTable[int(z)%len(flagTable)], Fragment: z>>3 == 30}
			if proto != reference.TCP {
				pk.Flags = 0
			}
		case k < 11: // inbound, aimed at an endpoint the engine opened
			if len(opened) == 0 {
				continue
			}
			o := opened[int(x)%len(opened)]
			src := o.remote
			switch y % 4 {
			case 1:
				if src.Port() != 0 {
					src = netip.AddrPortFrom(src.Addr(), src.Port()+1)
				}
			case 2:
				src = netip.AddrPortFrom(servers[int(y>>2)%len(servers)].Addr(), src.Port())
			}
			pk = reference.Packet{Time: now, Dir: reference.Inbound, Tuple: reference.Tuple{Proto: o.proto, Src: src, Dst: o.snat},
				Flags: flagTable[int(z)%len(flagTable)], Fragment: z>>3 == 30}
			if o.proto != reference.TCP {
				pk.Flags = 0
			}
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
				Src: servers[int(x)%len(servers)], Dst: netip.AddrPortFrom(cfg.Frontends[int(y>>1)%len(cfg.Frontends)], 1024+uint16(z)%64)},
				Flags: flagTable[int(z>>2)%len(flagTable)]}
		case k < 14: // a time step
			now = now.Add(profileSteps[int(x)%len(profileSteps)] + time.Duration(y)*time.Millisecond)
			continue
		default: // land on a release time, or 1 ns before
			var ds []time.Time
			if h.deadlines != nil {
				ds = h.deadlines()
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
				return fmt.Errorf("op %d: engine: %w", i/4, err)
			}
			if err := h.advance(now, emit); err != nil {
				return fmt.Errorf("op %d: Advance(+%v): %w", i/4, now.Sub(T0), err)
			}
			continue
		}
		v, em, err := e.Process(pk, emit[:0])
		emit = em
		if err != nil {
			return fmt.Errorf("op %d: engine: %w", i/4, err)
		}
		if err := h.packet(pk, v, emit); err != nil {
			return fmt.Errorf("op %d at +%v, %v %v %v: %w", i/4, now.Sub(T0), pk.Dir, pk.Tuple, pk.Flags, err)
		}
		if v.Action == reference.Translated && pk.Dir == reference.Outbound && v.NewFlow {
			o := endpoint{proto: v.Tuple.Proto, snat: v.Tuple.Src, remote: v.Tuple.Dst, inside: pk.Tuple.Src}
			if !slices.Contains(opened, o) {
				opened = append(opened, o)
			}
		}
		if z&1 == 1 {
			now = now.Add(profileSteps[int(z>>1)%5])
		}
	}
	return nil
}
