package reference

import "time"

// Mapping says which packets share one SNAT mapping, in RFC 4787 terms.
type Mapping uint8

const (
	// MappingPerDestination: a TCP mapping per (inside endpoint,
	// destination IP:port) and a UDP mapping per (inside endpoint,
	// destination IP): the azure-lb reuse rules B6 and B7.
	MappingPerDestination Mapping = iota
	// MappingEndpointIndependent: one mapping per inside endpoint (RFC 4787
	// REQ-1). Not implemented yet.
	MappingEndpointIndependent
)

// PortChoice says how a port is picked among the free ones.
type PortChoice uint8

const (
	// PortLowestFree: the first frontend IP in order, then its lowest
	// suitable port (C3).
	PortLowestFree PortChoice = iota
	// PortRandom: a seeded random choice (azure-natgw). Not implemented yet.
	PortRandom
)

// Quota says how ports are divided among backend instances.
type Quota uint8

const (
	// QuotaPerInstance: disjoint 8-port blocks per instance (B2–B5).
	QuotaPerInstance Quota = iota
	// QuotaShared: one inventory for all instances. Not implemented yet.
	QuotaShared
)

// Tier is one row of the default allocation table (B3): pools of up to
// MaxPool instances get Ports ports per frontend IP each.
type Tier struct {
	MaxPool int
	Ports   int
}

// Profile is the set of parameters and strategies that make one NAT's
// behaviour: the numbers of SEMANTICS.md and the few choices (mapping key,
// port choice, quotas) in which profiles differ. The engine has no other
// knowledge of a particular NAT.
type Profile struct {
	Name string
	// FirstPort and PortsPerIP give each frontend IP's SNAT range
	// FirstPort … FirstPort+PortsPerIP-1 (B1, C1).
	FirstPort  uint16
	PortsPerIP int
	// BlockSize is the allocation granularity (B2).
	BlockSize int
	// Tiers is the default allocation table, smallest pool first (B3);
	// MaxInstancePorts caps an instance's default total.
	Tiers            []Tier
	MaxInstancePorts int
	// FINHold and RSTHold are the release delays after a FIN or a RST
	// (B10, B11).
	FINHold, RSTHold time.Duration
	// IdleMin, IdleMax and IdleDefault bound the idle timeout (B12); an
	// idle timeout must be a whole number of IdleStep.
	IdleMin, IdleMax, IdleDefault, IdleStep time.Duration
	Mapping                                 Mapping
	PortChoice                              PortChoice
	Quota                                   Quota
}

// AzureLB returns the azure-lb profile of SEMANTICS.md, natcheck's default.
func AzureLB() Profile {
	return Profile{
		Name:       "azure-lb",
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
