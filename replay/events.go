package replay

import (
	"bufio"
	"encoding/json"
	"io"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// eventRecord is one line of the events file.
type eventRecord struct {
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

// eventWriter writes engine events as JSON lines, each with the number of
// the packet being processed when it happened (0 for timers fired by the
// end of the input).
type eventWriter struct {
	bw  *bufio.Writer
	enc *json.Encoder
	err error
}

func newEventWriter(w io.Writer) *eventWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &eventWriter{bw: bw, enc: json.NewEncoder(bw)}
}

func (ew *eventWriter) write(packet int64, ev reference.Event) {
	if ew.err != nil {
		return
	}
	rec := eventRecord{Packet: packet, Time: ev.Time, Kind: ev.Kind.String(), Behavior: ev.Behavior.String(),
		Instance: ev.Instance, Release: ev.Release.String(), Drop: ev.Drop.String()}
	if ev.Proto != 0 {
		rec.Proto = ev.Proto.String()
	}
	for _, f := range []struct {
		dst *string
		v   interface{ IsValid() bool }
		s   func() string
	}{{&rec.Inside, ev.Inside, ev.Inside.String}, {&rec.Remote, ev.Remote, ev.Remote.String}, {&rec.SNAT, ev.SNAT, ev.SNAT.String}} {
		if f.v.IsValid() {
			*f.dst = f.s()
		}
	}
	if ev.Kind == reference.ConfigChanged {
		p := ev.Ports
		rec.Ports = &p
	}
	ew.err = ew.enc.Encode(rec)
}

func (ew *eventWriter) flush() error {
	if ew.err != nil {
		return ew.err
	}
	return ew.bw.Flush()
}
