package replay

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
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
	// BothSides makes the output capture show both sides of the NAT: each
	// packet as recorded, on an inside interface, and as translated, on
	// an outside one; a packet the NAT dropped (or answered with a RST)
	// appears as recorded, with a comment giving the reason and the
	// behaviour ID. Without it the output is the outside view alone.
	BothSides bool
	// OutputWriter, if set, receives the outside view instead of a file
	// (standard output, for "-w -"); Output then only names it in errors.
	OutputWriter io.Writer
	// Events, if set, receives one JSON line per event.
	Events io.Writer
	// Stdin is read for an input file named "-" (Stdin). With backend
	// detection it is first copied to a temporary file, as detection reads
	// the input twice.
	Stdin io.Reader
	// TempDir is the folder where standard input is kept when the replay
	// reads its input twice (backend detection, the order check); empty:
	// the system's. A caller that may end the process at once (a second
	// Ctrl-C) names a folder of its own and removes it then.
	TempDir string
	// Stop, when closed, stops the replay at the next record (Ctrl-C): the
	// records read before are replayed and written, the outputs end on a
	// whole event line and a whole pcapng block, and Run returns an error
	// matching ErrInterrupted with the Result so far.
	Stop <-chan struct{}
	// Progress, if set, is called now and then with the bytes read, in
	// the detection pass and in the replay.
	Progress func(Progress)
	// Workers is the number of engines the instances are spread over;
	// 0 means one per CPU (GOMAXPROCS), at most 8. The azure-lb profile
	// gives each instance its own ports (B5), so instances on different
	// engines never interact, and every engine's clock follows every
	// record (C9): any number of workers gives the same result. So does
	// linux's (L1: its rules are written from the same plan). A profile
	// whose instances share one inventory (azure-natgw, rfc: G1, R3) runs
	// on one engine whatever Workers says.
	Workers int
	// Drain runs the clock on past the last record until every flow has
	// ended; those releases (and B14 RSTs) are reported apart. Without it
	// the clock stops at the last record's time and the flows still live
	// are reported in use at the end.
	Drain bool
	// Shard, if set, replays only the instances it owns (instance i of
	// shard i mod n, Shard.Owns); MergeResults joins the n shards' results
	// into the unsharded one. Only for profiles whose instances own their
	// ports (B5).
	Shard *Shard
}

// maxWorkers bounds the engines: past it the one reading goroutine is the
// bottleneck.
const maxWorkers = 8

// Run replays files, merged in time order, through the reference engine.
// On damaged input it returns the Result of everything before the fault
// together with an error naming the file, the packet and the byte offset.
//
// Time is the capture's own (C9): every engine's clock follows every
// record of the merged input, timers fire at their exact times, and the
// clock stops at the last record's time (or, with Config.Drain, runs on
// until every flow has ended).
//
// With more than one worker, Run is a pipeline: one goroutine reads,
// decodes and classifies records into slices of the input and hands each
// slice to every worker (each processes the packets of its own instances,
// then runs its clock to the slice's end); one goroutine writes each slice
// in the input's order, with the timers' events merged in by time. With
// one worker the same steps run in turn on the caller's goroutine. Either
// way the outputs are the same, byte for byte.
func Run(files []string, cfg Config) (*Result, error) {
	res := &Result{Files: files, Drops: map[string]uint64{}}
	ins, cleanup, err := inputs(files, &cfg, needsCensus(cfg.Backends))
	if err != nil {
		return res, err
	}
	defer cleanup()
	res.Files = make([]string, len(ins))
	for i, in := range ins {
		res.Files[i] = in.name
	}
	census := newCensus()
	// A first pass over each file learns which of its records arrive late
	// and, for detection and prefixes, which addresses are instances. A
	// file that cannot be opened or read from its start is an error now; a
	// fault further in is met again, and reported, by the replay, after
	// every packet before it.
	counted := census
	if !needsCensus(cfg.Backends) {
		counted = nil
	}
	orders, scanErr := firstPass(ins, &cfg, counted)
	var ce *capture.Error
	if scanErr != nil && (!errors.As(scanErr, &ce) || ce.Packet == 0 || errors.Is(scanErr, ErrInterrupted)) {
		return res, scanErr
	}
	backends, how := chooseBackends(cfg.Backends, census)
	res.Backends, res.BackendsHow = backends, how
	if len(backends) == 0 {
		if scanErr != nil {
			return res, scanErr
		}
		return res, fmt.Errorf("replay: no backend instances: %s found none (name them with --backends)", how)
	}
	ec := cfg.Engine
	if err := cfg.Shard.check(ec.Profile); err != nil {
		return res, err
	}
	res.Shard = cfg.Shard
	ec.Backends = backends
	ec.PoolSize = max(cfg.PoolSize, len(backends))
	nw := cfg.Workers
	if nw <= 0 {
		nw = min(runtime.GOMAXPROCS(0), maxWorkers)
	}
	nw = min(nw, len(backends))
	if ec.Profile.Quota == reference.QuotaShared {
		nw = 1 // one inventory for every instance (G1, R3): one engine
	}

	out := &output{res: res, path: cfg.Output, bothSides: cfg.BothSides}
	switch {
	case cfg.OutputWriter != nil:
		out.file = cfg.OutputWriter
		out.ifaces = map[ifaceKey]int{}
	case cfg.Output != "":
		// The file is created now, so that a bad path fails before the
		// replay; its pcapng section starts with the first packet's link
		// type.
		f, err := os.Create(cfg.Output)
		if err != nil {
			return res, fmt.Errorf("replay: %w", err)
		}
		out.file, out.closer = f, f
		out.ifaces = map[ifaceKey]int{}
	}
	var events *bufio.Writer
	if cfg.Events != nil {
		events = bufio.NewWriterSize(cfg.Events, 256<<10)
		out.events = events
	}
	workers := make([]*worker, nw)
	for i := range workers {
		w, err := newWorker(ec, i, nw, len(backends), out.file != nil, cfg.BothSides, cfg.Events != nil)
		if err != nil {
			if out.closer != nil {
				out.closer.Close()
			}
			return res, fmt.Errorf("replay: %w", err)
		}
		workers[i] = w
	}
	c := workers[0].e.Config()
	res.Config = ConfigSummary{Profile: c.Profile.Name, Frontends: c.Frontends, PoolSize: c.PoolSize,
		PortsPerInstance: c.PortsPerInstance, IdleTimeout: c.IdleTimeout, TCPResetOnIdle: c.TCPResetOnIdle,
		Protocols: c.Protocols.String(), Strict: c.Strict}
	res.Plan = workers[0].e.Plan()

	in := newIngest(res, cfg, backends, workers, out)
	in.orders = orders
	runErr := in.run(ins, cfg.Drain)
	if events != nil {
		if err := events.Flush(); err != nil && runErr == nil {
			runErr = fmt.Errorf("replay: write events: %w", err)
		}
	}
	finish(res, workers)
	if out.file != nil {
		if err := out.close(); err != nil && runErr == nil {
			runErr = fmt.Errorf("replay: write %s: %w", cfg.Output, err)
		}
	}
	return res, runErr
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// finish merges the workers' counters into the result. Instance i lives
// on worker i % len(workers). The per-instance rows are the statistics at
// the last record's time; releases after it (--drain) are reported apart.
func finish(res *Result, workers []*worker) {
	n := &res.Counts
	for _, w := range workers {
		n.Translated += w.counts.Translated
		n.Dropped += w.counts.Dropped
		n.Reset += w.counts.Reset
		n.Emitted += w.counts.Emitted
		n.RepliesNoFlow += w.counts.RepliesNoFlow
		for reason, v := range w.e.Drops() {
			if v > 0 {
				res.Drops[reference.DropReason(reason).String()] += v
			}
		}
	}
	res.Samples = mergeSamples(workers)
	end := make([][]reference.InstanceStats, len(workers))
	var now [][]reference.InstanceStats
	for k, w := range workers {
		end[k] = w.atEnd // per instance, TCP then UDP
		if end[k] == nil {
			end[k] = w.e.Stats() // no record was read
		}
		if w.drained {
			now = append(now, w.e.Stats())
			if res.Drained == nil {
				res.Drained = &DrainSummary{}
			}
			if w.drainedTo.After(res.Drained.Until) {
				res.Drained.Until = w.drainedTo
			}
		}
	}
	for i := range res.Backends {
		k := i % len(workers)
		w := workers[k]
		for j, s := range end[k][2*i : 2*i+2] {
			p := protoIndex(s.Proto)
			rel := releaseCount(s.Releases)
			var drained *ReleaseCount
			if now != nil {
				d := releaseCount(now[k][2*i+j].Releases)
				d.FIN, d.RST, d.Idle, d.Reclaimed = d.FIN-rel.FIN, d.RST-rel.RST, d.Idle-rel.Idle, d.Reclaimed-rel.Reclaimed
				res.Drained.Releases.add(d)
				if d != (ReleaseCount{}) {
					drained = &d
				}
			}
			if s.Flows == 0 && s.ExhaustionDrops == 0 {
				continue
			}
			for j, ip := range s.PerIP {
				ir := InstanceReport{Instance: s.Instance, Inside: s.Inside, Frontend: ip.IP, Proto: s.Proto.String(),
					Allocated: ip.Allocated, Peak: ip.Peak, InUse: ip.InUse, Flows: ip.Flows}
				if j == 0 {
					ir.Releases = rel
					ir.DrainedReleases = drained
					ir.ExhaustionDrops = s.ExhaustionDrops
					ir.FirstExhaustion = w.firstEx[s.Instance][p]
				}
				res.Instances = append(res.Instances, ir)
			}
			if len(s.PerIP) == 0 {
				res.Instances = append(res.Instances, InstanceReport{Instance: s.Instance, Inside: s.Inside, Proto: s.Proto.String(),
					ExhaustionDrops: s.ExhaustionDrops, FirstExhaustion: w.firstEx[s.Instance][p], Releases: rel, DrainedReleases: drained})
			}
		}
	}
}

func releaseCount(r [reference.ReleaseReclaimed + 1]uint64) ReleaseCount {
	return ReleaseCount{FIN: r[reference.ReleaseFIN], RST: r[reference.ReleaseRST],
		Idle: r[reference.ReleaseIdle], Reclaimed: r[reference.ReleaseReclaimed]}
}

// mergeSamples joins the workers' samples, taken on one grid, point by
// point: each instance's figures come from the worker that owns it.
func mergeSamples(workers []*worker) []Sample {
	if len(workers) == 1 {
		return workers[0].samples // it owns every instance
	}
	n := len(workers[0].samples)
	for _, w := range workers[1:] {
		n = min(n, len(w.samples))
	}
	out := make([]Sample, n)
	for k := range out {
		out[k] = Sample{Time: workers[0].samples[k].Time, InUse: make([][2]int32, len(workers[0].firstEx))}
		for _, w := range workers {
			for j, v := range w.samples[k].InUse {
				out[k].InUse[w.idx+j*w.nw] = v
			}
		}
	}
	for _, w := range workers {
		w.samples, w.spare = nil, nil
	}
	return out
}

func protoIndex(p reference.Proto) int {
	if p == reference.UDP {
		return 1
	}
	return 0
}
