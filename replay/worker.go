package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/frame"
)

// The pipeline's sizes: slices held at once (reading, processing,
// writing), and how many items or bytes of input make a slice.
const (
	slicesInFlight = 6
	sliceItems     = 4096
	sliceBytes     = 4 << 20
)

// slice is a run of consecutive input records, handed to every worker at
// once. Each worker processes the items of its own batch, then runs its
// engine's clock to end, the time of the slice's last record (C9: every
// engine sees time advance with every record, whichever worker owns it).
// The writer waits until every worker is done with the slice, then writes
// its items in input order, each preceded by the timer events of every
// worker due by its time.
type slice struct {
	batches []*batch // one per worker
	// order is the worker of each item in input order (readerWorker for
	// a record the ingest reports itself, in reader).
	order    []uint8
	reader   []readerItem
	readerEv []byte
	// start is the replay's first record time: the origin of the sample
	// grid, the same for every worker.
	start, end time.Time
	// last marks the final slice: after it, each worker's clock stops at
	// end, and, with drain, runs on until every flow has ended.
	last, drain bool
	pending     sync.WaitGroup
}

// batch is one worker's part of a slice: its items with their bytes and
// events, and the events that its engine's timers caused (atoms).
type batch struct {
	items  []item
	arena  []byte
	orig   []byte // packets as recorded, with Config.BothSides
	events []byte
	atoms  []atom
	atomEv []byte
}

// readerItem is a record the ingest reports itself: its time and event.
type readerItem struct {
	t              int64
	evStart, evEnd int
}

// atom is one event a timer caused (B10–B12 releases, B14 RSTs at idle
// expiry), with no packet of the input behind it: what the writer merges
// between items, in (time, instance) order. Within one instance the
// engine fires timers in a fixed order (reference: by instance, then flow),
// so the merge gives the order of one engine holding every instance.
type atom struct {
	t              int64
	inst           int32
	evStart, evEnd int
	// rst is set for the RST the NAT sent toward the server (B14), whose
	// tuple is written to the outside view.
	rst   bool
	tuple reference.Tuple
}

func newSlice(workers int) *slice {
	s := &slice{batches: make([]*batch, workers)}
	for i := range s.batches {
		s.batches[i] = &batch{}
	}
	return s
}

func (s *slice) reset() {
	for _, b := range s.batches {
		b.items, b.arena, b.orig, b.events, b.atoms, b.atomEv = b.items[:0], b.arena[:0], b.orig[:0], b.events[:0], b.atoms[:0], b.atomEv[:0]
	}
	s.order, s.reader, s.readerEv = s.order[:0], s.reader[:0], s.readerEv[:0]
	s.start, s.end, s.last, s.drain = time.Time{}, time.Time{}, false, false
}

// worker runs one engine over the packets of its instances (instance i
// belongs to worker i mod n), in the input's order, and over the time of
// every record.
type worker struct {
	idx, nw int
	e       *reference.Engine
	in      chan *slice
	err     error

	counts  Counts
	firstEx [][2]*Mark

	outside bool // an output capture is written: rewrite packets and comment them
	// bothSides keeps each packet as recorded beside its translation, and
	// notes why a packet was dropped (Config.BothSides).
	bothSides bool
	scratch   []byte        // the packet as recorded, with one worker
	enc       *json.Encoder // nil without an events file
	evbuf     bytes.Buffer
	comment   []byte
	emit      []reference.Packet
	// cur is the packet being processed; nil while timers fire.
	cur *item
	f   frame.Frame // the packet being processed
	wf  frame.Frame // a packet being warmed

	// direct, with one worker, is the output that timer events go to at
	// once; in the pipeline they go to b, the batch being processed.
	direct *output
	b      *batch

	samples    []Sample
	spare      [][][2]int32 // figures of samples dropped by coarsen, for reuse
	begun      bool
	start      time.Time
	nextSample time.Time
	sampleStep time.Duration
	// inUse are the SNAT ports in use of this worker's instances (inUse[j]
	// is instance idx + j·nw), kept up to date by observe: the engine
	// changes an instance's ports in use only with an event naming it,
	// whose figures observe reads then (the instance's statistics are in
	// the cache: the engine has just updated them). A sample copies them,
	// rather than reading the engine for every instance (20,000 in issue
	// 11's class).
	inUse [][2]int32

	// atEnd are the engine's statistics when its clock stopped at the last
	// record's time; drained is set when the clock then ran on (--drain).
	atEnd     []reference.InstanceStats
	drained   bool
	drainedTo time.Time
}

func newWorker(ec reference.Config, idx, nw, instances int, outside, bothSides, events bool) (*worker, error) {
	w := &worker{idx: idx, nw: nw, firstEx: make([][2]*Mark, instances), outside: outside, bothSides: outside && bothSides,
		inUse: make([][2]int32, (instances-idx+nw-1)/nw)}
	if events {
		w.enc = json.NewEncoder(&w.evbuf)
	}
	ec.Observer = w.observe
	e, err := reference.New(ec)
	if err != nil {
		return nil, err
	}
	w.e = e
	return w, nil
}

func (w *worker) owns(inst int) bool { return inst%w.nw == w.idx }

func (w *worker) observe(ev reference.Event) {
	// The engine changes an instance's ports in use only with an event of
	// these kinds naming it, sent once the change is made (a replay never
	// changes the pool); a reused mapping takes a port already in use, and
	// drops, exhaustions, pick-ups, RSTs and hairpins change nothing.
	switch ev.Kind {
	case reference.MappingCreated, reference.Released:
		if i := ev.Instance; i >= 0 && i < len(w.firstEx) && w.owns(i) {
			tcp, udp := w.e.InUse(i)
			w.inUse[(i-w.idx)/w.nw] = [2]int32{int32(tcp), int32(udp)}
		}
	}
	if w.cur == nil {
		w.timerEvent(ev)
		return
	}
	m := &w.cur.mark
	if ev.Kind == reference.Exhausted && ev.Instance >= 0 && ev.Instance < len(w.firstEx) {
		if p := protoIndex(ev.Proto); w.firstEx[ev.Instance][p] == nil {
			first := *m // a copy on the heap for the first exhaustion alone, not for every event
			w.firstEx[ev.Instance][p] = &first
		}
	}
	if w.outside && (ev.Kind == reference.MappingCreated || ev.Kind == reference.MappingReused || ev.Kind == reference.PickedUp) {
		// One comment per packet, built without fmt: packets that open
		// flows are a large share of a busy capture.
		b := w.comment
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
		w.comment = ev.SNAT.AppendTo(b)
	}
	if w.enc != nil {
		_ = encodeEvent(w.enc, m.File, m.Packet, ev) // a bytes.Buffer does not fail
	}
}

// timerEvent takes an event that a timer caused: written at once with one
// worker, kept as an atom of the batch otherwise.
func (w *worker) timerEvent(ev reference.Event) {
	if !w.outside && w.enc == nil {
		return
	}
	a := atom{t: ev.Time.UnixNano(), inst: int32(ev.Instance)}
	if ev.Kind == reference.ResetSent && w.outside {
		a.rst, a.tuple = true, reference.Tuple{Proto: reference.TCP, Src: ev.SNAT, Dst: ev.Remote}
	}
	var evb []byte
	if w.enc != nil {
		w.evbuf.Reset()
		_ = encodeEvent(w.enc, "", 0, ev)
		evb = w.evbuf.Bytes()
	}
	if w.direct != nil {
		_ = w.direct.atom(&a, evb) // an error stays in the output; the ingest stops at it
		return
	}
	a.evStart = len(w.b.atomEv)
	w.b.atomEv = append(w.b.atomEv, evb...)
	a.evEnd = len(w.b.atomEv)
	w.b.atoms = append(w.b.atoms, a)
}

// run processes slices until its input is closed.
func (w *worker) run() {
	for s := range w.in {
		if w.err == nil {
			w.err = w.slice(s)
		}
		s.pending.Done()
	}
}

// slice processes the worker's batch of s, then runs the clock to the
// slice's end (and, for the last slice, finishes).
func (w *worker) slice(s *slice) error {
	b := s.batches[w.idx]
	w.b = b
	if !w.begun && !s.start.IsZero() {
		w.begin(s.start)
	}
	for i := range b.items {
		it := &b.items[i]
		if i%warmBatch == 0 && w.e.Flows() >= warmFlows {
			w.warm(b, b.items[i:min(i+warmBatch, len(b.items))])
		}
		if err := w.clock(it.mark.Time); err != nil {
			return err
		}
		data := b.arena[it.start:it.end]
		if err := frame.Decode(layers.LinkType(it.linkType), data, &w.f); err != nil && !it.malformed {
			return fmt.Errorf("replay: %s packet %d: decoded once, not twice: %w", it.mark.File, it.mark.Packet, err)
		}
		ev, err := w.one(it, data)
		if err != nil {
			return err
		}
		if len(ev) > 0 {
			it.evStart = len(b.events)
			b.events = append(b.events, ev...)
			it.evEnd = len(b.events)
		}
	}
	if s.last {
		return w.finish(s.end, s.drain)
	}
	if !s.end.IsZero() {
		return w.clock(s.end)
	}
	return nil
}

// With more live flows than the caches hold, each packet's flow lookup
// misses twice (index, then flow) and the engine waits for each in turn;
// warming a batch first lets the CPU fetch the batch's flows in parallel
// (reference.Engine.Warm: 447 → 288 ns a packet over 1,000,000 flows in
// random order, BenchmarkEstablished). Below warmFlows the flows stay in
// the caches and warming would only decode each packet twice.
const (
	warmBatch = 16
	warmFlows = 1 << 16
)

// warm decodes the items (in a frame of its own) and warms the engine for
// each, read-only; the items are then processed as usual.
func (w *worker) warm(b *batch, items []item) {
	for i := range items {
		it := &items[i]
		if frame.Decode(layers.LinkType(it.linkType), b.arena[it.start:it.end], &w.wf) != nil {
			continue
		}
		p := w.wf.Packet(it.mark.Time, reference.Outbound)
		switch it.kind {
		case kindOutbound:
			w.e.Warm(&p)
		case kindOutside:
			p.Dir = reference.Inbound
			w.e.Warm(&p)
		case kindReply:
			p.Dir = reference.Inbound
			w.e.WarmReply(&p)
		}
	}
}

// begin starts the sample grid at the replay's first record time.
func (w *worker) begin(start time.Time) {
	w.begun = true
	w.start = start
	w.sampleStep = firstSampleStep
	w.nextSample = start
}

// clock runs the engine's clock to t, as a record at t is about to be
// handled or a slice ended at t: the timers due by t fire, and the samples
// of the grid before t are taken, each after the timers due by its time.
func (w *worker) clock(t time.Time) error {
	if !w.begun {
		w.begin(t)
	}
	// A gap longer than the grid can hold coarsens it first, rather
	// than sampling every point only to drop most of them.
	for limit := sampleLimit(len(w.firstEx)); len(w.samples)+int(t.Sub(w.nextSample)/w.sampleStep) > limit; {
		w.coarsen()
	}
	for w.nextSample.Before(t) {
		if err := w.advance(w.nextSample); err != nil {
			return err
		}
		w.sample()
	}
	return w.advance(t)
}

func (w *worker) advance(t time.Time) error {
	w.cur = nil
	emit, err := w.e.Advance(t, w.emit[:0])
	w.emit = emit
	w.counts.Emitted += int64(len(emit))
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}

// finish stops the clock at end, the last record's time (C9): the timers
// due by then fire, the last samples are taken, and the statistics are
// kept as they are at the end. With drain, the clock then runs on until
// every flow has ended; those releases are reported apart.
func (w *worker) finish(end time.Time, drain bool) error {
	if end.IsZero() {
		return nil // no record was read
	}
	if err := w.clock(end); err != nil {
		return err
	}
	for !w.nextSample.After(end) {
		w.sample()
	}
	if n := len(w.samples); n == 0 || w.samples[n-1].Time.Before(end) {
		w.sampleAt(end)
	}
	w.atEnd = w.e.Stats()
	if !drain {
		return nil
	}
	w.cur = nil
	to, emit, err := w.e.Drain(w.emit[:0])
	w.emit = emit
	w.counts.Emitted += int64(len(emit))
	if err != nil {
		return fmt.Errorf("replay: drain: %w", err)
	}
	w.drained, w.drainedTo = true, to
	return nil
}

// one processes item it, whose bytes are data and whose frame is in w.f,
// and returns its events (JSON lines), valid until the next call.
func (w *worker) one(it *item, data []byte) ([]byte, error) {
	w.cur = it
	w.comment = w.comment[:0]
	w.emit = w.emit[:0]
	w.evbuf.Reset()
	err := w.packet(it, data)
	w.cur = nil
	if err != nil {
		return nil, fmt.Errorf("replay: %s packet %d: %w", it.mark.File, it.mark.Packet, err)
	}
	if len(w.comment) > 0 {
		it.comment = string(w.comment)
	}
	if len(w.emit) > 0 {
		it.emitted = append([]reference.Packet(nil), w.emit...)
		w.counts.Emitted += int64(len(w.emit))
	}
	return w.evbuf.Bytes(), nil
}

// packet runs one packet through the engine and, when it is translated,
// rewrites data into the outside view: an outbound packet as it left the
// NAT (new source), a reply as the server sent it (to the SNAT IP:port).
func (w *worker) packet(it *item, data []byte) error {
	f := &w.f
	ts := it.mark.Time
	var p reference.Packet
	switch it.kind {
	case kindOutbound:
		p = f.Packet(ts, reference.Outbound)
	case kindOutside:
		p = f.Packet(ts, reference.Inbound)
	case kindReply:
		// The reply enters the NAT at its flow's SNAT endpoint.
		rp := f.Packet(ts, reference.Inbound)
		rp.Malformed = it.malformed
		v, snat, emit, err := w.e.ProcessReply(rp, w.emit)
		w.emit = emit
		if err != nil {
			return err
		}
		if !snat.IsValid() && v.Reason == reference.DropUnsolicited {
			w.counts.RepliesNoFlow++ // C8
		}
		return w.verdict(it, data, v, snat)
	}
	p.Malformed = it.malformed
	v, emit, err := w.e.Process(p, w.emit)
	w.emit = emit
	if err != nil {
		return err
	}
	snat := p.Tuple.Dst // an inbound packet recorded on the outside
	if p.Dir == reference.Outbound {
		snat = v.Tuple.Src
	}
	return w.verdict(it, data, v, snat)
}

// verdict counts v and, when the packet was translated, rewrites data into
// the outside view: an outbound packet as it left the NAT (from snat), a
// reply as the server sent it (to snat).
func (w *worker) verdict(it *item, data []byte, v reference.Verdict, snat netip.AddrPort) error {
	switch v.Action {
	case reference.Translated:
		w.counts.Translated++
	case reference.Reset:
		w.counts.Reset++
		it.rstBy = v.Behavior
	case reference.Hairpinned:
		w.counts.Translated++ // translated twice, and never on the outside
	default:
		w.counts.Dropped++
	}
	if w.bothSides {
		it.orig = w.keep(data)
		if v.Action != reference.Translated {
			it.note = dropNote(v)
		}
	}
	if v.Action != reference.Translated || !w.outside {
		return nil
	}
	it.write = true
	if v.Embedded != nil {
		return w.quoted(it, data, v, snat)
	}
	switch {
	case it.kind == kindOutbound:
		return frame.RewriteSource(data, &w.f, snat)
	case it.kind == kindOutside && w.bothSides:
		// Recorded on the outside: its translation is the inside packet,
		// to the instance.
		return frame.RewriteDest(data, &w.f, v.Tuple.Dst)
	}
	return frame.RewriteDest(data, &w.f, snat)
}

// quoted rewrites a translated ICMP error (R6, L10) into the outside view,
// its outer header and the packet it quotes: one from inside leaves from
// the SNAT address quoting a packet to the SNAT endpoint (v's); a reply
// recorded inside reached the NAT at the SNAT address quoting a packet
// from the SNAT endpoint snat; one recorded outside (two-sided) is
// translated to the inside endpoint.
func (w *worker) quoted(it *item, data []byte, v reference.Verdict, snat netip.AddrPort) error {
	f := &w.f
	switch {
	case it.kind == kindOutbound:
		if err := frame.RewriteSource(data, f, v.Tuple.Src); err != nil {
			return err
		}
		return frame.RewriteQuotedDest(data, f, v.Embedded.Dst)
	case it.kind == kindOutside && w.bothSides:
		if err := frame.RewriteDest(data, f, v.Tuple.Dst); err != nil {
			return err
		}
		return frame.RewriteQuotedSource(data, f, v.Embedded.Src)
	case it.kind == kindOutside:
		return nil // recorded outside: the outside view already
	}
	if err := frame.RewriteDest(data, f, netip.AddrPortFrom(snat.Addr(), f.DstPort)); err != nil {
		return err
	}
	return frame.RewriteQuotedSource(data, f, snat)
}

// keep copies data, the packet as recorded, before it is rewritten: into
// the batch (a pipeline) or the worker's scratch buffer (one worker, whose
// packet is written at once).
func (w *worker) keep(data []byte) []byte {
	if w.direct != nil || w.b == nil {
		w.scratch = append(w.scratch[:0], data...)
		return w.scratch
	}
	n := len(w.b.orig)
	w.b.orig = append(w.b.orig, data...)
	return w.b.orig[n:len(w.b.orig):len(w.b.orig)]
}

// dropNote is the comment of a packet the NAT did not translate: what it
// did, why, and the behaviour that says so.
func dropNote(v reference.Verdict) string {
	if v.Action == reference.Hairpinned {
		return "hairpinned by the NAT (R7: " + reference.R7.Title() + "): delivered to " + v.Tuple.Dst.String() + " from " + v.Tuple.Src.String()
	}
	what := "dropped by the NAT: "
	if v.Action == reference.Reset {
		what = "answered with a RST by the NAT: "
	}
	what += v.Reason.String()
	if v.Behavior != reference.NoBehavior {
		what += " (" + v.Behavior.String() + ": " + v.Behavior.Title() + ")"
	}
	return what
}

// The plot's time series is a grid from the first record's time, one
// point a millisecond at first (firstSampleStep); when it would pass
// maxSamples points, every other point goes and the step doubles. sampleBudget bounds the
// instance × point figures kept, so that memory does not grow with the
// pool: 20,000 instances get 100 points.
const (
	// firstSampleStep is fine enough that a burst in a short capture rises
	// where it happens, not at the next whole second; a longer capture
	// coarsens the grid as it goes.
	firstSampleStep = time.Millisecond
	maxSamples      = 4096
	minSamples      = 64
	sampleBudget    = 2 << 20
)

// sampleLimit is the number of grid points kept for n instances.
func sampleLimit(n int) int {
	return max(minSamples, min(maxSamples, sampleBudget/max(n, 1))) &^ 1
}

// sample records, at the grid point nextSample, the SNAT ports in use of
// this worker's instances, and moves the grid on. Every worker samples the
// same grid, so their samples merge point by point.
func (w *worker) sample() {
	w.sampleAt(w.nextSample)
	w.nextSample = w.nextSample.Add(w.sampleStep)
	if len(w.samples) >= sampleLimit(len(w.firstEx)) {
		w.coarsen()
	}
}

// coarsen keeps every other grid point and doubles the step; the next
// point is the first of the new grid not yet taken.
func (w *worker) coarsen() {
	kept := w.samples[:0]
	for i, s := range w.samples {
		if i%2 == 0 {
			kept = append(kept, s)
		} else {
			// Its figures are reused by the next samples: with 20,000
			// instances a sample is 160 kB, and the grid of a short
			// capture coarsens many times.
			w.spare = append(w.spare, s.InUse)
		}
	}
	w.samples = kept
	w.sampleStep *= 2
	w.nextSample = w.start.Add(time.Duration(len(w.samples)) * w.sampleStep)
}

// sampleAt records the SNAT ports in use of this worker's instances at t:
// InUse[j] is instance idx + j·nw (mergeSamples puts the workers' figures
// together), so that the samples of n workers cost those of one. The
// figures are w.inUse, which observe keeps up to date.
func (w *worker) sampleAt(t time.Time) {
	s := Sample{Time: t}
	if n := len(w.spare); n > 0 {
		s.InUse, w.spare = w.spare[n-1], w.spare[:n-1]
	} else {
		s.InUse = make([][2]int32, len(w.inUse))
	}
	copy(s.InUse, w.inUse)
	w.samples = append(w.samples, s)
}
