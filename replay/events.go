package replay

import (
	"bytes"
	"encoding/json"
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

// encodeEvent appends ev, seen while the given packet was processed (0
// for none), to the events stream as one JSON line.
func encodeEvent(enc *json.Encoder, packet int64, ev reference.Event) error {
	rec := eventRecord{Packet: packet, Time: ev.Time, Kind: ev.Kind.String(), Behavior: ev.Behavior.String(),
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

// appendEvent appends ev, seen while the given packet was processed (0 for
// none), to b as one JSON line: the same line encodeEvent writes.
func appendEvent(b []byte, packet int64, ev reference.Event) []byte {
	var buf bytes.Buffer
	_ = encodeEvent(json.NewEncoder(&buf), packet, ev) // a bytes.Buffer does not fail
	return append(b, buf.Bytes()...)
}
