package replay

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strconv"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// eventRecord is one line of the events file. File and Packet name the
// input record the event was seen with (the file's base name and the
// record's number in that file); frame, added by the writer, is that
// packet's frame in the -w file.
type eventRecord struct {
	File     string    `json:"file,omitempty"`
	Packet   int64     `json:"packet,omitempty"`
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Behavior string    `json:"behavior,omitempty"`
	Instance int       `json:"instance"`
	Proto    string    `json:"proto,omitempty"`
	Inside   string    `json:"inside,omitempty"`
	Remote   string    `json:"remote,omitempty"`
	SNAT     string    `json:"snat,omitempty"`
	Release  string    `json:"release,omitempty"`
	Drop     string    `json:"drop,omitempty"`
	Ports    *int      `json:"ports,omitempty"`
}

// encodeEvent appends ev, seen while the given packet of file was
// processed (0 and "" for none: a timer's event), to the events stream as
// one JSON line.
func encodeEvent(enc *json.Encoder, file string, packet int64, ev reference.Event) error {
	if file != "" {
		file = filepath.Base(file)
	}
	rec := eventRecord{File: file, Packet: packet, Time: ev.Time, Kind: ev.Kind.String(), Behavior: ev.Behavior.String(),
		Instance: ev.Instance, Release: ev.Release.String(), Drop: ev.Drop.String()}
	if ev.Proto != 0 {
		rec.Proto = ev.Proto.String()
	}
	if ev.Inside.IsValid() {
		rec.Inside = ev.Inside.String()
	}
	if ev.Remote.IsValid() {
		rec.Remote = ev.Remote.String()
	}
	if ev.SNAT.IsValid() {
		rec.SNAT = ev.SNAT.String()
	}
	if ev.Kind == reference.ConfigChanged {
		p := ev.Ports
		rec.Ports = &p
	}
	return enc.Encode(rec)
}

// appendEvent appends ev, seen while the given packet of file was
// processed, to b as one JSON line: the same line encodeEvent writes.
func appendEvent(b []byte, file string, packet int64, ev reference.Event) []byte {
	var buf bytes.Buffer
	_ = encodeEvent(json.NewEncoder(&buf), file, packet, ev) // a bytes.Buffer does not fail
	return append(b, buf.Bytes()...)
}

// appendWithFrame appends the event lines of events to b, each with the
// field "frame": frame (the packet's frame in the -w file) added last.
func appendWithFrame(b, events []byte, frame int64) []byte {
	for len(events) > 0 {
		n := bytes.IndexByte(events, '\n')
		if n < 1 || events[n-1] != '}' {
			return append(b, events...) // not a line encodeEvent wrote: left as it is
		}
		b = append(b, events[:n-1]...)
		b = append(b, `,"frame":`...)
		b = strconv.AppendInt(b, frame, 10)
		b = append(b, "}\n"...)
		events = events[n+1:]
	}
	return b
}
