package pace

import (
	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/reference"
)

// TCP is natcheck's two endpoints of each TCP flow, by the flow's inside
// tuple (inside endpoint → remote): the next sequence numbers of the
// client (inside) and the server, so that every segment is in window and a
// stateful NAT judges its flags, not its numbers. The zero TCP is not
// usable: call NewTCP.
type TCP struct {
	flows map[reference.Tuple]*peers
	isn   uint32
}

type peers struct {
	cNxt, sNxt uint32
	cSet, sSet bool
}

// NewTCP returns endpoints with no flow.
func NewTCP() *TCP { return &TCP{flows: map[reference.Tuple]*peers{}, isn: 1_000_000} }

// Fill sets seg's sequence and acknowledgement numbers: seg travels in
// dir on the flow whose inside tuple is inside (ok false for an inbound
// segment of no known flow: any numbers). A SYN, or a sender's first
// segment, starts a new sequence; an ACK acknowledges the peer's next
// number; a RST from the server to a client that sent something
// acknowledges it.
func (c *TCP) Fill(seg *link.Segment, dir reference.Dir, inside reference.Tuple, ok bool) {
	if seg.Tuple.Proto != reference.TCP {
		return
	}
	if !ok {
		c.isn += 100_003
		seg.Seq = c.isn
		return
	}
	f := c.flows[inside]
	if f == nil {
		f = &peers{}
		c.flows[inside] = f
	}
	fl := seg.Flags
	my, peer, mySet, peerSet := &f.cNxt, &f.sNxt, &f.cSet, &f.sSet
	if dir == reference.Inbound {
		my, peer, mySet, peerSet = &f.sNxt, &f.cNxt, &f.sSet, &f.cSet
	}
	if fl.Has(reference.SYN) || !*mySet {
		c.isn += 1_000_003
		seg.Seq = c.isn
	} else {
		seg.Seq = *my
	}
	if fl.Has(reference.ACK) && *peerSet {
		seg.Ack = *peer
	} else if fl.Has(reference.RST) && *peerSet && dir == reference.Inbound {
		seg.Ack, seg.Flags = *peer, fl|reference.ACK
	}
}

// Advance moves the sender's next sequence number past seg, once the NAT
// forwarded it: a segment the NAT dropped never reached the peer, so the
// sender would send it again with the same number.
func (c *TCP) Advance(seg link.Segment, dir reference.Dir, inside reference.Tuple) {
	if seg.Tuple.Proto != reference.TCP {
		return
	}
	f := c.flows[inside]
	if f == nil {
		return
	}
	my, mySet := &f.cNxt, &f.cSet
	if dir == reference.Inbound {
		my, mySet = &f.sNxt, &f.sSet
	}
	*my, *mySet = seg.Seq+uint32(len(seg.Payload)), true
	if seg.Flags.Has(reference.SYN) {
		*my++
	}
	if seg.Flags.Has(reference.FIN) {
		*my++
	}
}
