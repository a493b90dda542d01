// Package pace holds what every live device shares in driving a NAT on
// the wall clock: the profile clock (profile time t is wall time
// start + (t − Origin)/K, K the time scale), the rule that makes a late
// packet a harness error rather than a verdict, and natcheck's emulation
// of the two TCP endpoints of each flow (sequence and acknowledgement
// numbers that a stateful NAT finds in window).
//
// It imports the standard library, reference, specs (for Origin) and
// device/link.
package pace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// ErrLate is matched by the error of a packet that left later than its
// schedule allows (Clock's tolerance): the machine did not wake the
// harness in time, and what the NAT did with the packet says nothing about
// the behaviour a check is about.
var ErrLate = errors.New("packet left too late for its schedule")

// ErrBudget is matched by the error of a call whose profile time falls
// after the deadline of its context: the device does not start a wait it
// cannot finish.
var ErrBudget = errors.New("beyond the time budget")

// Jiffy bounds a kernel timer's granularity (HZ is at least 100).
const Jiffy = 10 * time.Millisecond

// Resolution is the smallest profile-time difference a device driven at
// scale k with send tolerance tol honours: k × (twice the tolerance + a
// jiffy). A packet may leave up to the tolerance late, and a kernel counts
// time in jiffies.
func Resolution(k int, tol time.Duration) time.Duration {
	return time.Duration(max(k, 1)) * (2*tol + Jiffy)
}

// MinTolerance and MaxTolerance bound the send tolerance Tolerance
// returns. The floor is what this class of machine (two virtual cores)
// needs even when quiet: with four checks at once, sends at real-time
// priority were seen waking up to 14 ms late and writes spending up to
// 4 ms in the kernel before the frame's timestamp (vCPU steal and the
// namespaces' softirqs), and 5 ms left a check in harness error after
// three attempts now and then. The ceiling keeps the resolution at scale
// 10 (500 ms) under the second of profile time that checks keep between
// their packets.
const (
	MinTolerance = 10 * time.Millisecond
	MaxTolerance = 20 * time.Millisecond
)

// Tolerance measures how late this machine wakes a precise send
// (link.WakeLateness, the 99th percentile of 50 waits) and returns twice
// that, within [MinTolerance, MaxTolerance]. A machine busier than that
// sends some packets late: harness errors, run again.
func Tolerance() time.Duration {
	return min(max(MinTolerance, 2*link.WakeLateness(50)), MaxTolerance)
}

// Clock is one session's profile clock. The zero Clock is not usable: call
// NewClock.
type Clock struct {
	scale     int
	tolerance time.Duration
	// name prefixes errors ("linux-nft").
	name  string
	start time.Time // wall time of specs.Origin, set by the first call
	last  time.Time // profile time of the last call
	// lastSent is the profile time of the last packet sent (sent tells
	// whether there was one).
	lastSent time.Time
	sent     bool
	// held is how much the profile clock was held back (late bursts).
	held time.Duration
}

// NewClock returns a clock at scale k (at least 1) whose packets may leave
// up to tolerance late.
func NewClock(name string, k int, tolerance time.Duration) *Clock {
	return &Clock{name: name, scale: max(k, 1), tolerance: tolerance, last: specs.Origin}
}

// Last is the profile time of the last call.
func (c *Clock) Last() time.Time { return c.last }

// Wall is the wall time of profile time t.
func (c *Clock) Wall(t time.Time) time.Time {
	return c.start.Add(c.held + t.Sub(specs.Origin)/time.Duration(c.scale))
}

// Profile is the profile time of wall time w.
func (c *Clock) Profile(w time.Time) time.Time {
	return specs.Origin.Add(w.Sub(c.start.Add(c.held)) * time.Duration(c.scale))
}

// Resolution is the clock's: Resolution(scale, tolerance).
func (c *Clock) Resolution() time.Duration { return Resolution(c.scale, c.tolerance) }

// Until waits for profile time t on the wall clock; with precise, it
// returns link.PreciseWindow before it (a packet is then sent at Wall(t)
// with Endpoint.SendAt, which waits the rest on a thread of its own). The
// clock's origin is the moment of its first call, not of the session's
// opening: a check may take a while to prepare its first packets.
func (c *Clock) Until(ctx context.Context, t time.Time, precise bool) error {
	if t.Before(c.last) {
		return fmt.Errorf("%s: time %v before %v: %w", c.name, t, c.last, reference.ErrTimeWentBackwards)
	}
	c.last = t
	if c.start.IsZero() {
		c.start = time.Now().Add(time.Millisecond)
	}
	w := c.Wall(t)
	if dl, ok := ctx.Deadline(); ok && w.After(dl) {
		return fmt.Errorf("%s: profile time +%v is %v of wall clock away: %w", c.name, t.Sub(specs.Origin), time.Until(w).Round(time.Second), ErrBudget)
	}
	d := time.Until(w)
	if precise {
		d -= link.PreciseWindow
	}
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Opens reports whether a packet at profile time t opens a new instant:
// it comes at least the resolution after the packet before. Packets closer
// together are a burst, whose interval the device cannot honour anyway.
func (c *Clock) Opens(t time.Time) bool { return !c.sent || t.Sub(c.lastSent) >= c.Resolution() }

// Sent records that the packet of profile time t left at wall time sent
// (the kernel's timestamp), opening a new instant or not (Opens, asked
// before the send), and returns the profile time it was realised at. A
// packet that opens an instant and left more than the tolerance late is
// an error matched by ErrLate; a late packet of a burst holds the profile
// clock back by its lateness, so that the next instant keeps its distance
// from the burst.
func (c *Clock) Sent(what string, t time.Time, opens bool, sent time.Time) (time.Time, error) {
	c.lastSent, c.sent = t, true
	if late := sent.Sub(c.Wall(t)); late > c.tolerance {
		if opens {
			return t, fmt.Errorf("%s: %s at +%v left %v late (tolerance %v, %v of profile time at scale %d): %w",
				c.name, what, t.Sub(specs.Origin), late.Round(time.Microsecond), c.tolerance, (late * time.Duration(c.scale)).Round(time.Microsecond), c.scale, ErrLate)
		}
		c.held += late
	}
	if r := c.Profile(sent); r.After(t) {
		return r, nil
	}
	return t, nil
}

// SendFrames puts frames (one packet: several for IP fragments) on e at
// the wall time of profile time t, the first one precisely (SendAt) when
// that time is still ahead, and returns the kernel's timestamp of the
// first.
func (c *Clock) SendFrames(e *link.Endpoint, t time.Time, frames [][]byte) (time.Time, error) {
	var first time.Time
	for i, f := range frames {
		var ts time.Time
		var err error
		if w := c.Wall(t); i == 0 && time.Until(w) > 0 {
			ts, err = e.SendAt(f, w)
		} else {
			ts, err = e.Send(f)
		}
		if err != nil {
			return first, fmt.Errorf("%s: %w", c.name, err)
		}
		if i == 0 {
			first = ts
		}
	}
	if first.IsZero() {
		first = time.Now()
	}
	return first, nil
}

// SetICMP sets the ICMP type and code of seg, an ICMP segment travelling
// in dir (nothing for another protocol): an echo request outbound, an echo
// reply inbound, or, when quote is not nil, an error (destination
// unreachable, port unreachable) quoting the packet quote names.
func SetICMP(seg *link.Segment, dir reference.Dir, quote *reference.Tuple) {
	switch {
	case seg.Tuple.Proto != reference.ICMP:
	case quote != nil:
		seg.ICMPType, seg.ICMPCode, seg.Quote = 3, 3, quote
	case dir == reference.Inbound:
		seg.ICMPType = 0
	default:
		seg.ICMPType = 8
	}
}

// Frames builds the frames of p from src to dst MAC as seg says (one, or
// two IP fragments for a Fragment packet: its header and 8 bytes of a
// 32-byte payload, then the rest), into buf.
func Frames(buf []byte, src, dst []byte, seg link.Segment, fragment bool) ([]byte, [][]byte) {
	if fragment {
		seg.Payload = make([]byte, 32)
	}
	buf = link.AppendFrame(buf[:0], src, dst, seg)
	if !fragment {
		return buf, [][]byte{buf}
	}
	l4 := map[reference.Proto]int{reference.TCP: 20, reference.UDP: 8, reference.ICMP: 8}[seg.Tuple.Proto]
	fr := link.SplitFragments(buf, l4+8)
	return buf, slices.Clone(fr[:])
}
