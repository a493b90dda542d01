package livereplay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/natcheck/natcheck/device/external"
	"github.com/natcheck/natcheck/device/learn"
	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/device/linuxnft"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay"
	"github.com/natcheck/natcheck/replay/frame"
)

// ExternalName is the Result's Device for a third-party device.
const ExternalName = "external"

// Config says how to replay captures through a live device.
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
	// Device, if set, is a third-party NAT attached with external.Attach
	// (its links, its link-layer addresses, the fields it keeps and its
	// latency, calibrated): the capture is replayed through it instead of
	// the built-in linux-nft, and Engine must state its configuration
	// (frontends, backends, allocation). Its timers are its own: Speed K
	// says they are K times shorter than the profile's. There is no
	// conntrack to check its mappings against, and no drop counters.
	Device *external.Device
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
	ext      *external.Device // a third-party device, or nil
	m        *learn.Matcher
	outcomes []outcome
	batch    *link.Batch // received frames
	rf       frame.Frame
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
	if cfg.Device != nil {
		return runExternal(ctx, in, cfg)
	}
	dev, err := linuxnft.Open(ctx, cfg.Engine, linuxnft.Options{Scale: max(cfg.Speed, 1)})
	if err != nil {
		return nil, fmt.Errorf("live replay: %w", err)
	}
	defer dev.Close()
	r := &run{cfg: cfg, in: in, links: dev.Links(), m: learn.New(learn.Fields{IPID: true}), outcomes: make([]outcome, len(in.packets)), keep: cfg.Output != "", batch: link.NewBatch(batchSize, 65536)}
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
	return r.run(ctx, dev.Plan(), ct, dev.Drops, before)
}

// runExternal replays in through the third-party device cfg.Device.
func runExternal(ctx context.Context, in *input, cfg Config) (*Result, error) {
	d := cfg.Device
	cal := d.Calibration()
	if cal.Fields.SeqShift {
		return nil, fmt.Errorf("live replay: the device shifts TCP sequence numbers, and replaying recorded replies through it (their acknowledgements shifted per flow) is not supported yet: %w", errors.ErrUnsupported)
	}
	plan, err := reference.PlanFor(cfg.Engine)
	if err != nil {
		return nil, fmt.Errorf("live replay: %w", err)
	}
	cfg.Deadline = max(cfg.Deadline, cal.Deadline)
	in0, out0 := d.Links()
	r := &run{cfg: cfg, in: in, links: linuxnft.Links{In: in0, Out: out0, NATInside: cal.InsideMAC, NATOutside: cal.OutsideMAC}, ext: d,
		m: learn.New(cal.Fields), outcomes: make([]outcome, len(in.packets)), keep: cfg.Output != "", batch: link.NewBatch(batchSize, 65536)}
	for _, e := range []*link.Endpoint{in0, out0} {
		// What is queued: ARP answered, the rest is not the replay's.
		for {
			data, _, ok, err := e.Recv()
			if err != nil {
				return nil, fmt.Errorf("live replay: %w", err)
			}
			if !ok {
				break
			}
			d.AnswerARP(e, data)
		}
		if err := e.CloseTap(); err != nil {
			return nil, fmt.Errorf("live replay: %w", err)
		}
	}
	return r.run(ctx, plan, nil, nil, nil)
}

// run replays r's packets; ct (nil for a third-party device) listens to
// the device's conntrack events, drops (nil likewise) reads its drop
// counters, before is what they were.
func (r *run) run(ctx context.Context, plan reference.Plan, ct *ctListener, drops func() (map[string]uint64, error), before map[string]uint64) (*Result, error) {
	cfg := r.cfg
	in := r.in
	model, err := reference.New(cfg.Engine)
	if err != nil {
		if ct != nil {
			ct.stop()
		}
		return nil, fmt.Errorf("live replay: %w", err)
	}

	res := &Result{Speed: cfg.Speed, Deadline: cfg.Deadline, Device: linuxnft.Name, model: make([]verdict, 0, len(in.packets))}
	if r.ext != nil {
		res.Device = ExternalName
	}
	start := time.Now()
	sendErr := r.send(ctx, res, model)
	res.Elapsed = time.Since(start)
	// Everything sent has its deadline: what is still in flight then is
	// dropped, and a frame later than another deadline is reported late.
	for _, wait := range []time.Duration{cfg.Deadline, cfg.Deadline} {
		for end := time.Now().Add(wait); time.Now().Before(end); {
			if _, err := r.links.Out.WaitReadable(time.Millisecond); err != nil && sendErr == nil {
				sendErr = err
			}
			if err := r.drain(); err != nil && sendErr == nil {
				sendErr = err
			}
		}
		r.expire(time.Now())
	}
	var (
		events []ctEvent
		lost   error
		after  map[string]uint64
		derr   error
	)
	if ct != nil {
		events, lost = ct.stop()
		res.Conntrack = true
	}
	if drops != nil {
		after, derr = drops()
	}
	for _, err := range []error{sendErr, derr} {
		if err != nil {
			return nil, fmt.Errorf("live replay: %w", err)
		}
	}
	r.finish(res, model, plan, before, after, events, lost)
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

// ethZero is room for an Ethernet header.
var ethZero [14]byte

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
		res.model = append(res.model, verdictOf(v))

		var sched time.Time
		if r.cfg.Speed > 0 {
			sched = wallStart.Add((p.at.Sub(first) - shortened) / time.Duration(r.cfg.Speed))
			if d := time.Until(sched); d > 2*time.Millisecond {
				if err := r.drain(); err != nil {
					return err
				}
				r.expire(time.Now())
				time.Sleep(time.Until(sched))
			}
		}
		// The frame: the recorded IPv4 packet behind a new Ethernet
		// header; a reply goes to its flow's public endpoint.
		buf = append(buf[:0], ethZero[:]...)
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
			s.Payload = learn.PayloadKey(dir, buf, &f)
		}
		r.waitCollision(s)
		now := time.Now()
		s.At = now
		r.m.Add(s)
		r.outcomes[i] = outcome{state: stInFlight, sent: now}
		if !sched.IsZero() {
			r.outcomes[i].behind = max(now.Sub(sched), 0)
			res.MaxLate = max(res.MaxLate, r.outcomes[i].behind)
		}
		if r.keep {
			iface := 0
			if dir == reference.Inbound {
				iface = 1
			}
			r.frames = append(r.frames, captured{at: now, iface: iface, data: append([]byte(nil), buf...), pkt: i})
		}
		if i%64 == 0 {
			r.expire(now)
		}
		if err := e.Write(buf); err != nil {
			return err
		}
		res.Injected++
		// veth delivers in the sender's system call (unless the kernel
		// defers it): what came out is queued on the other link, and read
		// a batch at a time (before a reply needs its flow's mapping, it
		// is read at once).
		if i%(batchSize/2) == 0 {
			if err := r.drain(); err != nil {
				return err
			}
		}
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

// publicOf waits, until deadline, for the outbound packets of the flow of
// inside tuple t still in flight to come out, and returns the mapping
// learnt for it: the flow's first packet teaches it, and a later one may
// change it (the flow expired and was opened again on another port).
func (r *run) publicOf(t reference.Tuple, deadline time.Time) (netip.AddrPort, bool) {
	for {
		pub, ok := r.m.Public(t)
		if !r.m.Pending(t) || time.Now().After(deadline) {
			return pub, ok
		}
		if _, err := r.links.Out.WaitReadable(time.Millisecond); err != nil {
			return pub, false
		}
		if r.drainSide(r.links.Out, reference.Outbound, false) != nil {
			return pub, false
		}
	}
}

// waitCollision holds s back while a packet with its key is in flight.
func (r *run) waitCollision(s learn.Sent) {
	for r.m.Collides(s) {
		e := r.links.Out
		if s.Dir == reference.Inbound {
			e = r.links.In
		}
		_, _ = e.WaitReadable(time.Millisecond)
		_ = r.drain()
		r.expire(time.Now())
	}
}

// expire judges dropped the packets in flight past the deadline, once
// what is queued on the links has been read.
func (r *run) expire(now time.Time) {
	_ = r.drain() // an error shows at the next read
	for _, s := range r.m.Expire(now.Add(-r.cfg.Deadline), nil) {
		r.outcomes[s.ID].state = stDropped
	}
}

// drain reads what is queued on both links.
func (r *run) drain() error {
	if err := r.drainSide(r.links.Out, reference.Outbound, false); err != nil {
		return err
	}
	return r.drainSide(r.links.In, reference.Inbound, false)
}

// drainSide reads the frames queued on e (travelling in dir: Outbound on
// the outside link), a batch at a time, until none is left or, with once,
// after one batch, and matches them.
func (r *run) drainSide(e *link.Endpoint, dir reference.Dir, once bool) error {
	iface := 1
	if dir == reference.Inbound {
		iface = 0
	}
	for {
		if err := e.RecvBatch(r.batch); err != nil {
			return err
		}
		for k, data := range r.batch.Frames {
			r.frame(data, r.batch.Times[k], dir, iface)
		}
		if once || len(r.batch.Frames) < batchSize {
			return nil
		}
	}
}

// batchSize is how many frames a receive takes at most.
const batchSize = 64

// frame matches one frame that came out at ts.
func (r *run) frame(data []byte, ts time.Time, dir reference.Dir, iface int) {
	if r.ext != nil {
		e := r.links.Out
		if iface == 0 {
			e = r.links.In
		}
		if r.ext.AnswerARP(e, data) {
			return
		}
	}
	f := &r.rf
	if frame.Decode(layers.LinkTypeEthernet, data, f) != nil || f.Network != frame.IPv4 || (f.Fragment && f.FragOffset != 0) {
		return
	}
	m, ok := r.m.Observe(dir, f, learn.PayloadKey(dir, data, f), ts)
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
}
