package linuxnft

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/google/nftables"
	"github.com/gopacket/gopacket/layers"
	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"

	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/device/topology"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/frame"
	"github.com/natcheck/natcheck/specs"
)

// Options are how a device is driven: its time scale and timing
// tolerance.
type Options struct {
	// Scale K: profile time runs K times faster than the wall clock, and
	// every conntrack timer is divided by K. Zero means 1.
	Scale int
	// Tolerance is how late a packet may leave against its schedule. A
	// packet that opens a new instant (it comes at least the device's
	// resolution after the packet before) and leaves later than that is a
	// harness error (ErrLate): the interval between it and the packets
	// before it is not the one the check asked for. The packets of a
	// burst (closer to the packet before) may leave later: the profile
	// clock is held back by the difference, so that the next instant keeps
	// its distance from the burst. Zero means 5 ms.
	Tolerance time.Duration
	// Settle is how long to wait for a sent packet to come out of the NAT
	// or to be counted by one of its drop counters before the harness
	// gives up on it (ErrVanished). Zero means 250 ms.
	Settle time.Duration
}

func (o Options) withDefaults() Options {
	if o.Scale <= 0 {
		o.Scale = 1
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 5 * time.Millisecond
	}
	if o.Settle <= 0 {
		o.Settle = 250 * time.Millisecond
	}
	return o
}

// ErrLate is matched by the error of a Send whose packet left later than
// its schedule allows (Options.Tolerance): the machine did not wake the
// harness in time, and what the NAT did with the packet says nothing
// about the behaviour the check is about.
var ErrLate = errors.New("packet left too late for its schedule")

// ErrVanished is matched by the error of a Send whose packet neither came
// out of the NAT nor moved one of its drop counters within
// Options.Settle.
var ErrVanished = errors.New("packet neither forwarded nor counted as dropped")

// ErrBudget is matched by the error of a call whose profile time falls
// after the deadline of its context: the device does not start a wait it
// cannot finish.
var ErrBudget = errors.New("beyond the time budget")

// Name is the implementation's name in the matrix: "linux-nft".
const Name = "linux-nft"

// NAT is one running linux-nft device: a topology with the ruleset of one
// configuration. It implements specs.NAT.
type NAT struct {
	opt   Options
	topo  *topology.Topology
	nft   *nftables.Conn
	cfg   reference.Config
	plan  reference.Plan
	ct    *conntrack.Conn
	start time.Time // wall time of specs.Origin, set by the first call
	last  time.Time // profile time of the last call
	// lastSent is the profile time of the last packet sent (sent tells
	// whether there was one): a packet after it opens a new instant.
	lastSent time.Time
	sent     bool
	// held is how much the profile clock was held back (late bursts).
	held time.Duration
	// drops are the drop counters as last read.
	drops dropCounts

	flows map[reference.Tuple]*tcpFlow // by inside tuple (inside → server)
	// insideOf maps the outside tuple of a forwarded flow (SNAT → server)
	// to its inside tuple.
	insideOf map[reference.Tuple]reference.Tuple
	isn      uint32
	ipID     uint16
	buf      []byte
	dec      frame.Frame
	// late are the frames that came out after their packet was judged.
	late []string
}

var _ specs.NAT = (*NAT)(nil)

// tcpFlow is natcheck's two TCP endpoints of one flow: the next sequence
// numbers of the client (inside) and the server, so that every segment is
// in window and conntrack judges the flags, not the numbers.
type tcpFlow struct {
	cNxt, sNxt uint32
	cSet, sSet bool
}

// Open builds a topology and configures Linux SNAT in it for cfg.
func Open(ctx context.Context, cfg reference.Config, opt Options) (n *NAT, err error) {
	opt = opt.withDefaults()
	if cfg.TCPResetOnIdle {
		return nil, fmt.Errorf("linux-nft: tcpResetOnIdle: %w", specs.ErrUnsupported)
	}
	plan, err := reference.PlanFor(planConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("linux-nft: %w", err)
	}
	topo, err := topology.New()
	if err != nil {
		return nil, fmt.Errorf("linux-nft: %w", err)
	}
	n = &NAT{opt: opt, topo: topo, cfg: cfg, plan: plan, flows: map[reference.Tuple]*tcpFlow{}, insideOf: map[reference.Tuple]reference.Tuple{}, isn: 1_000_000}
	dev := n
	defer func() {
		if err != nil {
			dev.Close()
			n = nil
		}
	}()
	if err := topo.AddOutsideAddrs(cfg.Frontends); err != nil {
		return nil, fmt.Errorf("linux-nft: %w", err)
	}
	if err := topo.RouteInside(insidePrefixes(plan)); err != nil {
		return nil, fmt.Errorf("linux-nft: %w", err)
	}
	if err := topo.NAT.Do(func() error {
		t, err := readTimers()
		if err != nil {
			return err
		}
		loose := !cfg.Strict
		if cfg.Profile.Name == reference.NameLinux {
			// Judged against the linux profile: its numbers.
			t, loose = timersOf(cfg.Profile.Conntrack, t), loose && cfg.Profile.Conntrack.Loose
		}
		if t, err = t.scaled(opt.Scale); err != nil {
			return err
		}
		if err := t.write(); err != nil {
			return err
		}
		return topology.WriteSysctls(map[string]string{"net/netfilter/nf_conntrack_tcp_loose": map[bool]string{false: "0", true: "1"}[loose]})
	}); err != nil {
		return nil, fmt.Errorf("linux-nft: %w", err)
	}
	if n.nft, err = nftables.New(nftables.WithNetNSFd(topo.NAT.Fd()), nftables.AsLasting()); err != nil {
		return nil, fmt.Errorf("linux-nft: nftables: %w", err)
	}
	rs := ruleset{inIndex: uint32(topo.NATInside.Index), outIndex: uint32(topo.NATOutside.Index), frontends: cfg.Frontends, plan: plan, protocols: cfg.Protocols}
	if err := rs.install(n.nft); err != nil {
		return nil, fmt.Errorf("linux-nft: %w", err)
	}
	if n.ct, err = conntrack.Dial(&netlink.Config{NetNS: topo.NAT.Fd()}); err != nil {
		return nil, fmt.Errorf("linux-nft: conntrack netlink: %w", err)
	}
	if n.drops, err = n.readDrops(); err != nil {
		return nil, fmt.Errorf("linux-nft: %w", err)
	}
	n.last = specs.Origin
	return n, nil
}

// planConfig is cfg as the allocation planner takes it: the linux profile
// writes its rules from the azure-lb allocation plan (L1), with the
// profile's own allocation numbers.
func planConfig(cfg reference.Config) reference.Config {
	if cfg.Profile.Name != reference.NameLinux {
		return cfg
	}
	p := reference.AzureLB()
	lp := cfg.Profile
	p.FirstPort, p.PortsPerIP, p.BlockSize, p.Tiers, p.MaxInstancePorts = lp.FirstPort, lp.PortsPerIP, lp.BlockSize, lp.Tiers, lp.MaxInstancePorts
	cfg.Profile = p
	return cfg
}

// insidePrefixes covers the plan's inside addresses with /24s, routed
// toward the inside.
func insidePrefixes(plan reference.Plan) []netip.Prefix {
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
	for _, in := range plan.Instances {
		if !in.Inside.IsValid() {
			continue
		}
		p, _ := in.Inside.Prefix(24)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr().Less(out[j].Addr()) })
	return out
}

// wall is the wall time of profile time t.
func (n *NAT) wall(t time.Time) time.Time {
	return n.start.Add(n.held + t.Sub(specs.Origin)/time.Duration(n.opt.Scale))
}

// profile is the profile time of wall time w.
func (n *NAT) profile(w time.Time) time.Time {
	return specs.Origin.Add(w.Sub(n.start.Add(n.held)) * time.Duration(n.opt.Scale))
}

// sleepUntil waits for profile time t on the wall clock; with precise, it
// returns link.PreciseWindow before it (a packet is then sent at t with
// Endpoint.SendAt, which waits the rest on a thread of its own).
func (n *NAT) sleepUntil(ctx context.Context, t time.Time, precise bool) error {
	if t.Before(n.last) {
		return fmt.Errorf("linux-nft: time %v before %v: %w", t, n.last, reference.ErrTimeWentBackwards)
	}
	n.last = t
	if n.start.IsZero() {
		// Origin is the moment of the first call, not of Open's return: a
		// check may take a while to prepare its first packets.
		n.start = time.Now().Add(time.Millisecond)
	}
	w := n.wall(t)
	if dl, ok := ctx.Deadline(); ok && w.After(dl) {
		return fmt.Errorf("linux-nft: profile time +%v is %v of wall clock away: %w", t.Sub(specs.Origin), time.Until(w).Round(time.Second), ErrBudget)
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

// Send puts p on the inside (outbound) or the outside (inbound) link at
// its time and returns what came out: the packet as forwarded, or, when it
// was not, the drop counter that counted it. A packet that opens a new
// profile instant and leaves later than Options.Tolerance after its time
// is an error matched by ErrLate, one that neither comes out nor is
// counted within Options.Settle an error matched by ErrVanished: neither
// is a verdict.
func (n *NAT) Send(ctx context.Context, p reference.Packet) (specs.Delivery, error) {
	// A packet within the device's resolution of the one before belongs
	// to its burst: the device cannot honour a shorter interval anyway.
	opens := !n.sent || p.Time.Sub(n.lastSent) >= n.opt.resolution()
	if err := n.sleepUntil(ctx, p.Time, true); err != nil {
		return specs.Delivery{}, err
	}
	var d specs.Delivery
	// Anything queued now came out after its packet was judged.
	if err := n.collectLate(); err != nil {
		return d, err
	}
	from, to := n.topo.In, n.topo.Out
	dstMAC := n.topo.NATInside.MAC
	if p.Dir == reference.Inbound {
		from, to = n.topo.Out, n.topo.In
		dstMAC = n.topo.NATOutside.MAC
	}
	n.ipID++
	seg := link.Segment{Tuple: p.Tuple, Flags: p.Flags, ID: n.ipID}
	n.sequence(&seg, p.Dir)
	if p.Tuple.Proto == reference.ICMP {
		seg.ICMPType = 8
		if p.Dir == reference.Inbound {
			seg.ICMPType = 0
		}
	}
	if p.Fragment {
		seg.Payload = make([]byte, 32) // two fragments: header + 8 bytes, then the rest
	}
	n.buf = link.AppendFrame(n.buf[:0], from.MAC, dstMAC, seg)
	frames := [][]byte{n.buf}
	if p.Fragment {
		l4 := map[reference.Proto]int{reference.TCP: 20, reference.UDP: 8, reference.ICMP: 8}[p.Tuple.Proto]
		fr := link.SplitFragments(n.buf, l4+8)
		frames = fr[:]
	}
	var sent time.Time
	for i, f := range frames {
		var ts time.Time
		var err error
		if w := n.wall(p.Time); i == 0 && time.Until(w) > 0 {
			ts, err = from.SendAt(f, w)
		} else {
			ts, err = from.Send(f)
		}
		if err != nil {
			return d, fmt.Errorf("linux-nft: %w", err)
		}
		if i == 0 {
			sent = ts
		}
	}
	if sent.IsZero() {
		sent = time.Now()
	}
	n.lastSent, n.sent = p.Time, true
	if late := sent.Sub(n.wall(p.Time)); late > n.opt.Tolerance {
		if opens {
			return d, fmt.Errorf("linux-nft: %v at +%v left %v late (tolerance %v, %v of profile time at scale %d): %w",
				p.Tuple, p.Time.Sub(specs.Origin), late.Round(time.Microsecond), n.opt.Tolerance, (late * time.Duration(n.opt.Scale)).Round(time.Microsecond), n.opt.Scale, ErrLate)
		}
		n.held += late // a burst: hold the profile clock back by the time it took
	}
	realised := n.profile(sent)
	if realised.Before(p.Time) {
		realised = p.Time
	}

	out, err := n.readSide(to, p.Dir, realised)
	if err != nil {
		return d, err
	}
	if !hasProto(out, p.Tuple.Proto) {
		more, why, err := n.settle(to, p, realised)
		if err != nil {
			return d, err
		}
		out, d.Dropped = append(out, more...), why
	}
	for _, o := range out {
		if !d.Forwarded && o.Tuple.Proto == p.Tuple.Proto {
			d.Forwarded, d.Packet = true, o
			continue
		}
		d.Emitted = append(d.Emitted, o)
	}
	back, err := n.readSide(from, 1-p.Dir, realised)
	if err != nil {
		return d, err
	}
	d.Emitted = append(d.Emitted, back...)
	if d.Forwarded {
		n.learn(p, d.Packet)
		n.advance(seg, p.Dir)
	}
	return d, nil
}

func hasProto(ps []reference.Packet, proto reference.Proto) bool {
	for _, q := range ps {
		if q.Tuple.Proto == proto {
			return true
		}
	}
	return false
}

// settle waits for p, which has not come out on e yet, to come out or to
// be counted by a drop counter, and returns the frames that came out, or
// why it was dropped. veth delivers synchronously unless the kernel
// defers the work to its softirq thread (a busy machine): the frame then
// comes out a little later.
func (n *NAT) settle(e *link.Endpoint, p reference.Packet, at time.Time) ([]reference.Packet, string, error) {
	deadline := time.Now().Add(n.opt.Settle)
	for {
		c, err := n.readDrops()
		if err != nil {
			return nil, "", fmt.Errorf("linux-nft: %w", err)
		}
		why := c.since(n.drops)
		n.drops = c
		if why != "" {
			return nil, why, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, "", fmt.Errorf("linux-nft: %v at +%v: nothing after %v: %w", p.Tuple, p.Time.Sub(specs.Origin), n.opt.Settle, ErrVanished)
		}
		if _, err := e.WaitReadable(min(left, time.Millisecond)); err != nil {
			return nil, "", fmt.Errorf("linux-nft: %w", err)
		}
		out, err := n.readSide(e, p.Dir, at)
		if err != nil {
			return nil, "", err
		}
		if hasProto(out, p.Tuple.Proto) {
			return out, "", nil
		}
	}
}

// readSide decodes the frames queued on e as packets travelling in dir,
// without waiting. Fragments of one datagram come out as one packet with
// Fragment set.
func (n *NAT) readSide(e *link.Endpoint, dir reference.Dir, at time.Time) ([]reference.Packet, error) {
	var out []reference.Packet
	for {
		data, _, ok, err := e.Recv()
		if err != nil {
			return out, fmt.Errorf("linux-nft: %w", err)
		}
		if !ok {
			return out, nil
		}
		if err := frame.Decode(layers.LinkTypeEthernet, data, &n.dec); err != nil || n.dec.Network != frame.IPv4 {
			continue // not IPv4: nothing the NAT forwards for us
		}
		if n.dec.Fragment && n.dec.FragOffset != 0 {
			continue // the rest of a datagram whose first fragment is counted
		}
		pk := n.dec.Packet(at, dir)
		if n.dec.Proto == reference.ICMP && n.dec.Transport && n.dec.L4+8 <= len(data) {
			id := binary.BigEndian.Uint16(data[n.dec.L4+4:])
			if n.dec.ICMPType == 8 {
				pk.Tuple.Src = netip.AddrPortFrom(pk.Tuple.Src.Addr(), id)
			} else {
				pk.Tuple.Dst = netip.AddrPortFrom(pk.Tuple.Dst.Addr(), id)
			}
		}
		out = append(out, pk)
	}
}

// collectLate reads frames that arrived after their packet was judged and
// returns an error naming them: the machine was too slow for the device's
// synchronous delivery, and the verdicts cannot be trusted.
func (n *NAT) collectLate() error {
	for _, e := range []*link.Endpoint{n.topo.In, n.topo.Out} {
		ps, err := n.readSide(e, reference.Outbound, n.last)
		if err != nil {
			return err
		}
		for _, p := range ps {
			n.late = append(n.late, p.Tuple.String())
		}
	}
	if len(n.late) > 0 {
		return fmt.Errorf("linux-nft: %d frame(s) came out after their packet was judged dropped (first %s): the machine is too busy for this time scale", len(n.late), n.late[0])
	}
	return nil
}

// sequence fills the TCP sequence and acknowledgement numbers of seg from
// the flow's two endpoints and advances them.
func (n *NAT) sequence(seg *link.Segment, dir reference.Dir) {
	if seg.Tuple.Proto != reference.TCP {
		return
	}
	inside := seg.Tuple
	if dir == reference.Inbound {
		in, ok := n.insideOf[seg.Tuple.Reverse()]
		if !ok {
			n.isn += 100_003
			seg.Seq = n.isn
			return // unsolicited: any numbers
		}
		inside = in
	}
	f := n.flows[inside]
	if f == nil {
		f = &tcpFlow{}
		n.flows[inside] = f
	}
	fl := seg.Flags
	my, peer, mySet, peerSet := &f.cNxt, &f.sNxt, &f.cSet, &f.sSet
	if dir == reference.Inbound {
		my, peer, mySet, peerSet = &f.sNxt, &f.cNxt, &f.sSet, &f.cSet
	}
	if fl.Has(reference.SYN) || !*mySet {
		n.isn += 1_000_003
		seg.Seq = n.isn
	} else {
		seg.Seq = *my
	}
	if fl.Has(reference.ACK) && *peerSet {
		seg.Ack = *peer
	} else if fl.Has(reference.RST) && *peerSet && dir == reference.Inbound {
		seg.Ack, seg.Flags = *peer, fl|reference.ACK
	}
}

// advance moves the sender's next sequence number past seg, once the NAT
// forwarded it: a segment the NAT dropped never reached the peer, so the
// sender would send it again with the same number.
func (n *NAT) advance(seg link.Segment, dir reference.Dir) {
	if seg.Tuple.Proto != reference.TCP {
		return
	}
	inside := seg.Tuple
	if dir == reference.Inbound {
		in, ok := n.insideOf[seg.Tuple.Reverse()]
		if !ok {
			return
		}
		inside = in
	}
	f := n.flows[inside]
	if f == nil {
		return
	}
	my, mySet := &f.cNxt, &f.cSet
	if dir == reference.Inbound {
		my, mySet = &f.sNxt, &f.sSet
	}
	*my, *mySet = seg.Seq, true
	if seg.Flags.Has(reference.SYN) {
		*my++
	}
	if seg.Flags.Has(reference.FIN) {
		*my++
	}
}

// learn records the outside tuple of a forwarded outbound packet.
func (n *NAT) learn(sent, got reference.Packet) {
	if sent.Dir == reference.Outbound {
		n.insideOf[got.Tuple] = sent.Tuple
	}
}

// Wait lets profile time pass until t and returns what the NAT sent
// meanwhile (a Linux NAT sends nothing on its own; anything seen is
// evidence).
func (n *NAT) Wait(ctx context.Context, t time.Time) ([]reference.Packet, error) {
	if err := n.sleepUntil(ctx, t, false); err != nil {
		return nil, err
	}
	var out []reference.Packet
	for _, x := range []struct {
		e   *link.Endpoint
		dir reference.Dir
	}{{n.topo.Out, reference.Outbound}, {n.topo.In, reference.Inbound}} {
		ps, err := n.readSide(x.e, x.dir, t)
		if err != nil {
			return out, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// SetPool is not supported: the device's rules follow the plan it was
// opened with.
func (n *NAT) SetPool(context.Context, time.Time, []netip.Addr, int) error {
	return fmt.Errorf("linux-nft: pool change: %w", specs.ErrUnsupported)
}

// Plan is the allocation the device was configured from.
func (n *NAT) Plan() reference.Plan { return n.plan }

// Counters returns the packets each drop rule of the device dropped, by
// counter name (invalid, unsolicited, unsolicited-local, untranslated).
func (n *NAT) Counters() (map[string]uint64, error) { return readCounters(n.nft) }

// Close removes the device's topology.
func (n *NAT) Close() error {
	var errs []error
	if n.ct != nil {
		errs = append(errs, n.ct.Close())
	}
	if n.nft != nil {
		errs = append(errs, n.nft.CloseLasting())
	}
	if n.topo != nil {
		errs = append(errs, n.topo.Close())
	}
	return errors.Join(errs...)
}

// NSFd is the file descriptor of the device's nat namespace, for conntrack
// and nftables handles.
func (n *NAT) NSFd() int { return n.topo.NAT.Fd() }
