package profilecheck

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// liveFlow is a flow the engine's events say is live: what a
// MappingCreated or MappingReused event names, until its Released event.
type liveFlow struct {
	proto                reference.Proto
	inst                 int
	inside, remote, snat netip.AddrPort
}

// profileShadow follows an engine of the linux, azure-natgw or rfc
// profile through its events and verdicts, and checks after every
// operation the invariants that hold whatever the random choices:
//   - every live flow's SNAT endpoint lies in its inventory: the
//     instance's rule (L1), the gateway's IPs and ports 1024–65535 (G1),
//     the public IP paired with the inside IP, in the inside port's range
//     (R3);
//   - SNAT endpoints are unique per key: per (SNAT endpoint, remote) for
//     flows per 5-tuple (L3, G3); rfc's UDP and ICMP mappings one per
//     public endpoint and per inside endpoint, its TCP connections of one
//     public endpoint all of one inside endpoint (R1);
//   - no translated packet leaves with an inside address (L11): an
//     outbound packet leaves from the SNAT endpoint of a live flow of its
//     inside endpoint, an inbound one reaches the inside endpoint of a live
//     flow on its SNAT endpoint;
//   - the live flows the events count are the engine's Flows();
//   - the same input gives the same events and verdicts (determinism).
type profileShadow struct {
	prof  reference.Profile
	plan  reference.Plan
	cfg   reference.Config
	flows []liveFlow
	// gone are the flows released since the last operation was checked:
	// a packet may be translated and end its flow at once (L6).
	gone []liveFlow
	log  strings.Builder
}

func (s *profileShadow) observe(ev reference.Event) {
	fmt.Fprintln(&s.log, ev)
	f := liveFlow{proto: ev.Proto, inst: ev.Instance, inside: ev.Inside, remote: ev.Remote, snat: ev.SNAT}
	switch ev.Kind {
	case reference.MappingCreated, reference.MappingReused:
		s.flows = append(s.flows, f)
	case reference.Released:
		if i := slices.Index(s.flows, f); i >= 0 {
			s.flows = slices.Delete(s.flows, i, i+1)
			s.gone = append(s.gone, f)
		}
	}
}

// inInventory reports whether snat may carry a flow of instance inst
// from inside (L1, G1, R3).
func (s *profileShadow) inInventory(inst int, inside, snat netip.AddrPort) bool {
	switch s.prof.Name {
	case reference.NameLinux:
		if inst < 0 || inst >= len(s.plan.Instances) {
			return false
		}
		for _, r := range s.plan.Instances[inst].Ranges {
			if r.IP == snat.Addr() && snat.Port() >= r.First && snat.Port() <= r.Last {
				return true
			}
		}
		return false
	case reference.NameAzureNATGW:
		return slices.Contains(s.cfg.Frontends, snat.Addr()) && snat.Port() >= 1024
	case reference.NameRFC:
		paired := s.cfg.Frontends[inst%len(s.cfg.Frontends)]
		return snat.Addr() == paired && snat.Port() != 0 && (snat.Port() < 1024) == (inside.Port() < 1024)
	}
	return false
}

func (s *profileShadow) check(e *reference.Engine) error {
	if n := e.Flows(); n != len(s.flows) {
		return fmt.Errorf("the engine has %d flows, its events %d", n, len(s.flows))
	}
	type key struct {
		proto          reference.Proto
		snat, remote   netip.AddrPort
		inside         netip.AddrPort
		byEndpointOnly bool
	}
	seen := map[key]liveFlow{}
	owner := map[netip.AddrPort]netip.AddrPort{} // rfc TCP: public endpoint → inside endpoint
	for _, f := range s.flows {
		if !s.inInventory(f.inst, f.inside, f.snat) {
			return fmt.Errorf("flow %v %v→%v of instance %d on %v, outside its inventory", f.proto, f.inside, f.remote, f.inst, f.snat)
		}
		k := key{proto: f.proto, snat: f.snat, remote: f.remote}
		if s.prof.Name == reference.NameRFC && f.proto != reference.TCP {
			k = key{proto: f.proto, snat: f.snat, byEndpointOnly: true}
			if g, ok := seen[key{proto: f.proto, inside: f.inside, byEndpointOnly: true}]; ok {
				return fmt.Errorf("inside endpoint %v has two %v mappings: %v and %v (R1)", f.inside, f.proto, g.snat, f.snat)
			}
			seen[key{proto: f.proto, inside: f.inside, byEndpointOnly: true}] = f
		}
		if s.prof.Name == reference.NameRFC && f.proto == reference.TCP {
			if in, ok := owner[f.snat]; ok && in != f.inside {
				return fmt.Errorf("public endpoint %v carries TCP connections of %v and %v (R1)", f.snat, in, f.inside)
			}
			owner[f.snat] = f.inside
		}
		if g, ok := seen[k]; ok {
			return fmt.Errorf("%v and %v share %v toward %v", g.inside, f.inside, f.snat, f.remote)
		}
		seen[k] = f
	}
	return nil
}

// verdict checks a translated packet against the flows live before it
// (L11).
func (s *profileShadow) verdict(pk reference.Packet, v reference.Verdict) error {
	all := append(slices.Clip(s.flows), s.gone...)
	s.gone = s.gone[:0]
	if pk.Embedded != nil && v.Action == reference.Translated {
		return icmpErrorVerdict(s.cfg, all, pk, v)
	}
	switch v.Action {
	case reference.Translated:
		if pk.Dir == reference.Outbound {
			if !slices.Contains(s.cfg.Frontends, v.Tuple.Src.Addr()) {
				return fmt.Errorf("left with source %v, not a public address (L11)", v.Tuple.Src)
			}
			if !slices.ContainsFunc(all, func(f liveFlow) bool { return f.inside == pk.Tuple.Src && f.snat == v.Tuple.Src }) {
				return fmt.Errorf("left from %v, which no live flow of %v holds", v.Tuple.Src, pk.Tuple.Src)
			}
			return nil
		}
		if !slices.ContainsFunc(all, func(f liveFlow) bool { return f.snat == pk.Tuple.Dst && f.inside == v.Tuple.Dst }) {
			return fmt.Errorf("reached %v through %v, which no live flow of it holds", v.Tuple.Dst, pk.Tuple.Dst)
		}
	case reference.Hairpinned:
		if !slices.Contains(s.cfg.Frontends, v.Tuple.Src.Addr()) || !slices.Contains(s.cfg.Backends, v.Tuple.Dst.Addr()) {
			return fmt.Errorf("hairpinned %v, want from a public endpoint to an inside one (R7)", v.Tuple)
		}
	}
	return nil
}

// Invariants runs the engine of profile p on the operations
// data decodes to (Run) and checks profileShadow's invariants after
// every one; it runs the input twice and compares the event logs.
func Invariants(p reference.Profile, data []byte) error {
	var logs [2]string
	for run := range logs {
		s := &profileShadow{prof: p}
		err := Run(p, data, s.observe, func(cfg reference.Config, e *reference.Engine) (Hooks, error) {
			s.cfg, s.plan = cfg, e.Plan()
			return Hooks{
				Packet: func(pk reference.Packet, v reference.Verdict, emit []reference.Packet) error {
					fmt.Fprintf(&s.log, "%v %v %v -> %v %v %v %v\n", pk.Dir, pk.Tuple, pk.Flags, v.Action, v.Behavior, v.Tuple, emit)
					if err := s.verdict(pk, v); err != nil {
						return err
					}
					return s.check(e)
				},
				Advance: func(t time.Time, emit []reference.Packet) error {
					s.gone = s.gone[:0]
					return s.check(e)
				},
			}, nil
		})
		if err != nil {
			return err
		}
		logs[run] = s.log.String()
	}
	if logs[0] != logs[1] {
		return fmt.Errorf("two runs of one input gave different events")
	}
	return nil
}

// icmpErrorVerdict checks a translated ICMP error (R6, L10): it quotes a
// packet of a flow live before it, and leaves with that flow's addresses:
// inbound, to the inside endpoint, the quoted source rewritten to it;
// outbound, from the SNAT address, the quoted destination rewritten to the
// SNAT endpoint, so that no inside address leaves (L11).
func icmpErrorVerdict(cfg reference.Config, all []liveFlow, pk reference.Packet, v reference.Verdict) error {
	q, got := pk.Embedded, v.Embedded
	if got == nil || got.Proto != q.Proto {
		return fmt.Errorf("translated ICMP error quoting %v left quoting %v", q, got)
	}
	if pk.Dir == reference.Inbound {
		if got.Dst != q.Dst || v.Tuple.Src != pk.Tuple.Src || v.Tuple.Dst.Addr() != got.Src.Addr() {
			return fmt.Errorf("ICMP error %v quoting %v left as %v quoting %v", pk.Tuple, q, v.Tuple, got)
		}
		if !slices.ContainsFunc(all, func(f liveFlow) bool { return f.proto == q.Proto && f.snat == q.Src && f.inside == got.Src }) {
			return fmt.Errorf("ICMP error quoting %v reached %v, which no live flow of it holds", q, got.Src)
		}
		return nil
	}
	if got.Src != q.Src || v.Tuple.Dst != pk.Tuple.Dst || v.Tuple.Src.Addr() != got.Dst.Addr() || !slices.Contains(cfg.Frontends, got.Dst.Addr()) {
		return fmt.Errorf("ICMP error %v quoting %v left as %v quoting %v (L11)", pk.Tuple, q, v.Tuple, got)
	}
	if !slices.ContainsFunc(all, func(f liveFlow) bool { return f.proto == q.Proto && f.inside == q.Dst && f.snat == got.Dst }) {
		return fmt.Errorf("ICMP error quoting %v left from %v, which no live flow of it holds", q, got.Dst)
	}
	return nil
}
