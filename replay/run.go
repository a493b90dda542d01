package replay

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/replay/frame"
)

// Config says how to replay captures.
type Config struct {
	// Engine is the SNAT configuration: frontends and outbound rule. Its
	// Backends, PoolSize and Observer are set by Run.
	Engine reference.Config
	// Backends are the instances, addresses or prefixes in order; empty
	// means detection.
	Backends []netip.Prefix
	// PoolSize is the pool's size if larger than the instances found.
	PoolSize int
	// ReorderWindow is how far back a timestamp may go and still be put in
	// order; 0 means capture.DefaultWindow.
	ReorderWindow time.Duration
	// Output, if set, is the pcapng file that receives the outside view.
	Output string
	// Events, if set, receives one JSON line per event.
	Events io.Writer
	// Progress, if set, is called now and then with the bytes read and
	// the total size of the input files.
	Progress func(done, total int64)
}

// Run replays files, merged in time order, through the reference engine.
// On damaged input it returns the Result of everything before the fault
// together with an error naming the file, the packet and the byte offset.
func Run(files []string, cfg Config) (*Result, error) {
	res := &Result{Files: files, Drops: map[string]uint64{}}
	census := newCensus()
	if needsCensus(cfg.Backends) {
		// A first pass learns which addresses are instances. Its errors
		// are met again, and reported, by the second pass.
		for _, name := range files {
			scan(name, census)
		}
	}
	backends, how := chooseBackends(cfg.Backends, census)
	res.Backends, res.BackendsHow = backends, how
	ec := cfg.Engine
	ec.Backends = backends
	ec.PoolSize = max(cfg.PoolSize, len(backends))
	if len(backends) == 0 {
		return res, fmt.Errorf("replay: no backend instances: %s found none (name them with --backends)", how)
	}
	// Detected instances talk to the Internet through the NAT; traffic
	// between private addresses stays inside the virtual network.
	r := &runner{res: res, cfg: cfg, inst: map[uint32]int32{}, publicOnly: len(cfg.Backends) == 0}
	for i, b := range backends {
		r.inst[v4(b)] = int32(i)
	}
	r.front = map[uint32]bool{}
	for _, a := range ec.Frontends {
		r.front[v4(a)] = true
	}
	if cfg.Events != nil {
		r.events = newEventWriter(cfg.Events)
	}
	ec.Observer = r.observe
	e, err := reference.New(ec)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	r.e = e
	c := e.Config()
	res.Config = ConfigSummary{Profile: c.Profile.Name, Frontends: c.Frontends, PoolSize: c.PoolSize,
		PortsPerInstance: c.PortsPerInstance, IdleTimeout: c.IdleTimeout, TCPResetOnIdle: c.TCPResetOnIdle,
		Protocols: c.Protocols.String(), Strict: c.Strict}
	res.Plan = e.Plan()
	r.firstEx = make([][2]*Mark, len(backends))
	if cfg.Output != "" {
		// The file is created now, so that a bad path fails before the
		// replay; its pcapng section starts with the first packet's link
		// type.
		f, err := os.Create(cfg.Output)
		if err != nil {
			return res, fmt.Errorf("replay: %w", err)
		}
		r.outFile = f
		r.ifaces = map[layers.LinkType]int{}
	}
	runErr := r.run(files)
	r.finish()
	if r.outFile != nil {
		if err := r.closeOutput(); err != nil && runErr == nil {
			runErr = fmt.Errorf("replay: write %s: %w", cfg.Output, err)
		}
	}
	if r.events != nil {
		if err := r.events.flush(); err != nil && runErr == nil {
			runErr = fmt.Errorf("replay: write events: %w", err)
		}
	}
	return res, runErr
}

// scan is the first pass over one file.
func scan(name string, c *census) {
	rd, err := capture.Open(name)
	if err != nil {
		return
	}
	defer rd.Close()
	var f frame.Frame
	for {
		rec, err := rd.Next()
		if err != nil {
			return
		}
		if frame.Decode(rec.LinkType, rec.Data, &f) == nil && f.Network == frame.IPv4 &&
			(f.Proto == reference.TCP || f.Proto == reference.UDP) {
			c.add(f.Src, f.Dst)
		}
	}
}

type runner struct {
	res        *Result
	cfg        Config
	e          *reference.Engine
	inst       map[uint32]int32 // IPv4 as uint32: cheaper to hash than netip.Addr
	publicOnly bool             // only traffic with public addresses crosses the NAT
	front      map[uint32]bool
	events     *eventWriter
	outFile    *os.File
	out        *capture.Writer // created with the first packet written
	ifaces     map[layers.LinkType]int

	f        frame.Frame
	emit     []reference.Packet
	rst      []byte
	comment  []byte    // the events of the packet being processed
	comments [1]string // reused as Record.Comments
	cur      Mark      // the packet being processed
	file     string
	firstEx  [][2]*Mark

	nextSample time.Time
	sampleStep time.Duration
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// maxSamples bounds the plot's time series: past it, every other sample is
// dropped and the step doubles.
const maxSamples = 4096

func (r *runner) observe(ev reference.Event) {
	if ev.Kind == reference.Exhausted && ev.Instance >= 0 && ev.Instance < len(r.firstEx) {
		p := 0
		if ev.Proto == reference.UDP {
			p = 1
		}
		if r.firstEx[ev.Instance][p] == nil {
			m := r.cur
			r.firstEx[ev.Instance][p] = &m
		}
	}
	if r.outFile != nil && (ev.Kind == reference.MappingCreated || ev.Kind == reference.MappingReused || ev.Kind == reference.PickedUp) {
		// One comment per packet, built without fmt: packets that open flows
		// are a large share of a busy capture.
		b := r.comment
		if len(b) > 0 {
			b = append(b, "; "...)
		}
		b = append(b, ev.Behavior.String()...)
		b = append(b, ' ')
		b = append(b, ev.Kind.String()...)
		b = append(b, ": "...)
		b = append(b, ev.Proto.String()...)
		b = append(b, ' ')
		b = ev.Inside.AppendTo(b)
		b = append(b, " -> "...)
		b = ev.Remote.AppendTo(b)
		b = append(b, " via "...)
		r.comment = ev.SNAT.AppendTo(b)
	}
	if r.events != nil {
		r.events.write(r.cur.Packet, ev)
	}
}

// mergeItem is one file's next record in the k-way merge.
type mergeItem struct {
	rec  capture.Record
	src  capture.Source
	name string
	idx  int
}

type mergeHeap []*mergeItem

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if !h[i].rec.Time.Equal(h[j].rec.Time) {
		return h[i].rec.Time.Before(h[j].rec.Time)
	}
	return h[i].idx < h[j].idx
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(*mergeItem)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (r *runner) run(files []string) error {
	var total, doneBefore int64
	for _, name := range files {
		if st, err := os.Stat(name); err == nil {
			total += st.Size()
		}
	}
	var h mergeHeap
	var firstErr error
	for i, name := range files {
		rd, err := capture.Open(name)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		defer rd.Close()
		src := capture.NewReorder(rd, r.cfg.ReorderWindow)
		rec, err := src.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				firstErr = err
				break
			}
			continue
		}
		h = append(h, &mergeItem{rec: rec, src: src, name: name, idx: i})
	}
	heap.Init(&h)
	var lastProgress int64
	for firstErr == nil && len(h) > 0 {
		it := h[0]
		rec := it.rec
		r.file = it.name
		if err := r.packet(rec); err != nil {
			return err
		}
		if r.cfg.Progress != nil && rec.Offset-lastProgress > 1<<20 {
			lastProgress = rec.Offset
			r.cfg.Progress(doneBefore+rec.Offset, total)
		}
		next, err := it.src.Next()
		if err != nil {
			heap.Pop(&h)
			if !errors.Is(err, io.EOF) {
				firstErr = err
			}
			continue
		}
		it.rec = next
		heap.Fix(&h, 0)
	}
	if r.cfg.Progress != nil {
		r.cfg.Progress(total, total)
	}
	if firstErr != nil {
		return fmt.Errorf("replay: %w", firstErr)
	}
	return nil
}

// packet replays one record.
func (r *runner) packet(rec capture.Record) error {
	res := r.res
	n := &res.Counts
	n.Packets++
	ts := rec.Time
	if ts.IsZero() { // a pcapng simple packet block has no time
		ts = res.End
	}
	if res.Start.IsZero() {
		res.Start = ts
	}
	if ts.After(res.End) {
		res.End = ts
	}
	r.cur = Mark{File: r.file, Packet: int64(rec.Number), Time: ts}
	f := &r.f
	if err := frame.Decode(rec.LinkType, rec.Data, f); err != nil {
		n.Cut++
		return nil
	}
	switch f.Network {
	case frame.IPv6:
		n.IPv6++
		return nil
	case frame.NonIP:
		n.NonIP++
		return nil
	}
	switch {
	case f.Fragment:
		n.Fragments++
	case f.Proto == reference.TCP:
		n.TCP++
	case f.Proto == reference.UDP:
		n.UDP++
	case f.Proto == reference.ICMP:
		n.ICMP++
	default:
		n.Other++
	}
	src4, dst4 := v4(f.Src), v4(f.Dst)
	_, fromInst := r.inst[src4]
	_, toInst := r.inst[dst4]
	if r.publicOnly {
		fromInst = fromInst && isPublic(f.Dst)
		toInst = toInst && isPublic(f.Src)
	}
	// A packet addressed to a frontend IP was recorded on the outside (a
	// two-sided capture): it goes to the inbound path as it is.
	toFrontend := r.front[dst4]
	r.sample(ts)
	var (
		v   reference.Verdict
		err error
	)
	r.comment = r.comment[:0]
	switch {
	case fromInst && !toInst:
		n.Outbound++
		p := f.Packet(ts, reference.Outbound)
		if v, err = r.forward(rec, p); err != nil {
			return err
		}
	case toFrontend:
		n.Replies++
		if v, err = r.forward(rec, f.Packet(ts, reference.Inbound)); err != nil {
			return err
		}
	case toInst && !fromInst:
		n.Replies++
		p := f.Packet(ts, reference.Inbound)
		if f.HasPorts() && !f.Fragment {
			if r.emit, err = r.e.Advance(ts, r.emit[:0]); err != nil {
				return fmt.Errorf("replay: %s packet %d: %w", r.file, rec.Number, err)
			}
			r.flushEmitted()
			snat, ok := r.e.Lookup(p.Tuple.Reverse())
			if !ok {
				// The server never saw a SNAT endpoint for this flow: the
				// flow was refused, released, or started before the capture.
				n.RepliesNoFlow++
				n.Dropped++
				res.Drops[reference.DropUnsolicited.String()]++
				if r.events != nil {
					r.events.write(r.cur.Packet, reference.Event{Time: ts, Kind: reference.PacketDropped, Behavior: reference.B8,
						Instance: int(r.inst[dst4]), Proto: f.Proto, Inside: p.Tuple.Dst, Remote: p.Tuple.Src, Drop: reference.DropUnsolicited})
				}
				return nil
			}
			p.Tuple.Dst = snat
		}
		if v, err = r.forward(rec, p); err != nil {
			return err
		}
	default:
		n.NotThroughNAT++
		return nil
	}
	switch v.Action {
	case reference.Translated:
		n.Translated++
	case reference.Reset:
		n.Reset++
	default:
		n.Dropped++
	}
	r.flushEmitted()
	return nil
}

// forward runs p, the engine's view of rec, through the NAT and, when it
// is translated, writes the outside view of rec: an outbound packet as it
// left the NAT (new source), a reply as the server sent it (to the SNAT
// IP:port).
func (r *runner) forward(rec capture.Record, p reference.Packet) (reference.Verdict, error) {
	v, emit, err := r.e.Process(p, r.emit[:0])
	r.emit = emit
	if err != nil {
		return v, fmt.Errorf("replay: %s packet %d: %w", r.file, rec.Number, err)
	}
	if v.Action != reference.Translated || r.outFile == nil {
		return v, nil
	}
	if p.Dir == reference.Outbound {
		err = frame.RewriteSource(rec.Data, &r.f, v.Tuple.Src)
	} else {
		err = frame.RewriteDest(rec.Data, &r.f, p.Tuple.Dst)
	}
	if err != nil {
		return v, fmt.Errorf("replay: %s packet %d: %w", r.file, rec.Number, err)
	}
	return v, r.write(rec, p.Time)
}

// flushEmitted counts the packets the NAT sent and writes the ones that
// leave on the outside.
func (r *runner) flushEmitted() {
	for _, p := range r.emit {
		r.res.Counts.Emitted++
		if r.outFile == nil || p.Dir != reference.Outbound || p.Tuple.Proto != reference.TCP {
			continue
		}
		var err error
		r.rst, err = frame.AppendRST(r.rst[:0], p.Tuple, 0, p.Flags.Has(reference.ACK), 0)
		if err != nil {
			continue
		}
		idx, err := r.iface(layers.LinkTypeRaw)
		if err != nil {
			continue
		}
		if r.out.Write(capture.Record{Time: p.Time, Interface: idx, Data: r.rst,
			Comments: []string{"B14 RST sent by the NAT at idle expiry (tcpResetOnIdle)"}}) == nil {
			r.res.Counts.Written++
		}
	}
	r.emit = r.emit[:0]
}

func (r *runner) iface(lt layers.LinkType) (int, error) {
	if i, ok := r.ifaces[lt]; ok {
		return i, nil
	}
	ci := capture.Interface{Name: "natcheck-outside-" + lt.String(), LinkType: lt}
	if r.out == nil {
		w, err := capture.NewWriter(r.outFile, ci)
		if err != nil {
			return 0, err
		}
		r.out = w
		r.ifaces[lt] = 0
		return 0, nil
	}
	i, err := r.out.AddInterface(ci)
	if err != nil {
		return 0, err
	}
	r.ifaces[lt] = i
	return i, nil
}

func (r *runner) write(rec capture.Record, ts time.Time) error {
	idx, err := r.iface(rec.LinkType)
	if err != nil {
		return fmt.Errorf("replay: write %s: %w", r.cfg.Output, err)
	}
	out := capture.Record{Number: rec.Number, Time: ts, Interface: idx, Data: rec.Data, Length: rec.Length}
	if len(r.comment) > 0 {
		r.comments[0] = string(r.comment)
		out.Comments = r.comments[:]
	}
	if err := r.out.Write(out); err != nil {
		return fmt.Errorf("replay: write %s: %w", r.cfg.Output, err)
	}
	r.res.Counts.Written++
	return nil
}

// closeOutput finishes the output file; one with no packet still gets a
// section and an interface, so that it is a valid pcapng file.
func (r *runner) closeOutput() error {
	if r.out == nil {
		if _, err := r.iface(layers.LinkTypeRaw); err != nil {
			r.outFile.Close()
			return err
		}
	}
	if err := r.out.Flush(); err != nil {
		r.outFile.Close()
		return err
	}
	return r.outFile.Close()
}

// sample records ports in use per instance when time passes the next
// sample point.
func (r *runner) sample(ts time.Time) {
	if r.sampleStep == 0 {
		r.sampleStep = time.Second
		r.nextSample = ts
	}
	if ts.Before(r.nextSample) {
		return
	}
	st := r.e.Stats()
	s := Sample{Time: ts, InUse: make([][2]int, len(r.res.Backends))}
	for _, x := range st {
		if x.Instance < len(s.InUse) {
			s.InUse[x.Instance][map[reference.Proto]int{reference.TCP: 0, reference.UDP: 1}[x.Proto]] = x.InUse
		}
	}
	r.res.Samples = append(r.res.Samples, s)
	r.nextSample = ts.Add(r.sampleStep)
	if len(r.res.Samples) >= maxSamples {
		kept := r.res.Samples[:0]
		for i, s := range r.res.Samples {
			if i%2 == 0 {
				kept = append(kept, s)
			}
		}
		r.res.Samples = kept
		r.sampleStep *= 2
	}
}

// finish fills the per-instance report from the engine's counters.
func (r *runner) finish() {
	res := r.res
	for reason, v := range r.e.Drops() {
		if v > 0 {
			res.Drops[reference.DropReason(reason).String()] += v
		}
	}
	if !res.End.IsZero() {
		r.nextSample = time.Time{}
		r.sample(res.End)
	}
	for _, s := range r.e.Stats() {
		if s.Instance >= len(res.Backends) {
			continue
		}
		p := 0
		if s.Proto == reference.UDP {
			p = 1
		}
		rel := ReleaseCount{FIN: s.Releases[reference.ReleaseFIN], RST: s.Releases[reference.ReleaseRST],
			Idle: s.Releases[reference.ReleaseIdle], Reclaimed: s.Releases[reference.ReleaseReclaimed]}
		if s.Flows == 0 && s.ExhaustionDrops == 0 {
			continue
		}
		for j, ip := range s.PerIP {
			ir := InstanceReport{Instance: s.Instance, Inside: s.Inside, Frontend: ip.IP, Proto: s.Proto.String(),
				Allocated: ip.Allocated, Peak: ip.Peak, InUse: ip.InUse, Flows: ip.Flows}
			if j == 0 {
				ir.Releases = rel
				ir.ExhaustionDrops = s.ExhaustionDrops
				ir.FirstExhaustion = r.firstEx[s.Instance][p]
			}
			res.Instances = append(res.Instances, ir)
		}
		if len(s.PerIP) == 0 {
			res.Instances = append(res.Instances, InstanceReport{Instance: s.Instance, Inside: s.Inside, Proto: s.Proto.String(),
				ExhaustionDrops: s.ExhaustionDrops, FirstExhaustion: r.firstEx[s.Instance][p], Releases: rel})
		}
	}
}
