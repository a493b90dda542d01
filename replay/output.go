package replay

import (
	"fmt"
	"io"
	"os"

	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/replay/frame"
)

// output writes, in the input's order, the outside view and the events.
type output struct {
	res    *Result
	path   string
	file   *os.File
	w      *capture.Writer // created with the first packet written
	ifaces map[layers.LinkType]int
	// lastLT and lastIface cache the last interface looked up: captures
	// rarely mix link types, and the map lookup showed in the profile.
	lastLT    layers.LinkType
	lastIface int
	events    io.Writer

	rst      []byte
	comments [1]string // reused as Record.Comments
	err      error     // the first write error, in synchronous mode
}

// run takes the items in the order the ingest dispatched them, each from
// its worker's processed batches, and recycles the batches.
func (o *output) run(order <-chan []uint8, workers []*worker, free chan<- *batch) error {
	cur := make([]*batch, len(workers))
	var err error
	for ids := range order {
		for _, wi := range ids {
			b := cur[wi]
			if b == nil || b.next == len(b.items) {
				if b != nil {
					b.items, b.arena, b.next = b.items[:0], b.arena[:0], 0
					free <- b
				}
				var ok bool
				if b, ok = <-workers[wi].out; !ok {
					return fmt.Errorf("replay: worker %d ended early", wi)
				}
				cur[wi] = b
			}
			it := &b.items[b.next]
			b.next++
			if err == nil {
				err = o.item(it, b.arena[it.start:it.end], b.events[it.evStart:it.evEnd])
			}
		}
	}
	for wi, b := range cur {
		if b != nil {
			b.items, b.arena, b.next = b.items[:0], b.arena[:0], 0
			free <- b
		}
		for b := range workers[wi].out { // drain: nothing is left unless a worker failed
			b.items, b.arena, b.next = b.items[:0], b.arena[:0], 0
			free <- b
		}
	}
	return err
}

// batch writes every item of b, in order (synchronous mode); the first
// error is kept in o.err.
func (o *output) batch(b *batch) {
	for i := range b.items {
		it := &b.items[i]
		if o.err == nil {
			o.err = o.item(it, b.arena[it.start:it.end], b.events[it.evStart:it.evEnd])
		}
	}
}

// item writes one processed packet, data, and its events.
func (o *output) item(it *item, data, events []byte) error {
	if o.events != nil && len(events) > 0 {
		if _, err := o.events.Write(events); err != nil {
			return fmt.Errorf("replay: write events: %w", err)
		}
	}
	if o.file == nil {
		return nil
	}
	for _, p := range it.emitted {
		if err := o.writeRST(p); err != nil {
			return err
		}
	}
	it.emitted = nil
	if !it.write {
		return nil
	}
	idx, err := o.iface(layers.LinkType(it.linkType))
	if err != nil {
		return fmt.Errorf("replay: write %s: %w", o.path, err)
	}
	rec := capture.Record{Number: int(it.mark.Packet), Time: it.mark.Time, Interface: idx, Data: data, Length: it.length}
	if it.comment != "" {
		o.comments[0] = it.comment
		rec.Comments = o.comments[:]
		it.comment = ""
	}
	if err := o.w.Write(rec); err != nil {
		return fmt.Errorf("replay: write %s: %w", o.path, err)
	}
	o.res.Counts.Written++
	return nil
}

// writeRST writes a RST the NAT sent toward a server (B14); the ones it
// sent toward the inside are not part of the outside view.
func (o *output) writeRST(p reference.Packet) error {
	if p.Dir != reference.Outbound || p.Tuple.Proto != reference.TCP {
		return nil
	}
	var err error
	if o.rst, err = frame.AppendRST(o.rst[:0], p.Tuple, 0, p.Flags.Has(reference.ACK), 0); err != nil {
		return nil // not an IPv4 TCP tuple: nothing to write
	}
	idx, err := o.iface(layers.LinkTypeRaw)
	if err != nil {
		return fmt.Errorf("replay: write %s: %w", o.path, err)
	}
	if err := o.w.Write(capture.Record{Time: p.Time, Interface: idx, Data: o.rst,
		Comments: []string{"B14 RST sent by the NAT at idle expiry (tcpResetOnIdle)"}}); err != nil {
		return fmt.Errorf("replay: write %s: %w", o.path, err)
	}
	o.res.Counts.Written++
	return nil
}

func (o *output) iface(lt layers.LinkType) (int, error) {
	if lt == o.lastLT && o.w != nil {
		return o.lastIface, nil
	}
	if i, ok := o.ifaces[lt]; ok {
		o.lastLT, o.lastIface = lt, i
		return i, nil
	}
	ci := capture.Interface{Name: "natcheck-outside-" + lt.String(), LinkType: lt}
	if o.w == nil {
		w, err := capture.NewWriter(o.file, ci)
		if err != nil {
			return 0, err
		}
		o.w = w
		o.ifaces[lt] = 0
		return 0, nil
	}
	i, err := o.w.AddInterface(ci)
	if err != nil {
		return 0, err
	}
	o.ifaces[lt] = i
	return i, nil
}

// close finishes the output file; one with no packet still gets a section
// and an interface, so that it is a valid pcapng file.
func (o *output) close() error {
	if o.w == nil {
		if _, err := o.iface(layers.LinkTypeRaw); err != nil {
			o.file.Close()
			return err
		}
	}
	if err := o.w.Flush(); err != nil {
		o.file.Close()
		return err
	}
	return o.file.Close()
}
