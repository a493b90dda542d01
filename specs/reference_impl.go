package specs

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// Reference returns the reference engine as an implementation under test:
// in-process, virtual time, every capability.
func Reference() Impl { return referenceImpl("reference", nil, nil) }

// Engine returns the reference engine running profile p, named
// "reference" for azure-lb and "reference-"+p.Name otherwise. A check
// written for azure-lb configures it as a user would configure such a
// device from an azure-lb outbound rule: settings the profile does not
// have (an idle timeout on linux and rfc, ports per instance on a shared
// inventory) are left out, so that the checks that need them show how the
// device differs. It lacks the capabilities its profile has no setting
// for (tcpResetOnIdle, pool changes, a protocol rule, a strict mode).
func Engine(p reference.Profile) Impl {
	if p.Name == "" || p.Name == reference.NameAzureLB {
		im := Reference()
		im.Profile = p
		return im
	}
	caps := AllCapabilities &^ (CapResetOnIdle | CapPoolChange)
	switch p.Name {
	case reference.NameAzureNATGW:
		caps &^= CapProtocolRule | CapStrict
	case reference.NameRFC:
		caps &^= CapProtocolRule
	}
	name := "reference-" + p.Name
	return Impl{
		Name: name, Reference: true, Caps: caps, Profile: p, Known: known[p.Name],
		Open: func(_ context.Context, cfg reference.Config) (NAT, error) {
			if cfg.Profile.Timers != reference.TimersHold {
				cfg.IdleTimeout = 0
			}
			if cfg.Profile.Quota == reference.QuotaShared {
				cfg.PortsPerInstance = 0
			}
			cfg.Observer = nil
			e, err := reference.New(cfg)
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", name, err)
			}
			return &inProcess{e: e}, nil
		},
	}
}

// referenceImpl is a reference engine whose profile is modified by mod
// and whose configuration is modified by conf (each nil for none): the
// reference itself, or a mutant that differs from it by a parameter.
func referenceImpl(name string, mod func(*reference.Profile), conf func(*reference.Config)) Impl {
	return Impl{
		Name: name, Reference: true, Caps: AllCapabilities,
		Open: func(_ context.Context, cfg reference.Config) (NAT, error) {
			if mod != nil {
				if cfg.Profile.Name == "" {
					cfg.Profile = reference.AzureLB()
				}
				mod(&cfg.Profile)
			}
			if conf != nil {
				conf(&cfg)
			}
			cfg.Observer = nil
			e, err := reference.New(cfg)
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", name, err)
			}
			return &inProcess{e: e}, nil
		},
	}
}

// engine is what an in-process NAT in virtual time offers: the reference
// engine and the model of internal/snatmodel both do.
type engine interface {
	Process(p reference.Packet, emit []reference.Packet) (reference.Verdict, []reference.Packet, error)
	Advance(t time.Time, emit []reference.Packet) ([]reference.Packet, error)
	SetPool(t time.Time, backends []netip.Addr, poolSize int) error
	Plan() reference.Plan
}

// inProcess adapts an in-process engine to NAT: verdicts become
// deliveries.
type inProcess struct {
	e    engine
	emit []reference.Packet
}

var _ NAT = (*inProcess)(nil)

func (n *inProcess) Send(_ context.Context, p reference.Packet) (Delivery, error) {
	v, emit, err := n.e.Process(p, n.emit[:0])
	n.emit = emit
	if err != nil {
		return Delivery{}, fmt.Errorf("send %v: %w", p.Tuple, err)
	}
	var d Delivery
	if len(emit) > 0 {
		d.Emitted = append([]reference.Packet(nil), emit...)
	}
	switch v.Action {
	case reference.Translated:
		d.Forwarded = true
		d.Packet = p
		d.Packet.Tuple, d.Packet.Embedded = v.Tuple, v.Embedded
	case reference.Hairpinned:
		d.Forwarded = true
		d.Packet = p
		d.Packet.Dir, d.Packet.Tuple = reference.Inbound, v.Tuple
	}
	return d, nil
}

func (n *inProcess) Wait(_ context.Context, t time.Time) ([]reference.Packet, error) {
	emit, err := n.e.Advance(t, n.emit[:0])
	n.emit = emit
	if err != nil {
		return nil, fmt.Errorf("wait until %v: %w", t, err)
	}
	return append([]reference.Packet(nil), emit...), nil
}

func (n *inProcess) SetPool(_ context.Context, t time.Time, backends []netip.Addr, poolSize int) error {
	if err := n.e.SetPool(t, backends, poolSize); err != nil {
		return fmt.Errorf("set pool: %w", err)
	}
	return nil
}

func (n *inProcess) Plan() reference.Plan { return n.e.Plan() }

func (n *inProcess) Close() error { return nil }

// known are, per profile, the azure-lb behaviours its NAT is documented to
// do otherwise (SEMANTICS.md "Known differences", and the profile's own
// items that say so): the deviations the azure-lb checks show on it.
var known = map[string]map[reference.Behavior]string{
	reference.NameLinux: {
		reference.B7:  "L3: uniqueness is per 5-tuple, so a SNAT port carries mappings toward several ports of one UDP destination IP",
		reference.B9:  "L4: the kernel gives up probing before every port toward a destination is taken; L6: a RST on an unanswered flow frees its port at once; L11: an ACK after a bare SYN is invalid",
		reference.B10: "L5: after a FIN the flow goes through FIN_WAIT, CLOSE_WAIT, LAST_ACK and TIME_WAIT, every packet restarting the timer of its state; L11: a FIN on a flow that saw no SYN-ACK is invalid",
		reference.B11: "L6: a RST on a flow that never saw a reply frees it at once, otherwise CLOSE for nf_conntrack_tcp_timeout_close; L11: a FIN without ACK is invalid",
		reference.B12: "L5, L7: no idle timeout setting; timers are per connection-tracking state (ESTABLISHED 5 days, UDP 30 s or 120 s by default)",
		reference.B13: "its checks sit at azure-lb's release times (RST + 15 s, idle 4 minutes), which Linux does not have (L5–L7); the L5–L7 checks probe Linux's own boundaries",
		reference.B14: "L5: an idle established flow lives nf_conntrack_tcp_timeout_established (5 days by default); no tcpResetOnIdle",
		reference.B15: "L10: ICMP echo and IP fragments are translated",
		reference.B16: "the plan is the rule set a Linux device is configured with; the linux profile does not model rewriting it",
		reference.C1:  "L2: a new flow's port is its source port or a probed one, not the range's first",
		reference.C3:  "L2: the source port is kept when it can be, otherwise ports are probed from a hashed offset, not the lowest first",
		reference.C4:  "L2: a new flow's port is chosen anew, not the slot just released",
		reference.C5:  "L9: a FIN or a RST with no flow is invalid and dropped; L11: strict (tcp_loose=0) Linux drops an ACK that follows a bare SYN",
		reference.C6:  "no tcpResetOnIdle (B14)",
		reference.C7:  "no tcpResetOnIdle (B14)",
	},
	reference.NameAzureNATGW: {
		reference.B1:  "G1: 64,512 ports per public IP (1024–65535), shared by the subnet on demand: no per-instance allocation",
		reference.B2:  "G1: no per-instance allocation (no ports per instance, no blocks)",
		reference.B3:  "G1: no default allocation table: the inventory is shared",
		reference.B4:  "G1: no outbound rule with ports per instance: the inventory is shared",
		reference.B5:  "G1: every instance draws from the gateway's one inventory",
		reference.B6:  "G1, G2: no per-instance quota to exhaust, and a random port per flow",
		reference.B7:  "G3: flows per 5-tuple, UDP too, each with a random port (G2)",
		reference.B8:  "G6: an unsolicited TCP packet is answered with a RST; G7: UDP replies only from the exact destination IP:port",
		reference.B9:  "G1, G3: an instance is exhausted only when the shared inventory toward a destination is, or at G3's 50,000 cap",
		reference.B10: "G4: a FIN holds the flow 65 s; a SYN with no answer is closed after 30 s, and later packets of a closed flow get a RST (G6)",
		reference.B11: "G4: a RST holds the flow 16 s; a SYN with no answer is closed after 30 s; ports are random (G2)",
		reference.B12: "G4, G5, G6: a SYN with no answer is closed after 30 s, UDP idles out after a fixed 4 minutes, packets of a flow that no longer exists get a RST",
		reference.B13: "its checks sit at azure-lb's release times; the G4 and G5 checks probe the gateway's own",
		reference.B14: "G6: a late packet of an expired flow is answered with a RST; no tcpResetOnIdle",
		reference.B15: "G8 drops ICMP and fragments; a gateway has no outbound rule limited to one protocol",
		reference.B16: "G1: no per-instance allocation to reclaim",
		reference.C1:  "G1: ports 1024–65535, shared",
		reference.C2:  "G1: no placement of blocks",
		reference.C3:  "G2: a random port, not the lowest",
		reference.C4:  "G2: a random port, not the slot just released",
		reference.C5:  "G6: a TCP packet with no flow that is not a SYN is answered with a RST; a gateway is always strict",
		reference.C6:  "no tcpResetOnIdle (B14)",
		reference.C7:  "no tcpResetOnIdle (B14)",
	},
	reference.NameRFC: {
		reference.B1:  "R3: one inventory per public IP (ports 1–65535) shared by the inside IPs paired with it: no per-instance allocation",
		reference.B2:  "R3: no per-instance allocation",
		reference.B3:  "R3: no default allocation table",
		reference.B4:  "R3: no ports per instance",
		reference.B5:  "R3: the inside IPs paired with a public IP share its ports",
		reference.B6:  "R3: no per-instance quota: N flows take N ports while the public IP has them",
		reference.B7:  "R1: one UDP mapping per inside endpoint for every destination, with no per-instance quota",
		reference.B9:  "R3: no per-instance quota",
		reference.B10: "R5: after a FIN both ways a connection is transitory (4 minutes idle), and there is no FIN hold",
		reference.B11: "R5: a RST is translated and the connection kept 4 minutes after it",
		reference.B12: "R4, R5: UDP mappings live 5 minutes, established TCP 124 minutes; no idle timeout setting",
		reference.B13: "its checks sit at azure-lb's release times; the R4 and R5 checks probe the profile's own",
		reference.B14: "R5: an idle established connection lives 124 minutes; no tcpResetOnIdle",
		reference.B15: "R6: ICMP echo is translated; no outbound rule limited to one protocol",
		reference.B16: "R3: no per-instance allocation to reclaim",
		reference.C1:  "R3: ports 1–65535, the inside port kept when free",
		reference.C2:  "R3: no placement of blocks",
		reference.C3:  "R3: the inside port when free, else the lowest of the same parity",
		reference.C4:  "R3: the inside port when free, not the slot just released",
		reference.C6:  "no tcpResetOnIdle (B14)",
		reference.C7:  "no tcpResetOnIdle (B14)",
	},
}
