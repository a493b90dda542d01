package reference

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Protocols says which protocols an outbound rule carries (B15).
type Protocols uint8

const (
	// AllProtocols carries TCP and UDP. It is the zero value.
	AllProtocols Protocols = iota
	// TCPOnly carries TCP; UDP is dropped as unsupported (B15).
	TCPOnly
	// UDPOnly carries UDP; TCP is dropped as unsupported (B15).
	UDPOnly
)

// String returns "all", "tcp" or "udp".
func (p Protocols) String() string {
	switch p {
	case TCPOnly:
		return "tcp"
	case UDPOnly:
		return "udp"
	}
	return "all"
}

// ParseProtocols parses "all", "tcp" or "udp".
func ParseProtocols(s string) (Protocols, error) {
	switch s {
	case "all", "All", "":
		return AllProtocols, nil
	case "tcp", "TCP":
		return TCPOnly, nil
	case "udp", "UDP":
		return UDPOnly, nil
	}
	return 0, &ConfigError{Field: "protocol", Value: s, Behavior: B15, Reason: "want all, tcp or udp"}
}

func (p Protocols) carries(proto Proto) bool {
	switch p {
	case TCPOnly:
		return proto == TCP
	case UDPOnly:
		return proto == UDP
	}
	return proto == TCP || proto == UDP
}

// Config is one SNAT configuration: a load balancer's frontend IPs, its
// ordered backend pool and its outbound rule. Zero values of optional fields
// mean the profile's documented defaults.
type Config struct {
	// Profile is the NAT's behaviour; the zero Profile means AzureLB().
	Profile Profile
	// Frontends are the frontend public IPv4 addresses, in order (C2, C3).
	Frontends []netip.Addr
	// Backends are the backend instances' inside IPv4 addresses, in pool
	// order: the order fixes placement (C2).
	Backends []netip.Addr
	// PoolSize is the number of instances in the pool, at least
	// len(Backends); instances past len(Backends) hold ports but send
	// nothing. Zero means len(Backends).
	PoolSize int
	// PortsPerInstance is the outbound rule's per-instance total (B4);
	// zero means the default table (B3).
	PortsPerInstance int
	// IdleTimeout is the outbound rule's idle timeout (B12); zero means the
	// profile's default.
	IdleTimeout time.Duration
	// TCPResetOnIdle sends RSTs when an established TCP flow idles out
	// (B14).
	TCPResetOnIdle bool
	// Protocols limits the rule to TCP or UDP (B15).
	Protocols Protocols
	// Strict creates TCP flows only on a SYN; otherwise any TCP packet from
	// inside with no flow creates one (C5).
	Strict bool
	// Observer, if set, receives every event.
	Observer Observer
}

// ErrConfig is matched by every configuration error:
// errors.Is(err, ErrConfig).
var ErrConfig = errors.New("invalid configuration")

// ConfigError is a rejected configuration value: which field, the value,
// the behaviour whose rule it breaks and what is allowed.
type ConfigError struct {
	Field    string
	Value    any
	Behavior Behavior
	Reason   string
}

func (e *ConfigError) Error() string {
	v := e.Value
	if d, ok := v.(time.Duration); ok {
		v = FormatDuration(d)
	}
	s := fmt.Sprintf("config: %s %v: %s", e.Field, v, e.Reason)
	if e.Behavior != NoBehavior {
		s += " (" + e.Behavior.String() + ")"
	}
	return s
}

// Is makes errors.Is(err, ErrConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

// maxFrontends bounds the frontend IPs an engine takes: each costs the
// engine two 256 KB port-reference tables.
const maxFrontends = 1024

// normalize validates c and fills in defaults.
func (c Config) normalize() (Config, error) {
	if c.Profile.Name == "" {
		c.Profile = AzureLB()
	}
	p := &c.Profile
	if err := p.check(); err != nil {
		return c, err
	}
	inv := B1
	if p.Quota == QuotaShared {
		inv = G1
		if p.Name == NameRFC {
			inv = R3
		}
	}
	if err := p.validate(); err != nil {
		return c, err
	}
	if len(c.Frontends) == 0 {
		return c, &ConfigError{Field: "frontends", Value: "[]", Behavior: inv, Reason: "want at least one frontend IPv4 address"}
	}
	if limit := p.Gateway.MaxFrontends; limit > 0 && len(c.Frontends) > limit {
		return c, &ConfigError{Field: "frontends", Value: len(c.Frontends), Behavior: inv, Reason: fmt.Sprintf("want 1 to %d public IPs", limit)}
	}
	if len(c.Frontends) > maxFrontends {
		return c, &ConfigError{Field: "frontends", Value: len(c.Frontends), Reason: fmt.Sprintf("want at most %d frontend IPs", maxFrontends)}
	}
	if err := checkAddrs("frontend", c.Frontends); err != nil {
		return c, err
	}
	if err := checkAddrs("backend", c.Backends); err != nil {
		return c, err
	}
	for i, b := range c.Backends {
		if slices.Contains(c.Frontends, b) {
			return c, &ConfigError{Field: fmt.Sprintf("backend #%d", i+1), Value: b, Reason: "is also a frontend IP; a NAT's inside and outside addresses differ"}
		}
	}
	if c.PoolSize == 0 {
		c.PoolSize = len(c.Backends)
	}
	if c.PoolSize < 1 {
		return c, &ConfigError{Field: "pool size", Value: c.PoolSize, Reason: "want at least one backend instance"}
	}
	if c.PoolSize < len(c.Backends) {
		return c, &ConfigError{Field: "pool size", Value: c.PoolSize, Reason: fmt.Sprintf("smaller than the %d backends given", len(c.Backends))}
	}
	if p.Quota == QuotaShared {
		if c.PortsPerInstance != 0 {
			return c, &ConfigError{Field: "ports per instance", Value: c.PortsPerInstance, Behavior: inv,
				Reason: fmt.Sprintf("profile %s has no per-instance quota: every instance shares the frontend IPs' ports", p.Name)}
		}
	} else if err := checkAllocation(p, c.PoolSize, len(c.Frontends), c.PortsPerInstance); err != nil {
		return c, err
	}
	if p.Timers == TimersHold {
		idleID := B12
		if p.Name == NameAzureNATGW {
			idleID = G5
		}
		if c.IdleTimeout == 0 {
			c.IdleTimeout = p.IdleDefault
		}
		if c.IdleTimeout < p.IdleMin || c.IdleTimeout > p.IdleMax || c.IdleTimeout%p.IdleStep != 0 {
			return c, &ConfigError{Field: "idle timeout", Value: c.IdleTimeout, Behavior: idleID,
				Reason: fmt.Sprintf("want whole %s steps from %s to %s", FormatDuration(p.IdleStep), FormatDuration(p.IdleMin), FormatDuration(p.IdleMax))}
		}
	} else if c.IdleTimeout != 0 {
		return c, &ConfigError{Field: "idle timeout", Value: c.IdleTimeout,
			Reason: fmt.Sprintf("profile %s has no idle timeout setting: its timers are the profile's own (Conntrack, RFC)", p.Name)}
	}
	if c.TCPResetOnIdle && p.Name != NameAzureLB {
		return c, &ConfigError{Field: "tcp reset on idle", Value: true, Behavior: B14, Reason: fmt.Sprintf("an azure-lb outbound rule setting; profile %s has none", p.Name)}
	}
	if c.Protocols > UDPOnly {
		return c, &ConfigError{Field: "protocol", Value: c.Protocols, Behavior: B15, Reason: "want all, tcp or udp"}
	}
	if c.Protocols != AllProtocols && p.Quota == QuotaShared {
		return c, &ConfigError{Field: "protocol", Value: c.Protocols, Reason: fmt.Sprintf("an outbound rule setting; profile %s carries TCP and UDP", p.Name)}
	}
	return c, nil
}

// check validates what validate does not: a profile's strategies, and
// the timers of the linux and rfc profiles (R4, R5's minimums; every one
// within the engine's range of time).
func (p *Profile) check() error {
	bad := func(field string, v any, b Behavior, reason string) error {
		return &ConfigError{Field: "profile " + p.Name + ": " + field, Value: v, Behavior: b, Reason: reason}
	}
	if p.Mapping > MappingFiveTuple || p.PortChoice > PortParity || p.Quota > QuotaShared || p.Timers > TimersRFC || p.Filtering > FilterEndpointIndependent {
		return bad("strategy", p.Name, NoBehavior, "unknown mapping, port choice, quota, timers or filtering")
	}
	if p.PortChoice == PortParity && p.FirstPort != 1 {
		return bad("port range", p.FirstPort, R3, "port parity and range (R3) want the inventory to start at port 1")
	}
	ds := []time.Duration{p.Gateway.UDPIdle, p.Gateway.UDPHoldDown, p.Gateway.HalfOpen}
	switch p.Timers {
	case TimersConntrack:
		c := p.Conntrack
		ds = []time.Duration{c.SynSent, c.SynRecv, c.Established, c.FinWait, c.CloseWait, c.LastAck, c.TimeWait, c.Close, c.Unacknowledged, c.UDP, c.UDPStream, c.ICMP}
	case TimersRFC:
		t := p.RFC
		switch {
		case t.UDP < 2*time.Minute:
			return bad("UDP mapping timer", t.UDP, R4, "want at least 2 minutes")
		case t.TCPEstablished < 124*time.Minute:
			return bad("TCP established idle timeout", t.TCPEstablished, R5, "want at least 124 minutes")
		case t.TCPTransitory < 4*time.Minute:
			return bad("TCP transitory idle timeout", t.TCPTransitory, R5, "want at least 4 minutes")
		case p.ICMPEcho && t.ICMP < time.Minute:
			return bad("ICMP query timer", t.ICMP, R6, "want at least 60 s")
		}
		ds = []time.Duration{t.UDP, t.TCPEstablished, t.TCPTransitory, t.ICMP}
	}
	for _, d := range ds {
		if d < 0 || d > maxHold {
			return bad("timer", d, NoBehavior, fmt.Sprintf("want 0 to %v", maxHold))
		}
	}
	return nil
}

func checkAddrs(what string, addrs []netip.Addr) error {
	seen := make(map[netip.Addr]bool, len(addrs))
	for i, a := range addrs {
		if !a.Is4() {
			return &ConfigError{Field: fmt.Sprintf("%s #%d", what, i+1), Value: a, Reason: "want an IPv4 address"}
		}
		if seen[a] {
			return &ConfigError{Field: fmt.Sprintf("%s #%d", what, i+1), Value: a, Reason: "listed twice"}
		}
		seen[a] = true
	}
	return nil
}

// checkAllocation applies B2–B4 to a pool of n instances on k frontend IPs.
func checkAllocation(p *Profile, n, k, perInstance int) error {
	if perInstance == 0 {
		if n > p.maxPool() {
			return &ConfigError{Field: "pool size", Value: n, Behavior: B3,
				Reason: fmt.Sprintf("default allocation covers pools of 1 to %d; set ports per instance (an outbound rule) for a larger pool", p.maxPool())}
		}
		return nil
	}
	if perInstance%p.BlockSize != 0 {
		return &ConfigError{Field: "ports per instance", Value: perInstance, Behavior: B2,
			Reason: fmt.Sprintf("want a multiple of %d (ports are handed out in blocks of %d)", p.BlockSize, p.BlockSize)}
	}
	if perInstance < p.BlockSize || perInstance > p.PortsPerIP {
		return &ConfigError{Field: "ports per instance", Value: perInstance, Behavior: B4,
			Reason: fmt.Sprintf("want %d to %d (0 for the default table)", p.BlockSize, p.PortsPerIP)}
	}
	if n*perInstance > k*p.PortsPerIP {
		return &ConfigError{Field: "ports per instance", Value: perInstance, Behavior: B4,
			Reason: fmt.Sprintf("%d instances × %d ports = %d exceeds %d frontend IP(s) × %d = %d; at most %d per instance",
				n, perInstance, n*perInstance, k, p.PortsPerIP, k*p.PortsPerIP, maxPerInstance(p, n, k))}
	}
	return nil
}

// maxPerInstance is the usual sizing of B4: floor(k × ports per IP / n),
// rounded down to a whole block.
func maxPerInstance(p *Profile, n, k int) int {
	v := k * p.PortsPerIP / n
	v -= v % p.BlockSize
	return min(v, p.PortsPerIP)
}

// instanceTarget is each instance's total for a pool of n on k IPs.
func instanceTarget(p *Profile, n, k, perInstance int) int {
	if perInstance != 0 {
		return perInstance
	}
	return min(p.tierPorts(n)*k, p.MaxInstancePorts)
}

// FormatDuration writes d as reports and errors say it: "4 min", "15 s",
// "1 h 30 min", "1.5 s", "250 ms", "0 s"; the largest units first, zero
// parts left out, and a fraction only on the last unit.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0 s"
	}
	sign := ""
	if d < 0 { // equivalent mutant: "<" → "<=" (0 returned above)
		sign, d = "-", -d
	}
	if d < time.Second {
		// Equivalent mutant: "%" → "*" sends whole milliseconds to the
		// FormatFloat branch, which writes them the same.
		if d%time.Millisecond == 0 {
			return sign + strconv.FormatInt(int64(d/time.Millisecond), 10) + " ms"
		}
		return sign + strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64) + " ms"
	}
	var parts []string
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "min"}} {
		if d >= u.d {
			parts = append(parts, strconv.FormatInt(int64(d/u.d), 10)+" "+u.name)
			d %= u.d
		}
	}
	if d > 0 {
		parts = append(parts, strconv.FormatFloat(d.Seconds(), 'f', -1, 64)+" s")
	}
	out := sign + parts[0]
	for _, p := range parts[1:] {
		out += " " + p
	}
	return out
}
