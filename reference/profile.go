package reference

import (
	"fmt"
	"time"
)

// Mapping says which packets share one SNAT mapping, in RFC 4787 terms:
// which parts of the destination key a flow.
type Mapping uint8

const (
	// MappingPerDestination: a TCP flow per (inside endpoint, destination
	// IP:port) and a UDP mapping per (inside endpoint, destination IP), its
	// other destination ports carried as peers: the azure-lb reuse rules
	// B6 and B7.
	MappingPerDestination Mapping = iota
	// MappingEndpointIndependent: one UDP mapping per inside endpoint, for
	// every destination (R1); TCP connections are tracked per 5-tuple but
	// the connections of one inside endpoint share its public endpoint.
	MappingEndpointIndependent
	// MappingFiveTuple: a flow per full 5-tuple, TCP and UDP alike (L3,
	// G3).
	MappingFiveTuple
)

// PortChoice says how a new flow's SNAT endpoint is picked among the
// suitable ones.
type PortChoice uint8

const (
	// PortLowestFree: the first frontend IP in order, then its lowest
	// suitable port (C3).
	PortLowestFree PortChoice = iota
	// PortRandom: a seeded random choice of frontend IP and port among the
	// suitable ones (G2).
	PortRandom
	// PortPreserve: the SNAT endpoint of the inside endpoint's live
	// mapping, else the inside source port, when in range and the
	// translated tuple is unique, else ports probed from a seeded random
	// offset in rounds of 128, 64, 32, 16 and 8 (L2, L4), as Linux's
	// nf_nat_core does.
	PortPreserve
	// PortParity: the inside source port when free, else the lowest free
	// port of the same parity in the same range (1–1023 or 1024–65535),
	// on the frontend IP paired with the inside IP (R3).
	PortParity
)

// Quota says how ports are divided among backend instances.
type Quota uint8

const (
	// QuotaPerInstance: disjoint 8-port blocks per instance (B2–B5); the
	// linux profile's rules are written from the same plan (L1).
	QuotaPerInstance Quota = iota
	// QuotaShared: one inventory for all instances, taken on demand (G1,
	// R3).
	QuotaShared
)

// Timers says how a flow's release time follows its packets.
type Timers uint8

const (
	// TimersHold: an idle timer restarted by translated packets; a FIN or
	// a RST fixes the release time (B10–B12; G4, G5 with a half-open close
	// and a hold-down after a UDP idle release).
	TimersHold Timers = iota
	// TimersConntrack: Linux connection tracking's per-state timeouts,
	// restarted by every packet of the flow (L5–L7).
	TimersConntrack
	// TimersRFC: transitory and established TCP idle timers, and a UDP
	// mapping timer (R4, R5).
	TimersRFC
)

// Filtering is the inbound filtering behaviour of RFC 4787 (R2): which
// remote endpoints may send through a mapping.
type Filtering uint8

const (
	// FilterAddressAndPort: only remote IP:ports the mapping has sent to
	// (the default, and what every profile but rfc does).
	FilterAddressAndPort Filtering = iota
	// FilterAddress: any port of a remote IP the mapping has sent to.
	FilterAddress
	// FilterEndpointIndependent: any remote endpoint.
	FilterEndpointIndependent
)

var filteringNames = [...]string{"address-and-port", "address", "endpoint-independent"}

// String returns "address-and-port", "address" or "endpoint-independent".
func (f Filtering) String() string {
	if int(f) < len(filteringNames) {
		return filteringNames[f]
	}
	return fmt.Sprintf("filtering-%d", uint8(f))
}

// ParseFiltering parses a Filtering's String form.
func ParseFiltering(s string) (Filtering, error) {
	for i, n := range filteringNames {
		if s == n {
			return Filtering(i), nil
		}
	}
	return 0, &ConfigError{Field: "filtering", Value: s, Behavior: R2, Reason: "want endpoint-independent, address or address-and-port"}
}

// Tier is one row of the default allocation table (B3): pools of up to
// MaxPool instances get Ports ports per frontend IP each.
type Tier struct {
	MaxPool int
	Ports   int
}

// Gateway holds the azure-natgw profile's numbers (G1–G6).
type Gateway struct {
	// MaxFrontends is the most public IPs a gateway takes (G1).
	MaxFrontends int
	// HalfOpen closes a TCP flow that has had no answer this long after
	// its SYN (G4).
	HalfOpen time.Duration
	// UDPIdle is the fixed UDP idle timeout (G5).
	UDPIdle time.Duration
	// UDPHoldDown keeps a UDP flow's (public IP, port, destination) from
	// reuse this long after its idle release (G4).
	UDPHoldDown time.Duration
	// MaxPerDestination caps the concurrent flows of one (public IP,
	// destination IP:port) (G3).
	MaxPerDestination int
}

// RFCTimers holds the rfc profile's timers and switches (R4–R7).
type RFCTimers struct {
	// UDP is the UDP mapping timer (R4): at least 2 minutes.
	UDP time.Duration
	// InboundRefresh lets translated inbound packets refresh a mapping
	// (R4).
	InboundRefresh bool
	// TCPEstablished and TCPTransitory are the TCP idle timeouts (R5).
	TCPEstablished, TCPTransitory time.Duration
	// ICMP is the ICMP query mapping timer (R6).
	ICMP time.Duration
}

// Profile is the set of parameters and strategies that make one NAT's
// behaviour: the numbers of SEMANTICS.md and the few choices (mapping key,
// port choice, quotas, timers, filtering) in which profiles differ. The
// engine has no other knowledge of a particular NAT. Use AzureLB,
// AzureNATGW, RFC or Linux and change fields from there; a zero Profile in
// a Config means AzureLB().
type Profile struct {
	Name string
	// FirstPort and PortsPerIP give each frontend IP's SNAT range
	// FirstPort … FirstPort+PortsPerIP-1 (B1, C1, G1).
	FirstPort  uint16
	PortsPerIP int
	// BlockSize is the allocation granularity (B2).
	BlockSize int
	// Tiers is the default allocation table, smallest pool first (B3);
	// MaxInstancePorts caps an instance's default total.
	Tiers            []Tier
	MaxInstancePorts int
	// FINHold and RSTHold are the release delays after a FIN or a RST
	// (B10, B11; G4).
	FINHold, RSTHold time.Duration
	// IdleMin, IdleMax and IdleDefault bound the idle timeout (B12, G5);
	// an idle timeout must be a whole number of IdleStep.
	IdleMin, IdleMax, IdleDefault, IdleStep time.Duration

	Mapping    Mapping
	PortChoice PortChoice
	Quota      Quota
	Timers     Timers
	// Filtering applies to inbound packets (R2); the other profiles use
	// FilterAddressAndPort.
	Filtering Filtering
	// ResetUnknown answers a TCP packet with no flow, from either side,
	// with a RST to its sender (G6). A RST is never answered.
	ResetUnknown bool
	// SYNOnly creates TCP flows only on a SYN, whatever Config.Strict
	// says (G6: a gateway picks up nothing).
	SYNOnly bool
	// ICMPEcho translates ICMP echo, its identifier as the port (L10, R6);
	// otherwise ICMP is dropped (B15, G8).
	ICMPEcho bool
	// Fragments translates IP fragments as their datagram (L10);
	// otherwise they are dropped (B15, G8).
	Fragments bool
	// Hairpin delivers a packet from inside to a mapped public endpoint of
	// the NAT to its inside endpoint (R7).
	Hairpin bool
	// Seed seeds the random choices (G2; L2's probe offsets), so that a
	// run is reproducible.
	Seed uint64

	// Gateway, Conntrack and RFC are the numbers of the azure-natgw,
	// linux and rfc profiles; the other profiles leave them zero.
	Gateway   Gateway
	Conntrack Conntrack
	RFC       RFCTimers
}

// AzureLB returns the azure-lb profile of SEMANTICS.md, natcheck's default.
func AzureLB() Profile {
	return Profile{
		Name:       NameAzureLB,
		FirstPort:  1024, // C1: 1024–65023
		PortsPerIP: 64000,
		BlockSize:  8,
		Tiers: []Tier{
			{50, 1024}, {100, 512}, {200, 256}, {400, 128}, {800, 64}, {1000, 32},
		},
		MaxInstancePorts: 1024,
		FINHold:          240 * time.Second,
		RSTHold:          15 * time.Second,
		IdleMin:          4 * time.Minute,
		IdleMax:          120 * time.Minute,
		IdleDefault:      4 * time.Minute,
		IdleStep:         time.Minute,
	}
}

// AzureNATGW returns the azure-natgw profile of SEMANTICS.md (G1–G8):
// 64,512 ports per public IP shared by the subnet, a seeded random choice
// of IP and port, flows per 5-tuple, FIN and RST holds of 65 s and 16 s, a
// 30 s half-open close, a UDP hold-down of 65 s, RSTs for TCP packets with
// no flow.
func AzureNATGW() Profile {
	return Profile{
		Name:         NameAzureNATGW,
		FirstPort:    1024, // G1: 1024–65535
		PortsPerIP:   64512,
		BlockSize:    1,
		FINHold:      65 * time.Second,
		RSTHold:      16 * time.Second,
		IdleMin:      4 * time.Minute,
		IdleMax:      120 * time.Minute,
		IdleDefault:  4 * time.Minute,
		IdleStep:     time.Minute,
		Mapping:      MappingFiveTuple,
		PortChoice:   PortRandom,
		Quota:        QuotaShared,
		Timers:       TimersHold,
		ResetUnknown: true,
		SYNOnly:      true,
		Seed:         1,
		Gateway: Gateway{
			MaxFrontends:      16,
			HalfOpen:          30 * time.Second,
			UDPIdle:           4 * time.Minute,
			UDPHoldDown:       65 * time.Second,
			MaxPerDestination: 50000,
		},
	}
}

// RFC returns the rfc profile of SEMANTICS.md (R1–R7): endpoint-
// independent mapping, address-and-port-dependent filtering (change
// Filtering for the others), port parity and range kept, paired pooling,
// a 5-minute UDP timer refreshed both ways, TCP idle timers of 124 and 4
// minutes, ICMP echo with a 60 s timer, hairpinning.
func RFC() Profile {
	return Profile{
		Name:       NameRFC,
		FirstPort:  1,
		PortsPerIP: 65535,
		BlockSize:  1,
		Mapping:    MappingEndpointIndependent,
		PortChoice: PortParity,
		Quota:      QuotaShared,
		Timers:     TimersRFC,
		Filtering:  FilterAddressAndPort,
		ICMPEcho:   true,
		Hairpin:    true,
		RFC: RFCTimers{
			UDP:            5 * time.Minute,
			InboundRefresh: true,
			TCPEstablished: 124 * time.Minute,
			TCPTransitory:  4 * time.Minute,
			ICMP:           60 * time.Second,
		},
	}
}

// Linux returns the linux profile of SEMANTICS.md (L1–L11) with the
// connection-tracking numbers ct (DefaultConntrack(), or what
// ParseSysctl read from a device): per-instance rules written from the
// azure-lb allocation plan (L1), the source port kept where possible
// (L2), flows per 5-tuple (L3), per-state timeouts (L5–L7), ICMP echo and
// fragments translated (L10), invalid packets dropped (L11).
func Linux(ct Conntrack) Profile {
	p := AzureLB()
	p.Name = NameLinux
	p.FINHold, p.RSTHold = 0, 0
	p.IdleMin, p.IdleMax, p.IdleDefault, p.IdleStep = 0, 0, 0, 0
	p.Mapping = MappingFiveTuple
	p.PortChoice = PortPreserve
	p.Timers = TimersConntrack
	p.ICMPEcho = true
	p.Fragments = true
	p.Seed = 1
	p.Conntrack = ct
	return p
}

// ProfileByName returns the profile called name with its defaults (linux
// with DefaultConntrack()).
func ProfileByName(name string) (Profile, error) {
	switch name {
	case NameAzureLB, "":
		return AzureLB(), nil
	case NameAzureNATGW:
		return AzureNATGW(), nil
	case NameRFC:
		return RFC(), nil
	case NameLinux:
		return Linux(DefaultConntrack()), nil
	}
	return Profile{}, &ConfigError{Field: "profile", Value: name, Reason: "want azure-lb, azure-natgw, rfc or linux"}
}

// tierPorts returns the default table's per-IP value for a pool, or 0 when
// the pool is over the table.
func (p *Profile) tierPorts(pool int) int {
	for _, t := range p.Tiers {
		if pool <= t.MaxPool {
			return t.Ports
		}
	}
	return 0
}

// maxPool is the largest pool the default table admits.
func (p *Profile) maxPool() int {
	if len(p.Tiers) == 0 {
		return 0
	}
	return p.Tiers[len(p.Tiers)-1].MaxPool
}
