package specs

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// NAT is one NAT under test, configured and running. Times are profile
// times: the virtual times of SEMANTICS.md, from the origin the check chose
// ([Origin]). An implementation in virtual time uses them as they are; one
// in wall-clock time maps them to its clock (origin + (t − Origin) × its
// time scale) and sleeps until then. Calls come in time order; a call with
// an earlier time than the previous one is an error.
//
// A NAT is used by one goroutine at a time.
type NAT interface {
	// Send puts p on the wire at p.Time: on the inside for an Outbound
	// packet, on the outside for an Inbound one. It returns what came out
	// of the NAT by then: the packet as forwarded, if it was, and the
	// packets the NAT itself sent (a RST answer, timer RSTs).
	Send(ctx context.Context, p reference.Packet) (Delivery, error)
	// Wait lets time pass until t and returns the packets the NAT sent
	// meanwhile.
	Wait(ctx context.Context, t time.Time) ([]reference.Packet, error)
	// SetPool changes the backend pool at time t (B16): backends extend or
	// truncate the configured list; poolSize 0 means len(backends).
	// Implementations without CapPoolChange return ErrUnsupported.
	SetPool(ctx context.Context, t time.Time, backends []netip.Addr, poolSize int) error
	// Plan is the allocation the NAT runs with now: per backend instance
	// its SNAT port ranges.
	Plan() reference.Plan
	// Close releases what the NAT holds (namespaces, sockets).
	Close() error
}

// Settler is a NAT whose verdicts can be undone by what it does later: a
// live device that judged a packet dropped because nothing had come out
// by a deadline, and whose frame comes out after all. At the end of a
// check (and before a check's earlier NAT is closed), Settle waits for
// anything still in flight and returns an error when a judgement did not
// hold: the check is then a harness error, not a verdict.
type Settler interface {
	Settle(ctx context.Context) error
}

// Delivery is what came out of the NAT for one sent packet.
type Delivery struct {
	// Forwarded is set when the packet went through; Packet is then the
	// packet as it left the NAT (direction unchanged, tuple translated).
	Forwarded bool
	Packet    reference.Packet
	// Dropped says why a packet that was not forwarded was dropped, when
	// the NAT says (a live device's drop counter: "conntrack
	// insert_failed"); empty otherwise.
	Dropped string
	// Emitted are the packets the NAT originated by then, in order, each
	// with the direction it travels (Inbound: toward the inside).
	Emitted []reference.Packet
}

// Origin is the profile time at which every check starts.
var Origin = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Capabilities are what an implementation can do or be made to do. A check
// lists those it needs; on an implementation that lacks one, the check is
// not run and reads "not checked (lacks …)": its own status, never a
// deviation or a pass.
type Capabilities uint32

// Capabilities.
const (
	// CapResetOnIdle: the NAT implements tcpResetOnIdle (B14).
	CapResetOnIdle Capabilities = 1 << iota
	// CapProtocolRule: an outbound rule can be limited to TCP or UDP (B15).
	CapProtocolRule
	// CapFragments: the harness can inject IP fragments (B15).
	CapFragments
	// CapICMP: the harness can send ICMP (B15).
	CapICMP
	// CapPoolChange: the pool can change while flows are live (B16).
	CapPoolChange
	// CapStrict: the NAT has a strict mode that creates flows only on SYN
	// (C5).
	CapStrict
	// CapLargeAllocation: the harness can open 64,000 flows from one
	// instance in reasonable time (B1, B4 edges).
	CapLargeAllocation
	// CapICMPErrors: the harness can send ICMP errors quoting a packet
	// (reference.Packet.Embedded) and read the quoted packet of one the
	// NAT forwards (R6, L10).
	CapICMPErrors

	capEnd
)

var capNames = [...]string{"reset-on-idle", "protocol-rule", "fragments", "icmp", "pool-change", "strict", "large-allocation", "icmp-errors"}

// AllCapabilities is every capability: the reference engine's set.
const AllCapabilities = capEnd - 1

// String returns the capabilities' names joined by ",".
func (c Capabilities) String() string {
	var parts []string
	for i, b := 0, Capabilities(1); b < capEnd; i, b = i+1, b<<1 {
		if c&b != 0 {
			parts = append(parts, capNames[i])
		}
	}
	return strings.Join(parts, ",")
}

// Impl is an implementation that can be put under test: a name, what it
// can do, what its profile predicts it does differently, and how to open a
// NAT for a configuration.
type Impl struct {
	// Name is what the matrix's column and the label "impl:"+Name say:
	// "reference", "mutant:…".
	Name string
	// Reference marks the reference engine: C items (engine conventions)
	// run only on it.
	Reference bool
	// RealTime marks an implementation that waits on the wall clock: its
	// Ginkgo specs carry the label "slow".
	RealTime bool
	// Caps is what it can do.
	Caps Capabilities
	// OneAtATime marks an implementation that holds one session per check
	// at a time (a third-party device shared by the checks): a check's
	// earlier NATs are closed when it opens the next. No check uses a NAT
	// after opening another.
	OneAtATime bool
	// Resolution is the smallest time difference it honours; boundary
	// checks probe at T − max(Resolution, 1 ms). Zero for virtual time.
	Resolution time.Duration
	// Profile is the behaviour the implementation runs (the zero Profile
	// means azure-lb): checks configure the NAT with it and read its
	// numbers (a linux device's conntrack timeouts).
	Profile reference.Profile
	// Known are the documented deviations of this implementation's
	// profile (SEMANTICS.md, "Known differences"), by behaviour: a check
	// of such a behaviour that fails is reported as deviating, with this
	// text.
	Known map[reference.Behavior]string
	// Open configures and starts a NAT; cfg.Profile is the Profile above,
	// as the check may have adjusted it (R2's filtering, say).
	// cfg.Observer is the implementation's own business. A configuration the NAT (or the
	// plan it is configured from) rejects is returned as an error matched
	// by errors.Is(err, reference.ErrConfig); one the NAT cannot be given
	// (a third-party device, whose configuration is its own) by
	// errors.Is(err, ErrUnsupported): the check then reads not checked.
	Open func(ctx context.Context, cfg reference.Config) (NAT, error)
}

// Label is the implementation's Ginkgo label, "impl:reference".
func (im Impl) Label() string { return "impl:" + im.Name }

// profile is the implementation's profile, azure-lb when unset.
func (im Impl) profile() reference.Profile {
	if im.Profile.Name == "" {
		return reference.AzureLB()
	}
	return im.Profile
}

// epsilon is the boundary offset T − epsilon of B13 checks.
func (im Impl) epsilon() time.Duration { return max(im.Resolution, time.Millisecond) }

// ErrUnsupported is matched by the error of a NAT operation the
// implementation does not offer (errors.Is(err, ErrUnsupported)).
var ErrUnsupported = errors.New("not supported by this implementation")
