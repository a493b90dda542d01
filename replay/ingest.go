package replay

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime/debug"
	"sync/atomic"

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

// item is one packet on its way to a worker; its bytes are in the batch's
// arena. The worker decodes them again (15 ns) rather than the item
// carrying the ingest's decoded frame: copying that 200-byte struct into
// the batch cost more, in the replay's CPU profile.
type item struct {
	mark     Mark
	linkType uint16
	kind     uint8
	// malformed: the frame's transport header is cut or impossible; its
	// IPv4 header is whole, so it goes to the NAT, which drops it.
	malformed bool
	length    int
	start     int // data is arena[start:end]
	end       int

	// Filled in by the worker.
	write   bool
	comment string
	// rstBy is the item a Reset verdict cites (B14, G6): the comment of
	// the RST the NAT sent for it.
	rstBy reference.Behavior
	// orig is the packet as recorded and note why the NAT did not
	// translate it, with Config.BothSides.
	orig           []byte
	note           string
	evStart, evEnd int // events, in the batch's events arena
	emitted        []reference.Packet
}

// readerWorker marks, in a slice's order, a record the ingest itself
// reports (a frame it could not decode far enough to give to a NAT).
const readerWorker = 0xff

// ingest reads the input files merged in time order, decodes and classifies
// each record, and hands the packets that cross the NAT to the worker of
// their instance, in slices of the input (or, with one worker, at once).
type ingest struct {
	res        *Result
	cfg        Config
	inst       *addrTable // backend IPv4 → instance
	publicOnly bool       // only traffic with public addresses crosses the NAT
	front      *addrTable // frontend IPv4 → index
	owner      [][]int32  // per frontend, per port: the instance, or -1
	firstPort  uint16
	workers    []*worker
	out        *output
	// orders are the files' orders, learned by the first pass; a file
	// with none (the first pass could not read it) goes through a Reorder.
	orders []*capture.Order

	// With one worker, sync is set: each record is processed and written
	// at once, on this goroutine, in the reader's buffer. With one engine
	// there is nothing to overlap, and a replay with no goroutines is
	// deterministic down to its code coverage, which the fuzzers need.
	sync bool
	one  item // the packet being processed, in synchronous mode
	ev   []byte
	// scratch holds the packet being processed when the worker rewrites
	// it (an outside view is written): a copy of the record's bytes.
	scratch []byte

	// The pipeline: the slice being filled, free slices, and the writer's
	// queue. failed is the first error of the writer.
	cur     *slice
	free    chan *slice
	written chan *slice
	failed  atomic.Pointer[error]

	f frame.Frame
}

func newIngest(res *Result, cfg Config, backends []netip.Addr, workers []*worker, out *output) *ingest {
	in := &ingest{res: res, cfg: cfg, inst: newAddrTable(len(backends)), front: newAddrTable(len(res.Plan.Frontends)),
		// Detected instances talk to the Internet through the NAT; traffic
		// between private addresses stays inside the virtual network.
		publicOnly: len(cfg.Backends) == 0, workers: workers, out: out, sync: len(workers) == 1}
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
	if in.sync {
		workers[0].direct = out
		return in
	}
	n := slicesInFlight
	in.free = make(chan *slice, n)
	in.written = make(chan *slice, n)
	for range n {
		in.free <- newSlice(len(workers))
	}
	for _, w := range workers {
		w.in = make(chan *slice, n)
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

// run reads every file, merged in time order, through the NAT; then it
// runs the clock to the last record's time (C9), and on until every flow
// has ended when drain is set. It returns the first error: bad input, a
// time the engine cannot take, or a failed write. Everything read before
// the error is replayed and written.
func (in *ingest) run(files []input, drain bool) error {
	if in.sync {
		err := in.read(files)
		if ferr := in.workers[0].finish(in.res.End, drain); ferr != nil && err == nil {
			err = ferr
		}
		return err
	}
	done := make(chan error, 1)
	for _, w := range in.workers {
		go w.run()
	}
	go func() { done <- in.out.run(in.written, len(in.workers), in.free, &in.failed) }()
	err := in.read(files)
	s := in.slice()
	s.last, s.drain, s.end = true, drain, in.res.End
	in.dispatch()
	close(in.written)
	for _, w := range in.workers {
		close(w.in)
	}
	if werr := <-done; werr != nil && err == nil {
		err = werr
	}
	for _, w := range in.workers {
		if w.err != nil && err == nil {
			err = w.err
		}
	}
	return err
}

func (in *ingest) read(files []input) (err error) {
	// Classic pcap files are read mapped into memory (input.open): one
	// that shrinks meanwhile faults, which this turns into an error after
	// the records read before.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if _, fault := p.(interface{ Addr() uintptr }); fault {
				err = fmt.Errorf("replay: a capture was cut short while it was read (%v)", p)
				return
			}
			panic(p)
		}
	}()
	total := totalSize(files)
	var h mergeHeap
	for i, f := range files {
		rd, err := f.open(in.cfg.Stdin)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		defer rd.Close()
		var src capture.Source
		if i < len(in.orders) && in.orders[i] != nil && (rd.Stable() || rd.ReaderAt() != nil) {
			src = capture.NewOrdered(rd, rd.ReaderAt(), in.orders[i])
		} else {
			src = capture.NewReorder(rd, in.cfg.ReorderWindow)
		}
		rec, err := src.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("replay: %w", err)
			}
			continue
		}
		h = append(h, &mergeItem{rec: rec, src: src, name: f.name, idx: i})
	}
	heap.Init(&h)
	var done, lastProgress int64 // bytes read, over all files
	for n := 1; len(h) > 0; n++ {
		if err := in.failure(); err != nil {
			return err // a failed write: stop, as for bad input
		}
		if n%stopEvery == 0 && stopped(in.cfg.Stop) {
			return fmt.Errorf("replay: %w after %s", ErrInterrupted, plural(uint64(in.res.Counts.Packets), "packet"))
		}
		it := h[0]
		if err := in.packet(it.name, &it.rec); err != nil {
			return err
		}
		done += it.rec.Offset - it.offset
		it.offset = it.rec.Offset
		if in.cfg.Progress != nil && done-lastProgress > 1<<20 {
			lastProgress = done
			in.cfg.Progress(Progress{Phase: "replay", Done: done, Total: total})
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
		in.cfg.Progress(Progress{Phase: "replay", Done: max(total, done), Total: total})
	}
	return nil
}

// packet counts, decodes and classifies one record, and hands it to the
// worker of its instance. Every record moves the one virtual clock (C9),
// whether or not it crosses the NAT. A record whose time the engine cannot
// count in is an error, before any engine sees it.
func (in *ingest) packet(file string, rec *capture.Record) error {
	res := in.res
	n := &res.Counts
	ts := rec.Time
	if ts.IsZero() { // a pcapng simple packet block has no time
		ts = res.End
	}
	if !reference.InRange(ts) {
		return fmt.Errorf("replay: %s packet %d: %w", file, rec.Number, &reference.RangeError{Got: ts})
	}
	n.Packets++
	if res.Start.IsZero() {
		res.Start = ts
	}
	res.End = ts // records arrive in time order (Reorder, and the merge of files)
	mark := Mark{File: file, Packet: int64(rec.Number), Time: ts}
	f := &in.f
	if in.sync {
		// One worker: decode straight into its frame.
		w := in.workers[0]
		f = &w.f
		if err := w.clock(ts); err != nil {
			return err
		}
	} else {
		s := in.slice()
		if s.start.IsZero() {
			s.start = res.Start
		}
		s.end = ts
	}
	malformed := false
	if err := frame.Decode(rec.LinkType, rec.Data, f); err != nil {
		if f.Network != frame.IPv4 || !f.Src.IsValid() || !f.Dst.IsValid() {
			// Not even the addresses: the frame cannot be given to a NAT.
			n.Cut++
			return in.unreadable(mark)
		}
		malformed = true // the IPv4 header is whole: the NAT drops it
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
		} else if f.Quoted && f.QuotedSrc.Addr() == f.Dst && f.QuotedSrc.Port() >= in.firstPort {
			// An ICMP error quoting a packet the NAT sent (R6, L10): its
			// quoted source port names the instance.
			inst = max(in.owner[fi][f.QuotedSrc.Port()], 0)
		}
	case toInst && !fromInst:
		n.Replies++
		kind, inst = kindReply, dstInst
	default:
		n.NotThroughNAT++
		return nil
	}
	if sh := in.cfg.Shard; sh != nil && !sh.Owns(int(inst)) {
		return nil // another machine's instance (--shard); its time still moved the clock
	}
	if in.sync {
		w := in.workers[0]
		it := &in.one
		*it = item{mark: mark, linkType: uint16(rec.LinkType), kind: kind, malformed: malformed, length: rec.Length}
		data := rec.Data
		if w.outside {
			// The worker rewrites the packet it translates, in place: not
			// in the Reader's bytes, which may be a read-only mapping.
			in.scratch = append(in.scratch[:0], data...)
			data = in.scratch
		}
		ev, err := w.one(it, data)
		if err != nil {
			return err
		}
		return in.out.item(it, data, ev)
	}
	wi := int(inst) % len(in.workers)
	s := in.cur
	b := s.batches[wi]
	start := len(b.arena)
	b.arena = append(b.arena, rec.Data...)
	b.items = append(b.items, item{mark: mark, linkType: uint16(rec.LinkType), kind: kind, malformed: malformed,
		length: rec.Length, start: start, end: len(b.arena)})
	s.order = append(s.order, uint8(wi))
	if len(s.order) >= sliceItems || len(b.arena) >= sliceBytes {
		in.dispatch()
	}
	return nil
}

// unreadable reports a record whose link or IPv4 header is cut or
// impossible: no NAT can be given it, so the ingest itself records it as
// dropped (malformed), with an event naming the packet.
func (in *ingest) unreadable(m Mark) error {
	in.res.Drops[reference.DropMalformed.String()]++
	if in.out.events == nil {
		return nil
	}
	ev := reference.Event{Time: m.Time, Kind: reference.PacketDropped, Instance: -1, Drop: reference.DropMalformed}
	if in.sync {
		in.ev = appendEvent(in.ev[:0], m.File, m.Packet, ev)
		return in.out.writeEvents(in.ev)
	}
	s := in.cur
	start := len(s.readerEv)
	s.readerEv = appendEvent(s.readerEv, m.File, m.Packet, ev)
	s.reader = append(s.reader, readerItem{t: m.Time.UnixNano(), evStart: start, evEnd: len(s.readerEv)})
	s.order = append(s.order, readerWorker)
	return nil
}

// slice returns the slice being filled, taking a free one if needed.
func (in *ingest) slice() *slice {
	if in.cur == nil {
		in.cur = <-in.free
	}
	return in.cur
}

// dispatch hands the slice being filled to every worker (each processes
// its own batch, then runs its clock to the slice's end) and queues it for
// the writer.
func (in *ingest) dispatch() {
	s := in.cur
	if s == nil {
		return
	}
	in.cur = nil
	s.pending.Add(len(in.workers))
	in.written <- s
	for _, w := range in.workers {
		w.in <- s
	}
}

// failure returns the error that stopped the writer, if any.
func (in *ingest) failure() error {
	if in.sync {
		return in.out.err
	}
	if e := in.failed.Load(); e != nil {
		return *e
	}
	return nil
}
