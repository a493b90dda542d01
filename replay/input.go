package replay

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/natcheck/natcheck/replay/capture"
)

// Stdin is the file name that stands for standard input (Config.Stdin).
const Stdin = "-"

// StdinName is how reports and errors name standard input.
const StdinName = "standard input"

// ErrInterrupted is returned (wrapped) by Run when Config.Stop closed: the
// Result covers the records read before, and the outputs are whole.
var ErrInterrupted = errors.New("interrupted")

// Progress is how far a replay has come, for a progress bar.
type Progress struct {
	// Phase is "detect" during the first pass that finds the backend
	// instances, "replay" during the replay itself.
	Phase string
	// Done and Total are bytes of input; Total is -1 when unknown
	// (standard input).
	Done, Total int64
}

// stopEvery is how many records pass between two looks at Config.Stop: a
// look costs a channel select, which is not free per packet.
const stopEvery = 256

// input is one capture to read: its name in reports and errors, and where
// its bytes are (a path, or standard input read once).
type input struct {
	name string
	path string // empty: read cfg.Stdin
}

// inputs names the files to read. Standard input ("-") may appear once;
// when the replay needs two passes (backend detection), it is first copied
// to a temporary file, which cleanup removes.
func inputs(files []string, cfg *Config, twoPasses bool) (ins []input, cleanup func(), err error) {
	cleanup = func() {}
	defer func() {
		if err != nil { // nothing is kept when the inputs are refused
			cleanup()
			cleanup = func() {}
		}
	}()
	stdin := 0
	for _, f := range files {
		if f != Stdin {
			ins = append(ins, input{name: f, path: f})
			continue
		}
		if stdin++; stdin > 1 {
			return nil, cleanup, fmt.Errorf("replay: standard input (-) named twice")
		}
		if cfg.Stdin == nil {
			return nil, cleanup, fmt.Errorf("replay: - names standard input, but none was given")
		}
		if !twoPasses {
			ins = append(ins, input{name: StdinName})
			continue
		}
		tmp, err := os.CreateTemp(cfg.TempDir, "natcheck-stdin-*.pcap")
		if err != nil {
			return nil, cleanup, fmt.Errorf("replay: keep standard input for two passes: %w", err)
		}
		cleanup = func() { os.Remove(tmp.Name()) }
		_, err = io.Copy(tmp, cfg.Stdin)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, cleanup, fmt.Errorf("replay: keep standard input for two passes: %w", err)
		}
		ins = append(ins, input{name: StdinName, path: tmp.Name()})
	}
	return ins, cleanup, nil
}

// open opens the input as a capture: a classic pcap file mapped into
// memory (capture.OpenScan), its records' Data read-only, not to be
// rewritten in place; standard input, or a file that cannot be mapped,
// read with read(2).
func (in input) open(stdin io.Reader) (*capture.Reader, error) {
	if in.path == "" {
		return capture.NewReader(in.name, stdin)
	}
	return capture.OpenScan(in.path, in.name)
}

// size is the input's size in bytes, or -1 when unknown.
func (in input) size() int64 {
	if in.path == "" {
		return -1
	}
	st, err := os.Stat(in.path)
	if err != nil {
		return -1
	}
	return st.Size()
}

// totalSize is the inputs' size in bytes, or -1 when one is unknown.
func totalSize(ins []input) int64 {
	var total int64
	for _, in := range ins {
		n := in.size()
		if n < 0 {
			return -1
		}
		total += n
	}
	return total
}

// stopped reports whether stop has closed.
func stopped(stop <-chan struct{}) bool {
	if stop == nil {
		return false
	}
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// firstPass reads every input once, before the replay: it learns the
// order of each file's records (which arrive late: capture.ScanOrder), so
// that the replay puts them in order without holding the others
// (capture.Ordered), and, when c is not nil, which addresses are
// instances. An input that cannot be opened, or whose header is bad, is an
// error at once (nothing could be replayed from it); a fault further in is
// returned too, with what was learned before it, for Run to report only if
// no instance was found (the replay meets the fault again after replaying
// every packet before it). Standard input read once has no first pass and
// no Order: the replay puts it in order with a capture.Reorder.
func firstPass(ins []input, cfg *Config, c *census) (orders []*capture.Order, err error) {
	// Classic pcap files are read mapped into memory (capture.OpenScan):
	// one that shrinks meanwhile faults, which this turns into an error.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if _, fault := p.(interface{ Addr() uintptr }); fault {
				orders, err = nil, fmt.Errorf("replay: a capture was cut short while it was read (%v)", p)
				return
			}
			panic(p)
		}
	}()
	total := totalSize(ins)
	phase := "order"
	if c != nil {
		phase = "detect"
	}
	orders = make([]*capture.Order, len(ins))
	var done, last int64
	var first error
	for i, in := range ins {
		if in.path == "" {
			continue
		}
		rd, err := capture.OpenScan(in.path, in.name)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		order := capture.NewOrderScanner(rd, cfg.ReorderWindow)
		inOrder := true // until a record comes later than the window: the replay stops there
		var off int64
		if c == nil {
			// Only the order: the scanner reads headers alone.
			var base int64
			stop := false
			err := order.Scan(rd, stopEvery, func() bool {
				if stopped(cfg.Stop) {
					stop = true
					return false
				}
				if at := rd.Offset(); cfg.Progress != nil && done+at-base-last > 1<<20 {
					done, base = done+at-base, at
					last = done
					cfg.Progress(Progress{Phase: phase, Done: done, Total: total})
				}
				return true
			})
			done += rd.Offset() - base
			rd.Close()
			if stop {
				// The replay, which stops at once too, does without the
				// order (a Reorder).
				return make([]*capture.Order, len(ins)), nil
			}
			if err != nil && first == nil {
				first = fmt.Errorf("replay: %w", err)
			}
			orders[i] = order.Order()
			continue
		}
		var par *parallelCensus
		if rd.Stable() && cfg.Workers != 1 && runtime.GOMAXPROCS(0) > 1 {
			// The census decodes on a second core while this one reads
			// and checks the order (the records' bytes stay put).
			par = newParallelCensus(c)
		}
		for n := 0; ; n++ {
			if n%stopEvery == 0 && stopped(cfg.Stop) {
				par.wait()
				rd.Close()
				return nil, fmt.Errorf("replay: detecting backend instances: %w", ErrInterrupted)
			}
			rec, err := rd.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && first == nil {
					first = fmt.Errorf("replay: %w", err)
				}
				break
			}
			if inOrder {
				inOrder = order.Add(&rec)
			}
			if par != nil {
				par.record(rec)
			} else {
				c.record(rec)
			}
			done += rec.Offset - off
			off = rec.Offset
			if cfg.Progress != nil && done-last > 1<<20 {
				last = done
				cfg.Progress(Progress{Phase: phase, Done: done, Total: total})
			}
		}
		if perr := par.wait(); perr != nil {
			rd.Close()
			return nil, perr
		}
		orders[i] = order.Order()
		rd.Close()
	}
	if cfg.Progress != nil {
		cfg.Progress(Progress{Phase: phase, Done: max(total, done), Total: total})
	}
	return orders, first
}

// parallelCensus runs a census on another goroutine, in batches of the
// records of a Reader whose records' bytes stay put (capture.Reader.Stable).
type parallelCensus struct {
	c     *census
	batch []capture.Record
	jobs  chan []capture.Record
	free  chan []capture.Record
	done  chan error
}

const censusBatch = 4096

func newParallelCensus(c *census) *parallelCensus {
	p := &parallelCensus{c: c, jobs: make(chan []capture.Record, 2), free: make(chan []capture.Record, 3), done: make(chan error, 1)}
	for range 3 {
		p.free <- make([]capture.Record, 0, censusBatch)
	}
	p.batch = <-p.free
	go p.run()
	return p
}

func (p *parallelCensus) run() {
	// The records are in a mapped file: a fault is an error, as in
	// firstPass.
	debug.SetPanicOnFault(true)
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); fault {
				for b := range p.jobs {
					p.free <- b[:0] // the reader may be waiting for one
				}
				p.done <- fmt.Errorf("replay: a capture was cut short while it was read (%v)", r)
				return
			}
			panic(r)
		}
	}()
	for b := range p.jobs {
		for _, rec := range b {
			p.c.record(rec)
		}
		p.free <- b[:0]
	}
	p.done <- nil
}

// record queues one record for the census.
func (p *parallelCensus) record(rec capture.Record) {
	rec.Comments = nil
	p.batch = append(p.batch, rec)
	if len(p.batch) == censusBatch {
		p.jobs <- p.batch
		p.batch = <-p.free
	}
}

// wait hands over the last batch and waits for the census to finish; a
// nil *parallelCensus has nothing to wait for.
func (p *parallelCensus) wait() error {
	if p == nil {
		return nil
	}
	if len(p.batch) > 0 {
		p.jobs <- p.batch
	}
	close(p.jobs)
	return <-p.done
}
