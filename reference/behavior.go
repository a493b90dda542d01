package reference

import "fmt"

// Behavior is a numbered item of SEMANTICS.md. Each item belongs to one
// profile: B1–B16 (documented behaviours) and C1–C9 (engine conventions
// where no source says) to azure-lb, L1–L11 to linux, G1–G8 to
// azure-natgw, R1–R7 to rfc. Reports, events and specs cite them by these
// IDs. The zero value, NoBehavior, is no item.
type Behavior uint8

// Behaviour IDs of SEMANTICS.md, profile by profile, each in its document
// order.
const (
	NoBehavior Behavior = iota

	// azure-lb: documented behaviours.
	B1  // 64,000 SNAT ports per frontend IP and protocol
	B2  // blocks of 8
	B3  // default allocation table
	B4  // manual allocation (outbound rule)
	B5  // an instance's ports are its own
	B6  // TCP reuse per destination IP:port
	B7  // UDP port-restricted cone
	B8  // inbound filtering
	B9  // exhaustion
	B10 // FIN: 240 s
	B11 // RST: 15 s
	B12 // idle timeout
	B13 // release boundaries
	B14 // silent expiry, tcpResetOnIdle
	B15 // TCP and UDP only; fragments and ICMP dropped
	B16 // pool growth and shrink

	// azure-lb: engine conventions.
	C1 // ports 1024–65023
	C2 // placement in configuration order
	C3 // lowest free port
	C4 // a released slot is reusable at once
	C5 // mid-stream pick-up
	C6 // "established" is a packet translated each way
	C7 // a released flow is remembered for one idle timeout
	C8 // replay: a reply without a flow is unsolicited, counted apart
	C9 // replay: one virtual clock

	// linux: a stock nftables/iptables SNAT.
	L1  // inventory: the rule's address range × port range
	L2  // source port kept, else hashed then random
	L3  // uniqueness per full 5-tuple
	L4  // exhaustion after bounded probing
	L5  // TCP per-state timeouts refreshed by every packet
	L6  // RST: CLOSE, or deleted at once when unanswered
	L7  // UDP timeout and stream timeout
	L8  // inbound on the exact reverse 5-tuple
	L9  // pick-up with tcp_loose
	L10 // ICMP echo and fragments translated
	L11 // invalid packets never leave with an inside address

	// azure-natgw: Azure NAT Gateway.
	G1 // inventory: 64,512 ports per IP, shared by the subnet
	G2 // random choice of IP and port
	G3 // reuse per destination IP:port
	G4 // hold-down after close; half-open close
	G5 // idle timers
	G6 // a RST for a packet with no flow
	G7 // inbound: replies of live flows only
	G8 // TCP and UDP only

	// rfc: the IETF behavioural requirements.
	R1 // endpoint-independent mapping
	R2 // configurable filtering
	R3 // port parity and range, paired pooling
	R4 // UDP mapping timer
	R5 // TCP timers
	R6 // ICMP query mappings and errors
	R7 // hairpinning

	behaviorEnd
)

// Profile names: the values of Profile.Name and of --profile.
const (
	NameAzureLB    = "azure-lb"
	NameAzureNATGW = "azure-natgw"
	NameRFC        = "rfc"
	NameLinux      = "linux"
)

// profileItems is each profile's run of IDs, in SEMANTICS.md order.
var profileItems = [...]struct {
	name        string
	first, last Behavior
}{
	{NameAzureLB, B1, C9},
	{NameAzureNATGW, G1, G8},
	{NameRFC, R1, R7},
	{NameLinux, L1, L11},
}

// ProfileNames returns the names of the profiles SEMANTICS.md numbers,
// azure-lb first.
func ProfileNames() []string {
	out := make([]string, len(profileItems))
	for i, p := range profileItems {
		out[i] = p.name
	}
	return out
}

// Behaviors returns every behaviour ID of every profile, B1 first, in
// SEMANTICS.md order (azure-lb, then linux, azure-natgw and rfc).
func Behaviors() []Behavior {
	bs := make([]Behavior, 0, behaviorEnd-1) // a capacity hint: mutants of it are equivalent
	for b := B1; b < behaviorEnd; b++ {
		bs = append(bs, b)
	}
	return bs
}

// BehaviorsOf returns the IDs of the profile called name in SEMANTICS.md
// order (azure-lb: B1–B16 then C1–C9), or nil for a name that is no
// profile.
func BehaviorsOf(name string) []Behavior {
	for _, p := range profileItems {
		if p.name == name {
			bs := make([]Behavior, 0, p.last-p.first+1) // a capacity hint: mutants of it are equivalent
			for b := p.first; b <= p.last; b++ {
				bs = append(bs, b)
			}
			return bs
		}
	}
	return nil
}

var behaviorNames = [...]string{"",
	"B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12", "B13", "B14", "B15", "B16",
	"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9",
	"L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8", "L9", "L10", "L11",
	"G1", "G2", "G3", "G4", "G5", "G6", "G7", "G8",
	"R1", "R2", "R3", "R4", "R5", "R6", "R7",
}

// The table of names must cover every ID: a compile-time check.
var _ = [1]struct{}{}[len(behaviorNames)-int(behaviorEnd)]

// String returns the ID as SEMANTICS.md writes it: "B9", "C3", "L4",
// "G6"; "" for NoBehavior. It does not allocate.
func (b Behavior) String() string {
	if int(b) < len(behaviorNames) {
		return behaviorNames[b]
	}
	return fmt.Sprintf("behavior-%d", uint8(b))
}

// Profile returns the name of the profile the item belongs to: "azure-lb"
// for B and C items, "linux" for L, "azure-natgw" for G, "rfc" for R; ""
// for NoBehavior.
func (b Behavior) Profile() string {
	for _, p := range profileItems {
		if b >= p.first && b <= p.last {
			return p.name
		}
	}
	return ""
}

// Documented reports whether b describes what a NAT does (a B, L, G or R
// item) rather than an engine convention where no source says (a C item,
// checked on the reference engine only).
func (b Behavior) Documented() bool { return b >= B1 && b < behaviorEnd && (b < C1 || b > C9) }

// ParseBehavior parses an ID as SEMANTICS.md writes it, in either case:
// "B9", "c3", "L10", "g6".
func ParseBehavior(s string) (Behavior, error) {
	if len(s) >= 2 {
		for b := B1; b < behaviorEnd; b++ {
			n := behaviorNames[b]
			if len(s) == len(n) && s[0]|0x20 == n[0]|0x20 && s[1:] == n[1:] {
				return b, nil
			}
		}
	}
	return NoBehavior, fmt.Errorf("parse behavior %q: not one of B1–B16, C1–C9, L1–L11, G1–G8, R1–R7", s)
}
