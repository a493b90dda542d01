package replay

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/replay/frame"
)

// Item kinds: which path of the NAT a packet takes.
const (
	kindOutbound = iota // from an instance
	kindReply           // recorded on the inside, to an instance: sent to its flow's SNAT endpoint
	kindOutside         // recorded on the outside, to a frontend IP: sent as it is
)

// item is one packet on its way through the pipeline; its bytes are in the
// batch's arena. The worker decodes them again (15 ns) rather than the
// item carrying the ingest's decoded frame: copying that 200-byte struct
// into the batch cost more, in the replay's CPU profile.
type item struct {
	mark     Mark
	linkType uint16
	kind     uint8
	length   int
	start    int // data is arena[start:end]
	end      int

	// Filled in by the worker.
	write          bool
	comment        string
	evStart, evEnd int // events, in the batch's events arena
	emitted        []reference.Packet
}

// batchSize is the number of items handed to a worker at once.
const batchSize = 512

// batch is a run of items for one worker, with the bytes they own.
type batch struct {
	items  []item
	arena  []byte
	events []byte
	next   int // the writer's position
}

// ingest reads, decodes and classifies packets and dispatches them.
type ingest struct {
	res        *Result
	cfg        Config
	inst       *addrTable // backend IPv4 → instance
	publicOnly bool       // only traffic with public addresses crosses the NAT
	front      *addrTable // frontend IPv4 → index
	owner      [][]int32  // per frontend, per port - FirstPort: the instance, or -1
	firstPort  uint16
	workers    []*worker
	cur        []*batch // each worker's batch being filled
	free       chan *batch
	order      chan []uint8
	orderBuf   []uint8 // the worker of each item dispatched since the last flush
	// sync, when set, is the output that the one worker's batches go to
	// at once, on this goroutine: with one engine there is nothing to
	// overlap, and a replay with no goroutines is deterministic down to
	// its code coverage, which the fuzzers need.
	sync *output
	one  item // the packet being processed, in synchronous mode
	// failed is the first error of a pipeline worker; the reading loop
	// checks it and stops soon after the fault (at once when synchronous).
	failed atomic.Pointer[error]
	f      frame.Frame
}

// orderFlush is how many items the writer is told about at once.
const orderFlush = 4096

func newIngest(res *Result, cfg Config, backends []netip.Addr, workers []*worker) *ingest {
	in := &ingest{res: res, cfg: cfg, inst: newAddrTable(len(backends)), front: newAddrTable(len(res.Plan.Frontends)),
		// Detected instances talk to the Internet through the NAT; traffic
		// between private addresses stays inside the virtual network.
		publicOnly: len(cfg.Backends) == 0, workers: workers, cur: make([]*batch, len(workers))}
	for i, b := range backends {
		in.inst.put(v4(b), int32(i))
	}
	pl := res.Plan
	in.firstPort = 0xffff
	for _, ip := range pl.Instances {
		for _, r := range ip.Ranges {
			in.firstPort = min(in.firstPort, r.First)
		}
	}
	for i, fr := range pl.Frontends {
		in.front.put(v4(fr.IP), int32(i))
		own := make([]int32, 65536)
		for j := range own {
			own[j] = -1
		}
		for _, ip := range pl.Instances {
			for _, r := range ip.Ranges {
				if r.IP == fr.IP {
					for p := int(r.First); p <= int(r.Last); p++ {
						own[p] = int32(ip.Index)
					}
				}
			}
		}
		in.owner = append(in.owner, own)
	}
	// Enough batches that no channel send ever blocks: every channel can
	// hold them all.
	n := 16 + 4*len(workers)
	in.free = make(chan *batch, n)
	in.order = make(chan []uint8, n)
	for range n {
		in.free <- &batch{items: make([]item, 0, batchSize), arena: make([]byte, 0, batchSize*128)}
	}
	for _, w := range workers {
		w.in = make(chan *batch, n)
		w.out = make(chan *batch, n)
	}
	return in
}

// mergeItem is one file's next record in the k-way merge.
type mergeItem struct {
	rec    capture.Record
	offset int64 // of the previous record, for progress
	src    capture.Source
	name   string
	idx    int
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

// run reads every file, merged in time order, and dispatches its packets.
// It always closes the order channel, so the writer ends.
func (in *ingest) run(files []string) error {
	err := in.read(files)
	in.flush()
	close(in.order)
	return err
}

func (in *ingest) read(files []string) error {
	var total int64
	for _, name := range files {
		if st, err := os.Stat(name); err == nil {
			total += st.Size()
		}
	}
	var h mergeHeap
	for i, name := range files {
		rd, err := capture.Open(name)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		defer rd.Close()
		src := capture.NewReorder(rd, in.cfg.ReorderWindow)
		rec, err := src.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("replay: %w", err)
			}
			continue
		}
		h = append(h, &mergeItem{rec: rec, src: src, name: name, idx: i})
	}
	heap.Init(&h)
	var done, lastProgress int64 // bytes read, over all files
	for len(h) > 0 {
		if err := in.failure(); err != nil {
			return err // a packet the engine refused (a time out of its range): stop, as for bad input
		}
		it := h[0]
		in.packet(it.name, &it.rec)
		done += it.rec.Offset - it.offset
		it.offset = it.rec.Offset
		if in.cfg.Progress != nil && done-lastProgress > 1<<20 {
			lastProgress = done
			in.cfg.Progress(done, total)
		}
		var err error
		if it.rec, err = it.src.Next(); err != nil {
			heap.Pop(&h)
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("replay: %w", err)
			}
			continue
		}
		if len(h) > 1 {
			heap.Fix(&h, 0)
		}
	}
	if in.cfg.Progress != nil {
		in.cfg.Progress(total, total)
	}
	return nil
}

// packet counts, decodes and classifies one record, and hands it to the
// worker of its instance.
func (in *ingest) packet(file string, rec *capture.Record) {
	res := in.res
	n := &res.Counts
	n.Packets++
	ts := rec.Time
	if ts.IsZero() { // a pcapng simple packet block has no time
		ts = res.End
	}
	if res.Start.IsZero() {
		res.Start = ts
	}
	res.End = ts // records arrive in time order (Reorder, and the merge of files)
	f := &in.f
	if in.sync != nil {
		// One worker: decode straight into its frame and process the
		// packet at once, in the reader's buffer, without a batch.
		f = &in.workers[0].f
	}
	if err := frame.Decode(rec.LinkType, rec.Data, f); err != nil {
		n.Cut++
		return
	}
	switch f.Network {
	case frame.IPv6:
		n.IPv6++
		return
	case frame.NonIP:
		n.NonIP++
		return
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
	srcInst, fromInst := in.inst.get(src4)
	dstInst, toInst := in.inst.get(dst4)
	if in.publicOnly {
		fromInst = fromInst && isPublic(f.Dst)
		toInst = toInst && isPublic(f.Src)
	}
	var kind uint8
	var inst int32
	switch fi, toFrontend := in.front.get(dst4); {
	case fromInst && !toInst:
		n.Outbound++
		kind, inst = kindOutbound, srcInst
	case toFrontend:
		// A packet recorded on the outside (a two-sided capture): its
		// SNAT port names the instance; a port of none is unsolicited on
		// any engine, so worker 0 takes it.
		n.Replies++
		kind, inst = kindOutside, 0
		if f.HasPorts() && f.DstPort >= in.firstPort {
			inst = max(in.owner[fi][f.DstPort], 0)
		}
	case toInst && !fromInst:
		n.Replies++
		kind, inst = kindReply, dstInst
	default:
		n.NotThroughNAT++
		return
	}
	if in.sync != nil {
		in.now(file, rec, ts, kind)
		return
	}
	wi := int(inst) % len(in.workers)
	b := in.cur[wi]
	if b == nil {
		b = in.take()
		in.cur[wi] = b
	}
	start := len(b.arena)
	b.arena = append(b.arena, rec.Data...)
	b.items = append(b.items, item{mark: Mark{File: file, Packet: int64(rec.Number), Time: ts}, linkType: uint16(rec.LinkType),
		kind: kind, length: rec.Length, start: start, end: len(b.arena)})
	if in.sync == nil {
		in.orderBuf = append(in.orderBuf, uint8(wi))
	}
	if len(b.items) == batchSize {
		in.send(wi, b)
		in.cur[wi] = nil
	}
	if len(in.orderBuf) == orderFlush {
		in.flush()
	}
}

// now processes and writes one packet at once (synchronous mode, one
// worker, whose frame already holds the packet decoded).
func (in *ingest) now(file string, rec *capture.Record, ts time.Time, kind uint8) {
	w, o := in.workers[0], in.sync
	if w.err != nil || o.err != nil {
		return
	}
	it := &in.one
	*it = item{mark: Mark{File: file, Packet: int64(rec.Number), Time: ts}, linkType: uint16(rec.LinkType), kind: kind, length: rec.Length}
	ev, err := w.one(it, rec.Data)
	if err != nil {
		w.err = err
		return
	}
	o.err = o.item(it, rec.Data, ev)
}

// failure returns the error that stopped a worker or the output, if any.
// Workers of the pipeline report theirs through failed.
func (in *ingest) failure() error {
	if in.sync != nil {
		if w := in.workers[0]; w.err != nil {
			return w.err
		}
		return in.sync.err
	}
	if e := in.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// send hands a batch to its worker, or, in synchronous mode, runs it
// through the worker and the output and frees it.
func (in *ingest) send(wi int, b *batch) {
	if in.sync == nil {
		in.workers[wi].in <- b
		return
	}
	if w := in.workers[wi]; w.err == nil {
		w.batch(b)
	}
	in.sync.batch(b)
	b.items, b.arena, b.next = b.items[:0], b.arena[:0], 0
	in.free <- b
}

// take returns a free batch. When none is free, the writer is first told
// about every item dispatched, so that it can finish and free batches.
func (in *ingest) take() *batch {
	select {
	case b := <-in.free:
		return b
	default:
	}
	in.flush()
	return <-in.free
}

// flush sends every partly filled batch to its worker, then tells the
// writer the order of the items dispatched since the last flush.
func (in *ingest) flush() {
	for wi, b := range in.cur {
		if b != nil {
			in.send(wi, b)
			in.cur[wi] = nil
		}
	}
	if len(in.orderBuf) > 0 {
		in.order <- in.orderBuf
		in.orderBuf = make([]uint8, 0, orderFlush)
	}
}
