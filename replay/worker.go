package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/frame"
)

// worker runs one engine over the packets of its instances, in the input's
// order, and leaves in each item what the writer needs.
type worker struct {
	e       *reference.Engine
	in, out chan *batch
	err     error

	counts  Counts
	firstEx [][2]*Mark

	outside bool          // an output capture is written: rewrite packets and comment them
	enc     *json.Encoder // nil without an events file
	evbuf   bytes.Buffer
	comment []byte
	emit    []reference.Packet
	cur     *item
	f       frame.Frame // the packet being processed

	failed *atomic.Pointer[error] // the ingest's, in a pipeline

	samples    []Sample
	nextSample time.Time
	sampleStep time.Duration
	owned      func(inst int) bool
}

func newWorker(ec reference.Config, instances int, outside, events bool) (*worker, error) {
	w := &worker{firstEx: make([][2]*Mark, instances), outside: outside}
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

func (w *worker) observe(ev reference.Event) {
	m := w.cur.mark
	if ev.Kind == reference.Exhausted && ev.Instance >= 0 && ev.Instance < len(w.firstEx) {
		if p := protoIndex(ev.Proto); w.firstEx[ev.Instance][p] == nil {
			w.firstEx[ev.Instance][p] = &m
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
		_ = encodeEvent(w.enc, m.Packet, ev) // a bytes.Buffer does not fail
	}
}

// run processes batches until its input is closed, then closes its output.
func (w *worker) run() {
	defer close(w.out)
	for b := range w.in {
		if w.err == nil {
			w.batch(b)
			if w.err != nil && w.failed != nil {
				w.failed.CompareAndSwap(nil, &w.err)
			}
		}
		w.out <- b
	}
}

func (w *worker) batch(b *batch) {
	b.events = b.events[:0]
	for i := range b.items {
		it := &b.items[i]
		if err := w.decode(it, b.arena[it.start:it.end]); err != nil {
			w.err = err
			return
		}
		ev, err := w.one(it, b.arena[it.start:it.end])
		if err != nil {
			w.err = err
			return
		}
		if len(ev) > 0 {
			it.evStart = len(b.events)
			b.events = append(b.events, ev...)
			it.evEnd = len(b.events)
		}
	}
}

// decode decodes the item's bytes into w.f. The ingest decoded the same
// bytes without error, so an error here is a bug, reported as such.
func (w *worker) decode(it *item, data []byte) error {
	if err := frame.Decode(layers.LinkType(it.linkType), data, &w.f); err != nil {
		return fmt.Errorf("replay: %s packet %d: decoded once, not twice: %w", it.mark.File, it.mark.Packet, err)
	}
	return nil
}

// one processes item it, whose bytes are data and whose frame is in w.f,
// and returns its events (JSON lines), valid until the next call.
func (w *worker) one(it *item, data []byte) ([]byte, error) {
	w.cur = it
	w.comment = w.comment[:0]
	w.emit = w.emit[:0]
	w.evbuf.Reset()
	if err := w.packet(it, data); err != nil {
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
	w.sample(ts)
	var p reference.Packet
	switch it.kind {
	case kindOutbound:
		p = f.Packet(ts, reference.Outbound)
	case kindOutside:
		p = f.Packet(ts, reference.Inbound)
	case kindReply:
		// The reply enters the NAT at its flow's SNAT endpoint.
		v, snat, emit, err := w.e.ProcessReply(f.Packet(ts, reference.Inbound), w.emit)
		w.emit = emit
		if err != nil {
			return err
		}
		if !snat.IsValid() && v.Reason == reference.DropUnsolicited {
			w.counts.RepliesNoFlow++
		}
		return w.verdict(it, data, v, snat)
	}
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
	default:
		w.counts.Dropped++
	}
	if v.Action != reference.Translated || !w.outside {
		return nil
	}
	it.write = true
	if it.kind == kindOutbound {
		return frame.RewriteSource(data, &w.f, snat)
	}
	return frame.RewriteDest(data, &w.f, snat)
}

// maxSamples bounds the plot's time series: past it, every other sample is
// dropped and the step doubles.
const maxSamples = 4096

// sample records the SNAT ports in use of this worker's instances when
// time passes the next sample point; other instances read -1.
func (w *worker) sample(ts time.Time) {
	if w.sampleStep == 0 {
		w.sampleStep = time.Second
		w.nextSample = ts
	}
	if ts.Before(w.nextSample) {
		return
	}
	st := w.e.Stats()
	s := Sample{Time: ts, InUse: make([][2]int, len(w.firstEx))}
	for i := range s.InUse {
		s.InUse[i] = [2]int{-1, -1}
	}
	for _, x := range st {
		if x.Instance < len(s.InUse) && w.owned(x.Instance) {
			s.InUse[x.Instance][protoIndex(x.Proto)] = x.InUse
		}
	}
	w.samples = append(w.samples, s)
	w.nextSample = ts.Add(w.sampleStep)
	if len(w.samples) >= maxSamples {
		kept := w.samples[:0]
		for i, s := range w.samples {
			if i%2 == 0 {
				kept = append(kept, s)
			}
		}
		w.samples = kept
		w.sampleStep *= 2
	}
}
