package linuxnft

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"time"

	"github.com/google/nftables"
	"github.com/gopacket/gopacket/layers"
	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"

	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/device/pace"
	"github.com/natcheck/natcheck/device/sandbox"
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
	// its distance from the burst. Zero means pace.MinTolerance.
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
		o.Tolerance = pace.MinTolerance
	}
	if o.Settle <= 0 {
		o.Settle = 250 * time.Millisecond
	}
	return o
}

// ErrLate is matched by the error of a Send whose packet left later than
// its schedule allows (Options.Tolerance): pace.ErrLate.
var ErrLate = pace.ErrLate

// ErrVanished is matched by the error of a Send whose packet neither came
// out of the NAT nor moved one of its drop counters within
// Options.Settle.
var ErrVanished = errors.New("packet neither forwarded nor counted as dropped")

// ErrBudget is matched by the error of a call whose profile time falls
// after the deadline of its context: pace.ErrBudget.
var ErrBudget = pace.ErrBudget

// Name is the implementation's name in the matrix: "linux-nft".
const Name = "linux-nft"

// NAT is one running linux-nft device: a topology with the ruleset of one
// configuration. It implements specs.NAT.
type NAT struct {
	opt  Options
	topo *topology.Topology
	nft  *nftables.Conn
	cfg  reference.Config
	plan reference.Plan
	// planner is natcheck's engine, carrying no traffic: the allocation
	// plan after a pool change is its (B16).
	planner *reference.Engine
	ct      *conntrack.Conn
	clock   *pace.Clock
	tcp     *pace.TCP
	// drops are the drop counters as last read.
	drops dropCounts
	// insideOf maps the outside tuple of a forwarded flow (SNAT → server)
	// to its inside tuple.
	insideOf map[reference.Tuple]reference.Tuple
	ipID     uint16
	buf      []byte
	dec      frame.Frame
	// late are the frames that came out after their packet was judged.
	late []string
}

var _ specs.NAT = (*NAT)(nil)

// Open builds a topology and configures Linux SNAT in it for cfg.
func Open(ctx context.Context, cfg reference.Config, opt Options) (n *NAT, err error) {
	opt = opt.withDefaults()
	if cfg.TCPResetOnIdle {
		return nil, fmt.Errorf("linux-nft: tcpResetOnIdle: %w", specs.ErrUnsupported)
	}
	planner, err := reference.New(planConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("linux-nft: %w", err)
	}
	plan := planner.Plan()
	topo, err := topology.New()
	if err != nil {
		return nil, fmt.Errorf("linux-nft: %w", err)
	}
	n = &NAT{opt: opt, topo: topo, cfg: cfg, plan: plan, planner: planner, clock: pace.NewClock(Name, opt.Scale, opt.Tolerance), tcp: pace.NewTCP(), insideOf: map[reference.Tuple]reference.Tuple{}}
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
	if n.nft, err = install(topo.NAT, topo.NATInside.Index, topo.NATOutside.Index, cfg, plan, opt.Scale); err != nil {
		return nil, err
	}
	if n.ct, err = conntrack.Dial(&netlink.Config{NetNS: topo.NAT.Fd()}); err != nil {
		return nil, fmt.Errorf("linux-nft: conntrack netlink: %w", err)
	}
	if n.drops, err = n.readDrops(); err != nil {
		return nil, fmt.Errorf("linux-nft: %w", err)
	}
	return n, nil
}

// Rules are a network namespace configured as linux-nft configures its
// nat namespace (Install). Close removes nothing (the namespace goes with
// its owner); it closes the netlink connection.
type Rules struct {
	nft  *nftables.Conn
	plan reference.Plan
}

// Install configures namespace ns, whose interfaces of index inIndex and
// outIndex face the inside and the outside, as the linux-nft device
// configures its nat namespace for cfg at time scale k: conntrack timers
// divided by k, tcp_loose, one SNAT rule per instance and protocol from
// the allocation plan, the drop rules and their counters. The namespace
// must route (forwarding on, addresses or neighbours): a stand-in for a
// third-party device.
func Install(ns *sandbox.Namespace, inIndex, outIndex int, cfg reference.Config, k int) (*Rules, error) {
	plan, err := reference.PlanFor(planConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("linux-nft: %w", err)
	}
	nft, err := install(ns, inIndex, outIndex, cfg, plan, max(k, 1))
	if err != nil {
		return nil, err
	}
	return &Rules{nft: nft, plan: plan}, nil
}

// Plan is the allocation the rules were written from.
func (r *Rules) Plan() reference.Plan { return r.plan }

// Close closes the rules' netlink connection.
func (r *Rules) Close() error { return r.nft.CloseLasting() }

// install writes the timers and the ruleset for cfg and plan into ns.
func install(ns *sandbox.Namespace, inIndex, outIndex int, cfg reference.Config, plan reference.Plan, k int) (*nftables.Conn, error) {
	if err := ns.Do(func() error {
		t, err := readTimers()
		if err != nil {
			return err
		}
		loose := !cfg.Strict
		if cfg.Profile.Name == reference.NameLinux {
			// Judged against the linux profile: its numbers.
			t, loose = timersOf(cfg.Profile.Conntrack, t), loose && cfg.Profile.Conntrack.Loose
		}
		if t, err = t.scaled(k); err != nil {
			return err
		}
		if err := t.write(); err != nil {
			return err
		}
		return topology.WriteSysctls(map[string]string{"net/netfilter/nf_conntrack_tcp_loose": map[bool]string{false: "0", true: "1"}[loose]})
	}); err != nil {
		return nil, fmt.Errorf("linux-nft: %w", err)
	}
	nft, err := nftables.New(nftables.WithNetNSFd(ns.Fd()), nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("linux-nft: nftables: %w", err)
	}
	rs := ruleset{inIndex: uint32(inIndex), outIndex: uint32(outIndex), frontends: cfg.Frontends, plan: plan, protocols: cfg.Protocols}
	if err := rs.install(nft); err != nil {
		nft.CloseLasting()
		return nil, fmt.Errorf("linux-nft: %w", err)
	}
	return nft, nil
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

// Send puts p on the inside (outbound) or the outside (inbound) link at
// its time and returns what came out: the packet as forwarded, or, when it
// was not, the drop counter that counted it. A packet that opens a new
// profile instant and leaves later than Options.Tolerance after its time
// is an error matched by ErrLate, one that neither comes out nor is
// counted within Options.Settle an error matched by ErrVanished: neither
// is a verdict.
func (n *NAT) Send(ctx context.Context, p reference.Packet) (specs.Delivery, error) {
	opens := n.clock.Opens(p.Time)
	if err := n.clock.Until(ctx, p.Time, true); err != nil {
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
	inside, known := n.insideTuple(p)
	n.tcp.Fill(&seg, p.Dir, inside, known)
	pace.SetICMP(&seg, p.Dir, p.Embedded)
	var frames [][]byte
	n.buf, frames = pace.Frames(n.buf, from.MAC, dstMAC, seg, p.Fragment)
	sent, err := n.clock.SendFrames(from, p.Time, frames)
	if err != nil {
		return d, err
	}
	realised, err := n.clock.Sent(p.Tuple.String(), p.Time, opens, sent)
	if err != nil {
		return d, err
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
		if p.Dir == reference.Outbound {
			n.insideOf[d.Packet.Tuple] = p.Tuple
			inside, known = p.Tuple, true
		}
		if known {
			n.tcp.Advance(seg, p.Dir, inside)
		}
	}
	return d, nil
}

// insideTuple is the inside tuple (inside endpoint → server) of p's flow:
// p's own for an outbound packet, the one learnt from the forwarded
// outbound packet of its flow for an inbound one (ok false when none was).
func (n *NAT) insideTuple(p reference.Packet) (reference.Tuple, bool) {
	if p.Dir == reference.Outbound {
		return p.Tuple, true
	}
	in, ok := n.insideOf[p.Tuple.Reverse()]
	return in, ok
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
		out = append(out, n.dec.Packet(at, dir))
	}
}

// collectLate reads frames that arrived after their packet was judged and
// returns an error naming them: the machine was too slow for the device's
// synchronous delivery, and the verdicts cannot be trusted.
func (n *NAT) collectLate() error {
	for _, e := range []*link.Endpoint{n.topo.In, n.topo.Out} {
		ps, err := n.readSide(e, reference.Outbound, n.clock.Last())
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

// Wait lets profile time pass until t and returns what the NAT sent
// meanwhile (a Linux NAT sends nothing on its own; anything seen is
// evidence).
func (n *NAT) Wait(ctx context.Context, t time.Time) ([]reference.Packet, error) {
	if err := n.clock.Until(ctx, t, false); err != nil {
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

// SetPool changes the pool at profile time t (B16): the allocation plan
// changes as natcheck's engine changes it (an instance keeps the lower
// half of its blocks when the pool crosses into a larger tier), and the
// device's SNAT rules are rewritten from it in one transaction. Flows
// already tracked keep their translation: conntrack does not look at
// the rules again.
func (n *NAT) SetPool(ctx context.Context, t time.Time, backends []netip.Addr, poolSize int) error {
	if err := n.clock.Until(ctx, t, false); err != nil {
		return err
	}
	if err := n.planner.SetPool(t, backends, poolSize); err != nil {
		return fmt.Errorf("linux-nft: pool change: %w", err)
	}
	n.plan = n.planner.Plan()
	if err := n.topo.RouteInside(insidePrefixes(n.plan)); err != nil {
		return fmt.Errorf("linux-nft: pool change: %w", err)
	}
	rs := ruleset{inIndex: uint32(n.topo.NATInside.Index), outIndex: uint32(n.topo.NATOutside.Index), frontends: n.cfg.Frontends, plan: n.plan, protocols: n.cfg.Protocols}
	if err := rs.rewriteSNAT(n.nft); err != nil {
		return fmt.Errorf("linux-nft: pool change: %w", err)
	}
	return nil
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

// Settle reports the frames that came out after their packet was judged
// (specs.Settler): none should, as a drop is judged from the device's
// counters.
func (n *NAT) Settle(context.Context) error { return n.collectLate() }

// Links are the device's two links as a live replay drives them: natcheck's
// endpoints on the inside and the outside, and the link-layer addresses of
// the nat namespace's interfaces that frames are sent to.
type Links struct {
	In, Out               *link.Endpoint
	NATInside, NATOutside net.HardwareAddr
	// Inside is the namespace of In (another program sending into the
	// device runs there: a benchmark's tcpreplay).
	Inside *sandbox.Namespace
}

// Links returns the device's links.
func (n *NAT) Links() Links {
	return Links{In: n.topo.In, Out: n.topo.Out, NATInside: n.topo.NATInside.MAC, NATOutside: n.topo.NATOutside.MAC, Inside: n.topo.Inside}
}

// Drops returns every drop counter of the device — its rules' and
// conntrack's statistics — by the reason it stands for.
func (n *NAT) Drops() (map[string]uint64, error) {
	c, err := n.readDrops()
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for i, v := range c {
		out[dropReasons[i]] = v
	}
	return out, nil
}
