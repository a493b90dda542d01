package external

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/natcheck/natcheck/device/learn"
	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/device/pace"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/frame"
	"github.com/natcheck/natcheck/specs"
)

// session is one check's NAT on a device: its clock, its TCP endpoints,
// its matcher, and the renaming between the check's addresses and the
// wire's.
type session struct {
	d       *Device
	release func()
	cfg     reference.Config
	plan    reference.Plan
	clock   *pace.Clock
	tcp     *pace.TCP
	m       *learn.Matcher
	// toWire and fromWire rename addresses: the check's frontends and
	// backends to the stated ones, its servers to fresh ones.
	toWire, fromWire map[netip.Addr]netip.Addr
	nextID           uint64
	closed           bool
	// late are packets judged dropped whose translation came out after
	// all: the verdicts that hung on them do not hold.
	late []learn.Match
	// lastDrop is when the last packet judged dropped was sent.
	lastDrop time.Time
}

// ErrLateFrame is matched by the error of a session whose packet, judged
// dropped after the device's deadline, came out after all: the machine or
// the device was slower than calibrated, and the verdict does not hold.
var ErrLateFrame = errors.New("a packet judged dropped came out after all")

var _ specs.NAT = (*session)(nil)

// open starts a session for a check's configuration, if it is the
// device's.
func (d *Device) open(cfg reference.Config, release func()) (*session, error) {
	if why := d.mismatch(cfg); why != "" {
		return nil, fmt.Errorf("the device's configuration is its own (%s): %w", why, specs.ErrUnsupported)
	}
	plan, _ := planOf(cfg)
	s := &session{d: d, release: release, cfg: cfg, plan: plan, clock: pace.NewClock("external", d.opt.Scale, d.opt.Tolerance), tcp: pace.NewTCP(),
		m: learn.New(d.cal.Fields), toWire: map[netip.Addr]netip.Addr{}, fromWire: map[netip.Addr]netip.Addr{}}
	for i, f := range cfg.Frontends {
		s.rename(f, d.opt.Stated.Frontends[i])
	}
	for i, b := range cfg.Backends {
		s.rename(b, d.opt.Stated.Backends[i])
	}
	d.drain()
	return s, nil
}

// mismatch says how cfg differs from the stated configuration, for the
// instances and frontends cfg uses; empty when it does not.
func (d *Device) mismatch(cfg reference.Config) string {
	st := d.opt.Stated
	switch {
	case len(cfg.Frontends) > len(st.Frontends):
		return fmt.Sprintf("%d frontend IPs, the device has %d", len(cfg.Frontends), len(st.Frontends))
	case len(cfg.Backends) > len(st.Backends):
		return fmt.Sprintf("%d backends, the device has %d", len(cfg.Backends), len(st.Backends))
	case cfg.IdleTimeout != st.IdleTimeout, cfg.TCPResetOnIdle != st.TCPResetOnIdle, cfg.Protocols != st.Protocols, cfg.Strict != st.Strict:
		return "another outbound rule (idle timeout, tcpResetOnIdle, protocols or strict mode)"
	}
	plan, err := planOf(cfg)
	if err != nil {
		return err.Error()
	}
	front := map[netip.Addr]netip.Addr{}
	for i, f := range cfg.Frontends {
		front[f] = st.Frontends[i]
	}
	for i := range cfg.Backends {
		if i >= len(plan.Instances) || i >= len(d.plan.Instances) {
			return "another pool"
		}
		want := d.plan.Instances[i].Ranges
		got := slices.Clone(plan.Instances[i].Ranges)
		for j := range got {
			got[j].IP = front[got[j].IP]
		}
		if !slices.Equal(got, want) {
			return fmt.Sprintf("instance %d with ports %v, the device's has %v", i, plan.Instances[i].Ranges, want)
		}
	}
	return ""
}

func (s *session) rename(check, wire netip.Addr) {
	s.toWire[check], s.fromWire[wire] = wire, check
}

// wire is the check's address a on the wire: a frontend or backend's
// stated address, a server's fresh one.
func (s *session) wire(a netip.Addr) netip.Addr {
	if w, ok := s.toWire[a]; ok {
		return w
	}
	d := s.d
	w := d.opt.Servers[d.next]
	d.next++
	if d.next == len(d.opt.Servers) {
		d.next = 1 // the first is the calibration's
	}
	s.rename(a, w)
	return w
}

func (s *session) wireTuple(t reference.Tuple) reference.Tuple {
	t.Src = netip.AddrPortFrom(s.wire(t.Src.Addr()), t.Src.Port())
	t.Dst = netip.AddrPortFrom(s.wire(t.Dst.Addr()), t.Dst.Port())
	return t
}

// checkPacket is p, seen on the wire, in the check's addresses: its tuple
// and the tuple an ICMP error quotes.
func (s *session) checkPacket(p reference.Packet) reference.Packet {
	p.Tuple = s.checkTuple(p.Tuple)
	if p.Embedded != nil {
		q := s.checkTuple(*p.Embedded)
		p.Embedded = &q
	}
	return p
}

func (s *session) checkTuple(t reference.Tuple) reference.Tuple {
	for _, ap := range []*netip.AddrPort{&t.Src, &t.Dst} {
		if c, ok := s.fromWire[ap.Addr()]; ok {
			*ap = netip.AddrPortFrom(c, ap.Port())
		}
	}
	return t
}

// Send puts p on its side of the device at its time and waits for what
// comes out: its translation, matched by package learn, or nothing until
// the calibrated deadline (dropped).
func (s *session) Send(ctx context.Context, p reference.Packet) (specs.Delivery, error) {
	opens := s.clock.Opens(p.Time)
	if err := s.clock.Until(ctx, p.Time, true); err != nil {
		return specs.Delivery{}, err
	}
	d := s.d
	var del specs.Delivery
	// What came out since the last packet: the device's own packets.
	early, err := s.read(nil)
	if err != nil {
		return del, err
	}
	if err := s.lateError(); err != nil {
		return del, err
	}
	del.Emitted = append(del.Emitted, early...)

	w := s.wireTuple(p.Tuple)
	from, dstMAC := d.in, d.cal.InsideMAC
	inside, known := w, true
	if p.Dir == reference.Inbound {
		from, dstMAC = d.out, d.cal.OutsideMAC
		inside, known = s.m.Inside(w.Reverse())
	}
	d.ipID++
	seg := link.Segment{Tuple: w, Flags: p.Flags, ID: d.ipID}
	s.tcp.Fill(&seg, p.Dir, inside, known)
	if p.Dir == reference.Inbound && known && seg.Flags.Has(reference.ACK) {
		// The server acknowledges the client's numbers as they left the
		// device: shifted by the flow's shift, when the device shifts them
		// (learnt from the SYN).
		if sh, ok := s.m.Shift(inside); ok {
			seg.Ack += sh
		}
	}
	var quote *reference.Tuple
	if p.Embedded != nil {
		q := s.wireTuple(*p.Embedded)
		quote = &q
	}
	pace.SetICMP(&seg, p.Dir, quote)
	var frames [][]byte
	d.buf, frames = pace.Frames(d.buf, from.MAC, dstMAC, seg, p.Fragment)
	var first frame.Frame
	if err := frame.Decode(layers.LinkTypeEthernet, frames[0], &first); err != nil {
		return del, fmt.Errorf("external: %w", err)
	}
	s.nextID++
	sent := learn.Sent{ID: s.nextID, Dir: p.Dir, Tuple: w, Flags: seg.Flags, Seq: seg.Seq, IPID: seg.ID, Payload: learn.PayloadKey(p.Dir, frames[0], &first)}
	if w.Proto != reference.TCP {
		sent.Flags = 0
	}
	ts, err := s.clock.SendFrames(from, p.Time, frames)
	if err != nil {
		return del, err
	}
	sent.At = ts
	s.m.Add(sent)
	realised, err := s.clock.Sent(w.String(), p.Time, opens, ts)
	if err != nil {
		return del, err
	}
	deadline := ts.Add(d.cal.Deadline)
	for time.Now().Before(deadline) && !del.Forwarded {
		e := d.out
		if p.Dir == reference.Inbound {
			e = d.in
		}
		if _, err := e.WaitReadable(time.Until(deadline)); err != nil {
			return del, fmt.Errorf("external: %w", err)
		}
		got, err := s.read(&del)
		if err != nil {
			return del, err
		}
		del.Emitted = append(del.Emitted, got...)
	}
	if !del.Forwarded {
		s.m.Expire(deadline.Add(time.Nanosecond), nil)
		s.lastDrop = ts
		del.Dropped = fmt.Sprintf("nothing came out within %v (ten times the device's latency)", d.cal.Deadline)
		return del, nil
	}
	del.Packet.Time = realised
	if known || p.Dir == reference.Outbound {
		s.tcp.Advance(seg, p.Dir, inside)
	}
	return del, nil
}

// read takes every frame queued on both links: ARP requests are answered,
// a frame that translates the packet in flight fills del (when del is not
// nil), and any other IPv4 frame is returned as a packet the device sent
// on its own.
func (s *session) read(del *specs.Delivery) ([]reference.Packet, error) {
	d := s.d
	var own []reference.Packet
	for _, x := range []struct {
		e   *link.Endpoint
		dir reference.Dir
	}{{d.out, reference.Outbound}, {d.in, reference.Inbound}} {
		for {
			data, ts, ok, err := x.e.Recv()
			if err != nil {
				return own, fmt.Errorf("external: %w", err)
			}
			if !ok {
				break
			}
			if a, isARP := link.ParseARP(data); isARP {
				d.answerARP(x.e, a)
				continue
			}
			if frame.Decode(layers.LinkTypeEthernet, data, &d.dec) != nil || d.dec.Network != frame.IPv4 || (d.dec.Fragment && d.dec.FragOffset != 0) {
				continue
			}
			f := &d.dec
			if m, ok := s.m.Observe(x.dir, f, learn.PayloadKey(x.dir, data, f), ts); ok {
				if m.Late || del == nil || del.Forwarded {
					s.late = append(s.late, m)
					continue
				}
				del.Forwarded = true
				del.Packet = s.checkPacket(f.Packet(ts, x.dir))
				continue
			}
			own = append(own, s.checkPacket(f.Packet(ts, x.dir)))
		}
	}
	return own, nil
}

// Wait lets profile time pass until t and returns what the device sent
// meanwhile.
func (s *session) Wait(ctx context.Context, t time.Time) ([]reference.Packet, error) {
	if err := s.clock.Until(ctx, t, false); err != nil {
		return nil, err
	}
	return s.read(nil)
}

// SetPool is not supported: a device's pool is its own.
func (s *session) SetPool(context.Context, time.Time, []netip.Addr, int) error {
	return fmt.Errorf("external: pool change: %w", specs.ErrUnsupported)
}

// Plan is the check's plan (the device's, for the instances it uses).
func (s *session) Plan() reference.Plan { return s.plan }

// Close frees the device for the next session.
func (s *session) Close() error {
	if !s.closed {
		s.closed = true
		s.release()
	}
	return nil
}

// drain discards what is queued on both links (answering ARP).
func (d *Device) drain() {
	for _, e := range []*link.Endpoint{d.in, d.out} {
		for {
			data, _, ok, err := e.Recv()
			if err != nil || !ok {
				break
			}
			if a, isARP := link.ParseARP(data); isARP {
				d.answerARP(e, a)
			}
		}
	}
}

// lateError is the error of the packets judged dropped that came out
// after all, if any.
func (s *session) lateError() error {
	if len(s.late) == 0 {
		return nil
	}
	m := s.late[0]
	return fmt.Errorf("external: %v came out %v after it was sent, past the %v deadline it was judged dropped at (%d such): %w",
		s.checkTuple(m.Sent.Tuple), m.Latency.Round(time.Microsecond), s.d.cal.Deadline, len(s.late), ErrLateFrame)
}

// Settle waits a deadline past the last packet judged dropped and says
// whether any of them came out after all (specs.Settler).
func (s *session) Settle(ctx context.Context) error {
	if !s.lastDrop.IsZero() {
		if d := time.Until(s.lastDrop.Add(2 * s.d.cal.Deadline)); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
	}
	if _, err := s.read(nil); err != nil {
		return err
	}
	return s.lateError()
}
