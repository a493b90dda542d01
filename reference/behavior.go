package reference

import "fmt"

// Behavior is a numbered item of SEMANTICS.md: B1–B16 are documented
// behaviours, C1–C5 engine conventions where no source says. Reports, events
// and specs cite them by these IDs.
type Behavior uint8

// Behaviour IDs of SEMANTICS.md.
const (
	NoBehavior Behavior = iota
	B1                  // 64,000 SNAT ports per frontend IP and protocol
	B2                  // blocks of 8
	B3                  // default allocation table
	B4                  // manual allocation (outbound rule)
	B5                  // an instance's ports are its own
	B6                  // TCP reuse per destination IP:port
	B7                  // UDP port-restricted cone
	B8                  // inbound filtering
	B9                  // exhaustion
	B10                 // FIN: 240 s
	B11                 // RST: 15 s
	B12                 // idle timeout
	B13                 // release boundaries
	B14                 // silent expiry, tcpResetOnIdle
	B15                 // TCP and UDP only; fragments and ICMP dropped
	B16                 // pool growth and shrink
	C1                  // ports 1024–65023
	C2                  // placement in configuration order
	C3                  // lowest free port
	C4                  // a released slot is reusable at once
	C5                  // mid-stream pick-up
	behaviorEnd
)

// Behaviors returns every behaviour ID, B1 first.
func Behaviors() []Behavior {
	bs := make([]Behavior, 0, behaviorEnd-1)
	for b := B1; b < behaviorEnd; b++ {
		bs = append(bs, b)
	}
	return bs
}

var behaviorNames = [...]string{"", "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12",
	"B13", "B14", "B15", "B16", "C1", "C2", "C3", "C4", "C5"}

// String returns the ID as SEMANTICS.md writes it: "B9", "C3"; "" for
// NoBehavior. It does not allocate.
func (b Behavior) String() string {
	if int(b) < len(behaviorNames) {
		return behaviorNames[b]
	}
	return fmt.Sprintf("behavior-%d", uint8(b))
}

// Documented reports whether b is a documented behaviour (a B item) rather
// than an engine convention (a C item).
func (b Behavior) Documented() bool { return b >= B1 && b <= B16 }

// ParseBehavior parses "B9" or "c3".
func ParseBehavior(s string) (Behavior, error) {
	for b := B1; b < behaviorEnd; b++ {
		if len(s) == len(b.String()) && (s == b.String() || (s[0]|0x20) == (b.String()[0]|0x20) && s[1:] == b.String()[1:]) {
			return b, nil
		}
	}
	return NoBehavior, fmt.Errorf("parse behavior %q: not one of B1–B16, C1–C5", s)
}
