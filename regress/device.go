package regress

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/viewdiff"
)

// Device is a live device's recording of an expectation's capture
// (natcheck record: both links of the device, pcapng) and how its outside
// view compares with the replay's under the expectation's setup, as
// natcheck diff compares them (A: the replay's outside view, B: the
// recording's outside link). So the corpus holds what a real NAT did, and
// every regress run judges it: the recording is equivalent to the replay
// up to a renaming of SNAT endpoints except for the differences listed,
// each predicted by items of SEMANTICS.md (written by hand).
type Device struct {
	// Recording is the recording's path, relative to the expectation file.
	Recording string `json:"recording"`
	// Command is the natcheck record command that made it, from the
	// repository's root (scripts/record-device.sh runs it again).
	Command string `json:"command"`
	// Differences are every difference natcheck diff finds, in its order;
	// none: equivalent up to renaming.
	Differences []DeviceDifference `json:"differences"`
}

// DeviceDifference is one difference between the replay's outside view
// and the device's, and what predicts it.
type DeviceDifference struct {
	// What is natcheck diff's line for it.
	What string `json:"what"`
	// ReplayPacket and DevicePacket are its packets' numbers in the
	// replay's outside view and in the recording (0: none).
	ReplayPacket int `json:"replay_packet,omitempty"`
	DevicePacket int `json:"device_packet,omitempty"`
	// PredictedBy names the items of SEMANTICS.md that predict the
	// difference, with why ("B12, L5: an established flow lives 432,000
	// s"), written by hand; empty: unexplained, and regress fails on it.
	PredictedBy string `json:"predicted_by"`
}

// key identifies a difference across runs.
func (d DeviceDifference) key() string {
	return fmt.Sprintf("%d/%d/%s", d.ReplayPacket, d.DevicePacket, d.What)
}

// fieldDevice is the field of the device lines of a regress run.
const fieldDevice = "device view"

// RecordingPath is the recording's path: Recording itself if absolute,
// else relative to the expectation file.
func (e *Expectation) RecordingPath() string {
	return e.relative(e.Device.Recording)
}

// compareDevice compares the replay's outside view (at outside) with the
// device's recording and returns the device's differences as natcheck
// diff finds them.
func (e *Expectation) compareDevice(outside string) ([]DeviceDifference, error) {
	a, err := viewdiff.Read(outside)
	if err != nil {
		return nil, fmt.Errorf("regress %s: replay's outside view: %w", e.path, err)
	}
	b, err := viewdiff.Read(e.RecordingPath())
	if err != nil {
		return nil, fmt.Errorf("regress %s: %w: device recording: %w", e.path, ErrExpectation, err)
	}
	r := viewdiff.Compare(a, b)
	out := []DeviceDifference{}
	for _, d := range r.Differences {
		dd := DeviceDifference{What: d.What}
		if d.A != nil {
			dd.ReplayPacket = d.A.Number
		}
		if d.B != nil {
			dd.DevicePacket = d.B.Number
		}
		out = append(out, dd)
	}
	return out, nil
}

// checkDevice lists how the device's differences got differ from the
// expected ones: one line for a difference not expected (with its
// packets), one for an expected difference gone, one for a difference
// no item predicts.
func (e *Expectation) checkDevice(got []DeviceDifference) []Difference {
	want := map[string]DeviceDifference{}
	for _, d := range e.Device.Differences {
		want[d.key()] = d
	}
	field := fieldDevice + " (" + e.Device.Recording + ")"
	var out []Difference
	seen := map[string]bool{}
	for _, g := range got {
		seen[g.key()] = true
		w, ok := want[g.key()]
		switch {
		case !ok:
			out = append(out, Difference{Packet: e.inputPacketOf(g), Field: field, Expected: "no such difference",
				Got: g.line()})
		case strings.TrimSpace(w.PredictedBy) == "":
			out = append(out, Difference{Packet: e.inputPacketOf(g), Field: field, Expected: "a difference some item predicts (predicted_by)",
				Got: g.line() + ", predicted by nothing"})
		}
	}
	for _, w := range e.Device.Differences {
		if !seen[w.key()] {
			out = append(out, Difference{Packet: e.inputPacketOf(w), Field: field, Expected: w.line(),
				Got: "no such difference", Behavior: firstItem(w.PredictedBy)})
		}
	}
	return out
}

// line renders a device difference in one line.
func (d DeviceDifference) line() string {
	s := d.What
	if d.ReplayPacket > 0 {
		s += fmt.Sprintf("; replay's packet %d", d.ReplayPacket)
	}
	if d.DevicePacket > 0 {
		s += fmt.Sprintf("; device's packet %d", d.DevicePacket)
	}
	return s
}

// inputPacketOf returns the input packet a device difference is about,
// as the recording's comment names it ("FILE packet N at TIME"), or 0.
func (e *Expectation) inputPacketOf(d DeviceDifference) int64 {
	if d.DevicePacket == 0 {
		return 0
	}
	var num int64
	_ = eachRecord(e.RecordingPath(), func(r capture.Record) bool {
		if r.Number != d.DevicePacket {
			return true
		}
		for _, c := range r.Comments {
			if _, rest, ok := strings.Cut(c, " packet "); ok {
				n, _, _ := strings.Cut(rest, " ")
				num, _ = strconv.ParseInt(n, 10, 64)
			}
		}
		return false
	})
	return num
}

// firstItem returns the first behaviour ID of a predicted_by text.
func firstItem(s string) string {
	id, _, _ := strings.Cut(strings.TrimSpace(s), ",")
	id, _, _ = strings.Cut(id, " ")
	return strings.TrimRight(id, ":;")
}

// updateDevice returns got as the new expected differences, keeping the
// hand-written predicted_by of those that are the same.
func (e *Expectation) updateDevice(got []DeviceDifference) []DeviceDifference {
	old := map[string]string{}
	for _, d := range e.Device.Differences {
		old[d.key()] = d.PredictedBy
	}
	for i := range got {
		got[i].PredictedBy = old[got[i].key()]
	}
	return got
}
