package replay

import (
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/replay/frame"
)

// output writes, in time order, the outside view and the events: each
// packet of the input with its events, and between packets the events that
// timers caused (C9).
type output struct {
	res    *Result
	path   string
	file   io.Writer       // nil: no outside view
	closer io.Closer       // the file's, when Run opened it
	w      *capture.Writer // created with the first packet written
	ifaces map[ifaceKey]int
	// lastKey and lastIface cache the last interface looked up: captures
	// rarely mix link types, and the map lookup showed in the profile.
	lastKey   ifaceKey
	lastIface int
	bothSides bool   // Config.BothSides
	evFrame   []byte // event lines with their frame
	events    io.Writer

	rst      []byte
	comments [1]string // reused as Record.Comments
	pos      []int     // per worker: the next item of its batch
	apos     []int     // per worker: the next atom of its batch
	// err is the first write error: every later write is skipped, and the
	// ingest stops reading at it.
	err error
}

// run writes the slices in the order the ingest dispatched them, each once
// every worker is done with it, and recycles them. The first write error
// is also published in failed, for the ingest to stop at.
func (o *output) run(written <-chan *slice, workers int, free chan<- *slice, failed *atomic.Pointer[error]) error {
	o.pos, o.apos = make([]int, workers), make([]int, workers)
	for s := range written {
		s.pending.Wait()
		if o.err == nil {
			o.slice(s)
			if o.err != nil {
				failed.CompareAndSwap(nil, &o.err)
			}
		}
		s.reset()
		free <- s
	}
	return o.err
}

// slice writes the items of s in input order; before each, the atoms of
// every worker due by its time, in (time, instance) order; after the last,
// the atoms that remain (the clock ran to the slice's end, or past it when
// drained).
func (o *output) slice(s *slice) {
	clear(o.pos)
	clear(o.apos)
	r := 0
	for _, wi := range s.order {
		if wi == readerWorker {
			ri := &s.reader[r]
			r++
			o.atomsUpTo(s, ri.t)
			_ = o.writeEvents(s.readerEv[ri.evStart:ri.evEnd])
			continue
		}
		b := s.batches[wi]
		it := &b.items[o.pos[wi]]
		o.pos[wi]++
		o.atomsUpTo(s, it.mark.Time.UnixNano())
		_ = o.item(it, b.arena[it.start:it.end], b.events[it.evStart:it.evEnd])
	}
	o.atomsUpTo(s, 1<<63-1)
}

// atomsUpTo writes every atom of s not yet written whose time is at or
// before t, merging the workers' lists by (time, instance). An instance
// belongs to one worker, and each worker's list is in that order already.
func (o *output) atomsUpTo(s *slice, t int64) {
	for {
		best := -1
		var ba *atom
		for wi, b := range s.batches {
			if o.apos[wi] == len(b.atoms) {
				continue
			}
			a := &b.atoms[o.apos[wi]]
			if a.t <= t && (ba == nil || a.t < ba.t || (a.t == ba.t && a.inst < ba.inst)) {
				best, ba = wi, a
			}
		}
		if best < 0 {
			return
		}
		o.apos[best]++
		b := s.batches[best]
		_ = o.atom(ba, b.atomEv[ba.evStart:ba.evEnd])
	}
}

// writeEvents writes event lines.
func (o *output) writeEvents(events []byte) error {
	if o.err != nil || o.events == nil || len(events) == 0 {
		return o.err
	}
	if _, err := o.events.Write(events); err != nil {
		o.err = fmt.Errorf("replay: write events: %w", err)
	}
	return o.err
}

// atom writes the events a timer caused and the RST it sent toward the
// server, if any (B14); the events name the RST's frame.
func (o *output) atom(a *atom, events []byte) error {
	write := a.rst && o.file != nil
	if write {
		events = o.withFrame(events, o.res.Counts.Written+1)
	}
	if err := o.writeEvents(events); err != nil {
		return err
	}
	if write {
		o.err = o.writeRST(time.Unix(0, a.t).UTC(), a.tuple, reference.B14)
	}
	return o.err
}

// withFrame returns the event lines of events, each naming frame, the
// packet's frame in the output capture.
func (o *output) withFrame(events []byte, frame int64) []byte {
	if len(events) == 0 || o.events == nil {
		return events
	}
	o.evFrame = appendWithFrame(o.evFrame[:0], events, frame)
	return o.evFrame
}

// Sides of the NAT, for the interfaces of the output capture.
const (
	outsideSide = iota
	insideSide
)

// item writes one processed packet, data, and its events, which name the
// packet's (first) frame in the output capture. Without BothSides that is
// the translated packet, on the outside; with it, the packet as recorded
// and as translated, on the inside and the outside in the order they
// crossed the NAT, or, when the NAT did not translate it, as recorded with
// a comment saying why.
func (o *output) item(it *item, data, events []byte) error {
	if o.file == nil {
		return o.writeEvents(events)
	}
	for _, p := range it.emitted {
		if p.Dir != reference.Outbound || p.Tuple.Proto != reference.TCP {
			continue // a RST toward the inside is not part of the outside view
		}
		if o.err = o.writeRST(p.Time, p.Tuple, it.rstBy); o.err != nil {
			return o.err
		}
	}
	it.emitted = nil
	shown := it.write || (o.bothSides && it.orig != nil)
	if shown {
		events = o.withFrame(events, o.res.Counts.Written+1)
	}
	if err := o.writeEvents(events); err != nil {
		return err
	}
	if !shown {
		return nil
	}
	comment := it.comment
	it.comment = ""
	if !o.bothSides || it.orig == nil {
		return o.record(it, outsideSide, data, comment)
	}
	next := "translated: frame " + strconv.FormatInt(o.res.Counts.Written+2, 10)
	switch {
	case !it.write:
		side := insideSide
		if it.kind == kindOutside {
			side = outsideSide
		}
		return o.record(it, side, it.orig, it.note)
	case it.kind == kindOutbound:
		if o.record(it, insideSide, it.orig, next) != nil {
			return o.err
		}
		return o.record(it, outsideSide, data, comment)
	case it.kind == kindReply:
		// Recorded on the inside; data is what the server sent to the
		// flow's SNAT endpoint, which crossed the NAT first.
		if o.record(it, outsideSide, data, "the server's packet to the SNAT endpoint; "+next) != nil {
			return o.err
		}
		return o.record(it, insideSide, it.orig, "as recorded")
	default: // recorded on the outside; data is its translation
		if o.record(it, outsideSide, it.orig, next) != nil {
			return o.err
		}
		return o.record(it, insideSide, data, "")
	}
}

// record writes one frame of item it on a side of the NAT.
func (o *output) record(it *item, side int, data []byte, comment string) error {
	idx, err := o.iface(layers.LinkType(it.linkType), side)
	if err != nil {
		o.err = fmt.Errorf("replay: write %s: %w", o.path, err)
		return o.err
	}
	rec := capture.Record{Number: int(it.mark.Packet), Time: it.mark.Time, Interface: idx, Data: data, Length: it.length}
	if comment != "" {
		o.comments[0] = comment
		rec.Comments = o.comments[:]
	}
	if err := o.w.Write(rec); err != nil {
		o.err = fmt.Errorf("replay: write %s: %w", o.path, err)
		return o.err
	}
	o.res.Counts.Written++
	return nil
}

// writeRST writes a RST the NAT sent toward a server (B14, G6: by), as a raw IPv4
// packet.
func (o *output) writeRST(t time.Time, tu reference.Tuple, by reference.Behavior) error {
	var err error
	if o.rst, err = frame.AppendRST(o.rst[:0], tu, 0, true, 0); err != nil {
		return nil // not an IPv4 TCP tuple: nothing to write
	}
	idx, err := o.iface(layers.LinkTypeRaw, outsideSide)
	if err != nil {
		return fmt.Errorf("replay: write %s: %w", o.path, err)
	}
	if err := o.w.Write(capture.Record{Time: t, Interface: idx, Data: o.rst,
		Comments: []string{rstComment(by)}}); err != nil {
		return fmt.Errorf("replay: write %s: %w", o.path, err)
	}
	o.res.Counts.Written++
	return nil
}

// rstComment is the comment of a RST the NAT sent, naming the item that
// sent it.
func rstComment(by reference.Behavior) string {
	if by == reference.B14 || by == reference.NoBehavior {
		return "B14 RST sent by the NAT (tcpResetOnIdle)"
	}
	return by.String() + " RST sent by the NAT (" + by.Title() + ")"
}

// iface returns the interface of link type lt on a side of the NAT,
// adding it to the capture the first time. Without BothSides every
// interface is the outside's.
func (o *output) iface(lt layers.LinkType, side int) (int, error) {
	key := ifaceKey{lt, side}
	if key == o.lastKey && o.w != nil {
		return o.lastIface, nil
	}
	if i, ok := o.ifaces[key]; ok {
		o.lastKey, o.lastIface = key, i
		return i, nil
	}
	name := "natcheck-outside-" + lt.String()
	if side == insideSide {
		name = "natcheck-inside-" + lt.String()
	}
	ci := capture.Interface{Name: name, LinkType: lt}
	if o.w == nil {
		w, err := capture.NewWriter(o.file, ci)
		if err != nil {
			return 0, err
		}
		o.w = w
		o.ifaces[key] = 0
		o.lastKey, o.lastIface = key, 0
		return 0, nil
	}
	i, err := o.w.AddInterface(ci)
	if err != nil {
		return 0, err
	}
	o.ifaces[key] = i
	o.lastKey, o.lastIface = key, i
	return i, nil
}

// ifaceKey names an interface of the output capture.
type ifaceKey struct {
	lt   layers.LinkType
	side int
}

// close finishes the output file; one with no packet still gets a section
// and an interface, so that it is a valid pcapng file.
func (o *output) close() error {
	err := o.finish()
	if o.closer != nil {
		if cerr := o.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func (o *output) finish() error {
	if o.w == nil {
		if _, err := o.iface(layers.LinkTypeRaw, outsideSide); err != nil {
			return err
		}
	}
	return o.w.Flush()
}
