package reference

import (
	"fmt"
	"net/netip"
	"time"
)

// EventKind says what happened.
type EventKind uint8

// Event kinds.
const (
	// MappingCreated: a new flow took a SNAT port that carried no flow.
	MappingCreated EventKind = iota + 1
	// MappingReused: a new flow took a SNAT port that already carries
	// flows of the same instance to other destinations (B6, B7).
	MappingReused
	// Released: a flow ended and gave its slot back; Reason says why.
	Released
	// PacketDropped: a packet was dropped (or answered with a RST);
	// Drop says why.
	PacketDropped
	// Exhausted: an instance had no port for a new flow (B9): the new
	// flow's first packet was dropped. Drop is DropExhausted; no
	// PacketDropped event comes with it.
	Exhausted
	// PickedUp: a TCP flow was created by a packet that is not a SYN (C5).
	PickedUp
	// ConfigChanged: the pool changed and an instance's allocation with it
	// (B16).
	ConfigChanged
	// ResetSent: the NAT itself sent RSTs for a flow (B14): to both
	// endpoints when an established flow idled out with tcpResetOnIdle
	// (then a Released event follows), or to the sender of a late packet
	// of such a flow. Inside, Remote and SNAT name the flow.
	ResetSent
	// HairpinDelivered: an outbound packet to a public endpoint of the NAT was
	// sent back in to the inside endpoint mapped there (R7). Inside is the
	// sender, SNAT its public endpoint (the delivered packet's source),
	// Remote the inside endpoint it reached. Its events file kind is
	// "hairpinned".
	HairpinDelivered
)

var kindNames = [...]string{"", "mapping-created", "mapping-reused", "released", "dropped", "exhausted", "picked-up", "config", "reset-sent", "hairpinned"}

// String returns the kind as the events file writes it.
func (k EventKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("event-%d", uint8(k))
}

// ReleaseReason says why a flow was released.
type ReleaseReason uint8

// Release reasons.
const (
	NotReleased      ReleaseReason = iota
	ReleaseFIN                     // B10
	ReleaseRST                     // B11
	ReleaseIdle                    // B12
	ReleaseReclaimed               // B16
)

var releaseNames = [...]string{"", "fin", "rst", "idle", "reclaimed"}

// String returns "fin", "rst", "idle" or "reclaimed".
func (r ReleaseReason) String() string {
	if int(r) < len(releaseNames) {
		return releaseNames[r]
	}
	return fmt.Sprintf("release-%d", uint8(r))
}

// Event records one decision of the engine, with the behaviour that made it.
// Fields that do not apply to a kind are zero.
type Event struct {
	Time     time.Time
	Kind     EventKind
	Behavior Behavior
	// Instance is the backend instance's index, or -1.
	Instance int
	Proto    Proto
	// Inside is the backend's endpoint, Remote the server's, SNAT the
	// frontend IP:port the flow uses.
	Inside, Remote, SNAT netip.AddrPort
	Release              ReleaseReason
	Drop                 DropReason
	// Ports is, for ConfigChanged, the instance's new allocation.
	Ports int
}

// String formats the event for logs.
func (e Event) String() string {
	s := fmt.Sprintf("%s %s %s inst=%d %s %s->%s snat=%s", e.Time.UTC().Format(time.RFC3339Nano), e.Behavior, e.Kind, e.Instance, e.Proto, e.Inside, e.Remote, e.SNAT)
	if e.Release != NotReleased {
		s += " release=" + e.Release.String()
	}
	if e.Drop != NotDropped {
		s += " drop=" + e.Drop.String()
	}
	return s
}

// Observer receives events. It is called synchronously; it must not call
// back into the engine.
type Observer func(Event)
