// Package scenario builds small captures that each show one behaviour of
// a NAT profile (natcheck gen): the 1,025th concurrent flow to one
// destination refused, a port coming back exactly 15 s after a RST, and
// so on. Each scenario carries the replay setup it is meant for and its
// claims: what SEMANTICS.md says must happen to which packet, written by
// hand from the document, so that a test can check a replay against them
// without sharing any logic with the engine. The captures are classic pcap
// files of Ethernet frames with nanosecond timestamps, every packet at its
// own time.
package scenario

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"

	"github.com/natcheck/natcheck/internal/pcapgen"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/regress"
)

// Scenario is one capture that shows one behaviour of a profile.
type Scenario struct {
	// Name is how natcheck gen names it: the profile, then what it shows.
	Name    string
	Profile string
	// Behaviors are the SEMANTICS.md items it shows, the main one first.
	Behaviors []reference.Behavior
	// Title says in one line what happens.
	Title string
	// Setup is the replay configuration the claims hold for.
	Setup regress.Setup
	build func(*builder)
}

// Claim is what must happen to one packet of a scenario's capture.
type Claim struct {
	// Packet is the packet's number in the capture, from 1.
	Packet int
	// Verdict is "opened" (translated, opening a new flow or mapping),
	// "translated" (on a flow that exists), "exhausted" (B9), "reset"
	// (answered with a RST toward its sender only, B14, G6), "hairpinned"
	// (sent back in to a mapped inside endpoint, R7) or "dropped:REASON"
	// with a drop reason of the events file ("dropped:unsolicited", ...).
	Verdict string
	// SamePortAs, if not 0, is a packet whose SNAT endpoint this one must
	// use too; OtherPortThan are packets whose endpoints it must not use.
	SamePortAs    int
	OtherPortThan []int
	// SameIPAs, if not 0, is a packet whose SNAT IP this one must use too.
	SameIPAs int
	// KeepsPort: the SNAT port is the packet's inside port (L2, R3).
	KeepsPort bool
	// PortIn, if not zero, is the range [lo, hi] the SNAT port must lie
	// in, where a profile chooses at random (L2, G1).
	PortIn [2]uint16
	// SameParity: the SNAT port has the inside port's parity and lies in
	// its range, 1–1023 or 1024–65535 (R3).
	SameParity bool
	// DeliveredTo and DeliveredFrom are, for a hairpinned packet, the
	// inside endpoint it reaches and the public endpoint it comes from
	// (R7).
	DeliveredTo, DeliveredFrom netip.AddrPort
	Behavior                   reference.Behavior
	// Why says, from SEMANTICS.md, why this is the verdict.
	Why string
}

// EventClaim is an event that must happen at an exact time, with no
// packet behind it (a timer: B10–B12 releases, B14 RSTs).
type EventClaim struct {
	// At is the time since the capture's first packet.
	At time.Duration
	// Kind is the events file's kind ("released", "reset-sent"); Release
	// the release reason for a release ("fin", "rst", "idle").
	Kind, Release string
	// Cites, if set, is the behaviour the event must cite.
	Cites reference.Behavior
	// Absent claims that no such event happens at At.
	Absent bool
	// Inside is the flow's inside endpoint.
	Inside   netip.AddrPort
	Behavior reference.Behavior
	Why      string
}

// Built is a scenario's packets and claims.
type Built struct {
	Start   time.Time
	Packets []reference.Packet
	Claims  []Claim
	Events  []EventClaim
}

// Build makes the scenario's packets and claims.
func (s *Scenario) Build() Built {
	b := &builder{Built: Built{Start: start}}
	s.build(b)
	return b.Built
}

// Write writes the scenario's capture to w.
func (s *Scenario) Write(w io.Writer) error {
	return pcapgen.WritePCAP(w, s.Build().Packets, nil)
}

// start is every scenario's first packet time: a fixed date, so that a
// capture is the same bytes on every machine.
var start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// The addresses of the scenarios: instances inside (10.0.0.0/24),
// servers outside (198.51.100.0/24), the frontend IP (203.0.113.1).
var (
	frontend  = netip.MustParseAddr("203.0.113.1")
	frontend2 = netip.MustParseAddr("203.0.113.2")
	inst0     = netip.MustParseAddr("10.0.0.1")
	inst1     = netip.MustParseAddr("10.0.0.2")
	// insideNet holds every inside address: none may appear as a source
	// on the outside (L11).
	insideNet = netip.MustParsePrefix("10.0.0.0/8")
)

func server(last byte, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, last}), port)
}

func inside(port uint16) netip.AddrPort { return netip.AddrPortFrom(inst0, port) }

func inside1(port uint16) netip.AddrPort { return netip.AddrPortFrom(inst1, port) }

func snat(port uint16) netip.AddrPort { return netip.AddrPortFrom(frontend, port) }

// builder collects a scenario's packets, each at its own time.
type builder struct {
	Built
}

// at is the packet time at offset d.
func (b *builder) at(d time.Duration) time.Time {
	t := b.Start.Add(d)
	if n := len(b.Packets); n > 0 && !t.After(b.Packets[n-1].Time) {
		panic(fmt.Sprintf("scenario: packet %d at %v is not after packet %d", n+1, d, n))
	}
	return t
}

// out adds a packet from an inside endpoint to a server and returns its
// number.
func (b *builder) out(d time.Duration, proto reference.Proto, from, to netip.AddrPort, flags reference.TCPFlags) int {
	b.Packets = append(b.Packets, reference.Packet{Time: b.at(d), Dir: reference.Outbound,
		Tuple: reference.Tuple{Proto: proto, Src: from, Dst: to}, Flags: flags})
	return len(b.Packets)
}

// reply adds a packet from a server to an inside endpoint, recorded on the
// inside, and returns its number.
func (b *builder) reply(d time.Duration, proto reference.Proto, from, to netip.AddrPort, flags reference.TCPFlags) int {
	b.Packets = append(b.Packets, reference.Packet{Time: b.at(d), Dir: reference.Inbound,
		Tuple: reference.Tuple{Proto: proto, Src: from, Dst: to}, Flags: flags})
	return len(b.Packets)
}

func (b *builder) claim(c Claim) { b.Claims = append(b.Claims, c) }

func (b *builder) event(c EventClaim) { b.Events = append(b.Events, c) }

// all is every scenario, by profile.
var all = slices.Concat(azureLB, linux, natgw, rfc)

// All returns every scenario, in the order natcheck gen --list shows.
func All() []*Scenario { return slices.Clone(all) }

// Lookup returns the scenario of that name.
func Lookup(name string) (*Scenario, bool) {
	for _, s := range all {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}

const (
	ms  = time.Millisecond
	sec = time.Second
)

// Shorthands for TCP flags.
const (
	syn    = reference.SYN
	synAck = reference.SYN | reference.ACK
	ack    = reference.ACK
	psh    = reference.PSH | reference.ACK
	finAck = reference.FIN | reference.ACK
	rst    = reference.RST
)

var tcp, udp, icmp = reference.TCP, reference.UDP, reference.ICMP

func setup(backends string) regress.Setup {
	return regress.Setup{Frontends: []netip.Addr{frontend}, Backends: backends}
}
