package replay

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"slices"
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
	// Workers is the number of engines the instances are spread over;
	// 0 means one per CPU (GOMAXPROCS), at most 8. The azure-lb profile
	// gives each instance its own ports (B5), so instances on different
	// engines never interact: any number of workers gives the same result.
	Workers int
}

// maxWorkers bounds the engines: past it the one reading goroutine is the
// bottleneck.
const maxWorkers = 8

// Run replays files, merged in time order, through the reference engine.
// On damaged input it returns the Result of everything before the fault
// together with an error naming the file, the packet and the byte offset.
//
// With more than one worker, Run is a pipeline: one goroutine reads,
// decodes and classifies packets and hands each to the worker that owns
// its instance; each worker runs its own engine; one goroutine writes the
// outside view and the events in the input's order. With one worker the
// same steps run in turn on the caller's goroutine.
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
	if len(backends) == 0 {
		return res, fmt.Errorf("replay: no backend instances: %s found none (name them with --backends)", how)
	}
	ec := cfg.Engine
	ec.Backends = backends
	ec.PoolSize = max(cfg.PoolSize, len(backends))
	nw := cfg.Workers
	if nw <= 0 {
		nw = min(runtime.GOMAXPROCS(0), maxWorkers)
	}
	nw = min(nw, len(backends))

	out := &output{res: res, path: cfg.Output}
	if cfg.Output != "" {
		// The file is created now, so that a bad path fails before the
		// replay; its pcapng section starts with the first packet's link
		// type.
		f, err := os.Create(cfg.Output)
		if err != nil {
			return res, fmt.Errorf("replay: %w", err)
		}
		out.file = f
		out.ifaces = map[layers.LinkType]int{}
	}
	var events *bufio.Writer
	if cfg.Events != nil {
		events = bufio.NewWriterSize(cfg.Events, 256<<10)
		out.events = events
	}
	workers := make([]*worker, nw)
	for i := range workers {
		w, err := newWorker(ec, len(backends), cfg.Output != "", cfg.Events != nil)
		if err != nil {
			if out.file != nil {
				out.file.Close()
			}
			return res, fmt.Errorf("replay: %w", err)
		}
		i := i
		w.owned = func(inst int) bool { return inst%nw == i }
		workers[i] = w
	}
	c := workers[0].e.Config()
	res.Config = ConfigSummary{Profile: c.Profile.Name, Frontends: c.Frontends, PoolSize: c.PoolSize,
		PortsPerInstance: c.PortsPerInstance, IdleTimeout: c.IdleTimeout, TCPResetOnIdle: c.TCPResetOnIdle,
		Protocols: c.Protocols.String(), Strict: c.Strict}
	res.Plan = workers[0].e.Plan()

	in := newIngest(res, cfg, backends, workers)
	var runErr, outErr error
	if nw == 1 {
		in.sync = out
		runErr = in.run(files)
		outErr = out.err
	} else {
		done := make(chan error, 1)
		for _, w := range workers {
			w.failed = &in.failed
			go w.run()
		}
		go func() { done <- out.run(in.order, workers, in.free) }()
		runErr = in.run(files)
		for _, w := range workers {
			close(w.in)
		}
		outErr = <-done
	}
	for _, w := range workers {
		if w.err != nil && runErr == nil {
			runErr = w.err
		}
	}
	if outErr != nil && runErr == nil {
		runErr = outErr
	}
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

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// finish merges the workers' counters into the result. Instance i lives
// on worker i % len(workers).
func finish(res *Result, workers []*worker) {
	n := &res.Counts
	var samples []Sample
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
		if !res.End.IsZero() {
			w.nextSample = time.Time{}
			w.sample(res.End)
		}
		samples = append(samples, w.samples...)
	}
	slices.SortStableFunc(samples, func(a, b Sample) int { return a.Time.Compare(b.Time) })
	res.Samples = samples
	stats := make([][]reference.InstanceStats, len(workers))
	for k, w := range workers {
		stats[k] = w.e.Stats() // per instance, TCP then UDP
	}
	for i := range res.Backends {
		w := workers[i%len(workers)]
		for _, s := range stats[i%len(workers)][2*i : 2*i+2] {
			p := protoIndex(s.Proto)
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
					ir.FirstExhaustion = w.firstEx[s.Instance][p]
				}
				res.Instances = append(res.Instances, ir)
			}
			if len(s.PerIP) == 0 {
				res.Instances = append(res.Instances, InstanceReport{Instance: s.Instance, Inside: s.Inside, Proto: s.Proto.String(),
					ExhaustionDrops: s.ExhaustionDrops, FirstExhaustion: w.firstEx[s.Instance][p], Releases: rel})
			}
		}
	}
}

func protoIndex(p reference.Proto) int {
	if p == reference.UDP {
		return 1
	}
	return 0
}
