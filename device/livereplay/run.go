package livereplay

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/natcheck/natcheck/device/learn"
	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/device/linuxnft"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay"
	"github.com/natcheck/natcheck/replay/frame"
)

// Config says how to replay captures through the built-in device.
type Config struct {
	// Engine is the NAT's configuration: the profile the flows are judged
	// against, the frontends, the outbound rule, and the Backends in pool
	// order (the instances; the offline replay detects them).
	Engine reference.Config
	// Speed K: capture time runs K times faster than the wall clock and
	// the device's timers are divided by K (1 or more; it must divide
	// them into whole seconds). 0 means as fast as the machine goes: the
	// device keeps its timers, and verdicts that hang on time do not hold.
	Speed int
	// Deadline is how long a packet is waited for before it is judged
	// dropped (0: 100 ms).
	Deadline time.Duration
	// Output, if set, is the pcapng file of both links: every frame sent
	// and every frame that came out, with the kernel's timestamps.
	Output string
	// Events, if set, receives one JSON line per replayed packet.
	Events io.Writer
}

// outcome is what the device did with one replayed packet.
type outcome struct {
	state uint8
	out   reference.Tuple // as it came out
	// sent and came are the wall times it left and came out; behind is
	// how much later than its schedule it left.
	sent, came time.Time
	behind     time.Duration
	late       bool // it came out after it was judged dropped
}

// lateTolerance is how far behind its schedule a packet may leave and its
// flow still be judged: past it, an interval the flow's fate may hang on
// (a timer) is not the capture's.
const lateTolerance = 10 * time.Millisecond

// outcome states.
const (
	stNotSent   = iota // a reply with no learnt mapping (C8), or not replayed
	stInFlight         // sent, not matched yet
	stForwarded        // came out on the other link
	stDropped          // nothing came out by the deadline
)

// captured is a frame seen on one link, for the output capture.
type captured struct {
	at    time.Time
	iface int // 0 inside, 1 outside
	data  []byte
	pkt   int // the replayed packet it is, or -1
}

// run is one live replay.
type run struct {
	cfg      Config
	in       *input
	links    linuxnft.Links
	m        *learn.Matcher
	mu       sync.Mutex // guards m, outcomes, frames, others
	outcomes []outcome
	frames   []captured
	others   int64 // frames that came out and translate no packet
	lateSeen int64
	keep     bool // keep frames for the output
	// refusals and refusalN are the new flows refused per instance and
	// protocol (0 TCP, 1 UDP): the first, and how many.
	refusals map[[2]int]*replay.Mark
	refusalN map[[2]int]uint64
}

// Run replays files through a linux-nft device configured for
// cfg.Engine and returns what it did, judged flow by flow against the
// profile. It runs inside natcheck's sandbox.
func Run(ctx context.Context, files []string, cfg Config) (*Result, error) {
	if cfg.Deadline <= 0 {
		cfg.Deadline = 100 * time.Millisecond
	}
	if len(cfg.Engine.Backends) == 0 {
		return nil, fmt.Errorf("live replay: no backend instances")
	}
	instances := map[netip.Addr]int{}
	for i, b := range cfg.Engine.Backends {
		instances[b] = i
	}
	frontends := map[netip.Addr]bool{}
	for _, f := range cfg.Engine.Frontends {
		frontends[f] = true
	}
	in, err := load(files, instances, frontends)
	if err != nil {
		return nil, err
	}
	dev, err := linuxnft.Open(ctx, cfg.Engine, linuxnft.Options{Scale: max(cfg.Speed, 1)})
	if err != nil {
		return nil, fmt.Errorf("live replay: %w", err)
	}
	defer dev.Close()
	r := &run{cfg: cfg, in: in, links: dev.Links(), m: learn.New(learn.Fields{IPID: true}), outcomes: make([]outcome, len(in.packets)), keep: cfg.Output != ""}
	for _, e := range []*link.Endpoint{r.links.In, r.links.Out} {
		e.Drain()
		if err := e.CloseTap(); err != nil {
			return nil, fmt.Errorf("live replay: %w", err)
		}
	}
	before, err := dev.Drops()
	if err != nil {
		return nil, fmt.Errorf("live replay: %w", err)
	}
	ct, err := listenConntrack(dev.NSFd())
	if err != nil {
		return nil, fmt.Errorf("live replay: %w", err)
	}
	model, err := reference.New(cfg.Engine)
	if err != nil {
		ct.stop()
		return nil, fmt.Errorf("live replay: %w", err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, x := range []struct {
		e   *link.Endpoint
		dir reference.Dir
	}{{r.links.Out, reference.Outbound}, {r.links.In, reference.Inbound}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.receive(x.e, x.dir, 1-i, stop)
		}()
	}
	res := &Result{Speed: cfg.Speed, Deadline: cfg.Deadline}
	start := time.Now()
	sendErr := r.send(ctx, res, model)
	// Everything sent has had its deadline: what is still in flight is
	// dropped.
	time.Sleep(cfg.Deadline)
	r.mu.Lock()
	r.expire(time.Now())
	r.mu.Unlock()
	time.Sleep(cfg.Deadline) // a frame later than that is reported late
	close(stop)
	wg.Wait()
	res.Elapsed = time.Since(start)
	events, lost := ct.stop()
	after, derr := dev.Drops()
	for _, err := range append(errs, sendErr, derr) {
		if err != nil {
			return nil, fmt.Errorf("live replay: %w", err)
		}
	}
	r.finish(res, model, dev.Plan(), before, after, events, lost)
	if cfg.Output != "" {
		if err := r.writeCapture(cfg.Output); err != nil {
			return res, err
		}
	}
	if cfg.Events != nil {
		if err := r.writeEvents(cfg.Events, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// ethHeader writes an Ethernet header from src to dst for IPv4 into b[:14].
func ethHeader(b []byte, src, dst net.HardwareAddr) {
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
}

// send puts every packet on its link at its time, learning mappings for
// the replies, and runs the model alongside.
func (r *run) send(ctx context.Context, res *Result, model *reference.Engine) error {
	pk := r.in.packets
	if len(pk) == 0 {
		return nil
	}
	maxGap := r.maxGap()
	wallStart := time.Now().Add(time.Millisecond)
	first := pk[0].at
	var shortened time.Duration
	buf := make([]byte, 0, 65536)
	var f frame.Frame
	var emit []reference.Packet
	for i := range pk {
		p := &pk[i]
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if i > 0 {
			if gap := p.at.Sub(pk[i-1].at); gap > maxGap {
				res.Shortened = append(res.Shortened, Gap{At: pk[i-1].at, Length: gap, To: maxGap})
				shortened += gap - maxGap
			}
		}
		// The model, in capture time.
		mp := reference.Packet{Time: p.at, Tuple: p.tuple, Flags: p.flags, Fragment: p.frag}
		var v reference.Verdict
		var err error
		switch p.kind {
		case kindOutbound:
			mp.Dir = reference.Outbound
			v, emit, err = model.Process(mp, emit[:0])
		case kindReply:
			mp.Dir = reference.Inbound
			v, _, emit, err = model.ProcessReply(mp, emit[:0])
		default:
			mp.Dir = reference.Inbound
			v, emit, err = model.Process(mp, emit[:0])
		}
		if err != nil {
			return fmt.Errorf("model: %s packet %d: %w", r.in.files[p.file], p.number, err)
		}
		res.model = append(res.model, v)

		var sched time.Time
		if r.cfg.Speed > 0 {
			sched = wallStart.Add((p.at.Sub(first) - shortened) / time.Duration(r.cfg.Speed))
			if d := time.Until(sched); d > 2*time.Millisecond {
				time.Sleep(d)
			}
		}
		// The frame: the recorded IPv4 packet behind a new Ethernet
		// header; a reply goes to its flow's public endpoint.
		buf = append(buf[:0], make([]byte, 14)...)
		buf = append(buf, p.ip...)
		e, dir := r.links.In, reference.Outbound
		switch p.kind {
		case kindOutbound:
			ethHeader(buf, r.links.In.MAC, r.links.NATInside)
		default:
			e, dir = r.links.Out, reference.Inbound
			ethHeader(buf, r.links.Out.MAC, r.links.NATOutside)
		}
		tuple := p.tuple
		if p.kind == kindReply {
			pub, ok := r.publicOf(p.tuple.Reverse(), time.Now().Add(r.cfg.Deadline))
			if !ok {
				continue // no mapping learnt: a reply without a flow (C8)
			}
			if frame.Decode(layers.LinkTypeEthernet, buf, &f) != nil {
				continue
			}
			if err := frame.RewriteDest(buf, &f, pub); err != nil {
				continue
			}
			tuple.Dst = pub
		}
		s := learn.Sent{ID: uint64(i), Dir: dir, Tuple: tuple, Flags: p.flags, Seq: p.seq, IPID: p.ipid}
		if frame.Decode(layers.LinkTypeEthernet, buf, &f) == nil {
			s.Payload = learn.Hash(payload(buf, &f))
		}
		r.waitCollision(s)
		now := time.Now()
		s.At = now
		r.mu.Lock()
		r.m.Add(s)
		r.outcomes[i] = outcome{state: stInFlight, sent: now}
		if !sched.IsZero() {
			r.outcomes[i].behind = max(now.Sub(sched), 0)
			res.MaxLate = max(res.MaxLate, r.outcomes[i].behind)
		}
		if r.keep {
			r.frames = append(r.frames, captured{at: now, iface: map[reference.Dir]int{reference.Outbound: 0, reference.Inbound: 1}[dir], data: append([]byte(nil), buf...), pkt: i})
		}
		if i%64 == 0 {
			r.expire(now)
		}
		r.mu.Unlock()
		if err := e.Write(buf); err != nil {
			return err
		}
		res.Injected++
	}
	return nil
}

// maxGap is the longest idle gap replayed as it is: longer than every
// timer of the device (its ESTABLISHED timeout aside, which only a flow
// that lives through the gap would notice), by a second.
func (r *run) maxGap() time.Duration {
	ct := r.cfg.Engine.Profile.Conntrack
	if r.cfg.Engine.Profile.Name != reference.NameLinux {
		ct = reference.DefaultConntrack()
	}
	longest := max(ct.SynSent, ct.SynRecv, ct.FinWait, ct.CloseWait, ct.LastAck, ct.TimeWait, ct.Close, ct.Unacknowledged, ct.UDP, ct.UDPStream, ct.ICMP, ct.Established)
	return longest + time.Second
}

// publicOf waits, until deadline, for the mapping of the flow of inside
// tuple t to be learnt (its outbound packet may still be in flight).
func (r *run) publicOf(t reference.Tuple, deadline time.Time) (netip.AddrPort, bool) {
	for {
		r.mu.Lock()
		pub, ok := r.m.Public(t)
		pending := r.m.Pending(t)
		r.mu.Unlock()
		if ok || !pending || time.Now().After(deadline) {
			return pub, ok
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// waitCollision holds s back while a packet with its key is in flight.
func (r *run) waitCollision(s learn.Sent) {
	for {
		r.mu.Lock()
		c := r.m.Collides(s)
		if c {
			r.expire(time.Now())
		}
		r.mu.Unlock()
		if !c {
			return
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// expire judges dropped the packets in flight past the deadline. r.mu is
// held.
func (r *run) expire(now time.Time) {
	for _, s := range r.m.Expire(now.Add(-r.cfg.Deadline), nil) {
		r.outcomes[s.ID].state = stDropped
	}
}

// receive reads the frames that come out on e (travelling in dir) until
// stop, and matches them.
func (r *run) receive(e *link.Endpoint, dir reference.Dir, iface int, stop <-chan struct{}) error {
	buf := make([]byte, 65536)
	var f frame.Frame
	for {
		n, ts, err := e.RecvInto(buf)
		if err != nil {
			return err
		}
		if n == 0 {
			select {
			case <-stop:
				return nil
			default:
			}
			if _, err := e.WaitReadable(5 * time.Millisecond); err != nil {
				return err
			}
			continue
		}
		data := buf[:n]
		if frame.Decode(layers.LinkTypeEthernet, data, &f) != nil || f.Network != frame.IPv4 || (f.Fragment && f.FragOffset != 0) {
			continue
		}
		h := learn.Hash(payload(data, &f))
		r.mu.Lock()
		m, ok := r.m.Observe(dir, &f, h, ts)
		pkt := -1
		switch {
		case ok && m.Late:
			o := &r.outcomes[m.Sent.ID]
			o.late, o.came = true, ts
			r.lateSeen++
		case ok:
			pkt = int(m.Sent.ID)
			o := &r.outcomes[pkt]
			o.state, o.out, o.came = stForwarded, m.Out, ts
		default:
			r.others++
		}
		if r.keep {
			r.frames = append(r.frames, captured{at: ts, iface: iface, data: append([]byte(nil), data...), pkt: pkt})
		}
		r.mu.Unlock()
	}
}

// payload is the transport payload of a decoded frame.
func payload(data []byte, f *frame.Frame) []byte {
	start := f.End - f.PayloadLen
	if !f.Transport || start < f.L4 || start > len(data) || f.End > len(data) {
		return nil
	}
	return data[start:f.End]
}
