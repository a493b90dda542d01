package livereplay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/natcheck/natcheck/device/linuxnft"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay"
	"github.com/natcheck/natcheck/replay/capture"
)

// Result is what a live replay saw: the live figures in the offline
// replay's shape (Result), and what only a live device gives.
type Result struct {
	*replay.Result
	// Speed and Deadline are the run's (Config).
	Speed    int
	Deadline time.Duration
	// Injected is the number of packets put on a link; Elapsed the wall
	// time of the run; MaxLate how late, at most, a packet left against
	// its schedule (Speed > 0).
	Injected int64
	Elapsed  time.Duration
	MaxLate  time.Duration
	// Shortened are the idle gaps replayed shorter than recorded.
	Shortened []Gap
	// Flows are the flows' verdicts against the profile, in the order of
	// their first packet; Agree and Differ count them, Unjudged those that
	// differ after one of their packets left more than 10 ms behind its
	// schedule (a harness matter, never a verdict).
	Flows                   []Flow
	Agree, Differ, Unjudged int
	// The learnt mappings, checked against the device's conntrack events:
	// confirmed (a new flow with that public endpoint), different (new
	// flows, none with it), unseen (no new flow of that tuple).
	Mappings, Confirmed, Different, Unseen int
	// EventsLost is set when the conntrack listener lost events.
	EventsLost string
	// Late are packets judged dropped that came out after the deadline;
	// Others frames that came out and translate no packet.
	Late, Others int64
	// DeviceDrops are the device's drop counters over the run, by reason.
	DeviceDrops map[string]uint64
	// Device names the device: linux-nft, or ExternalName. Conntrack is
	// set when its mappings were checked against its conntrack events
	// (linux-nft's; a third-party device offers none).
	Device    string
	Conntrack bool

	model []verdict // the profile's, per replayed packet
}

// verdict is what the model did with a packet, in 4 bytes (a capture may
// hold millions).
type verdict struct {
	action   reference.Action
	reason   reference.DropReason
	behavior reference.Behavior
}

func verdictOf(v reference.Verdict) verdict { return verdict{v.Action, v.Reason, v.Behavior} }

// forwards reports whether the model sent the packet on.
func (v verdict) forwards() bool {
	return v.action == reference.Translated || v.action == reference.Hairpinned
}

// String is the verdict as reports write it: "dropped: exhausted (L4)".
func (v verdict) String() string {
	s := v.action.String()
	if !v.forwards() {
		s += ": " + v.reason.String()
	}
	if v.behavior != reference.NoBehavior {
		s += " (" + v.behavior.String() + ")"
	}
	return s
}

// Gap is an idle gap of the capture replayed shorter: from At, Length
// long, replayed as To.
type Gap struct {
	At     time.Time
	Length time.Duration
	To     time.Duration
}

// Flow is one flow's verdict: its inside tuple, its packets, and the first
// packet on which the device did not do what the profile says.
type Flow struct {
	Inside  reference.Tuple
	Packets int
	Differs *Difference
	// Behind is how far behind its schedule the flow's latest packet up to
	// Differs left, when more than 10 ms: the difference is not judged.
	Behind time.Duration
}

// Difference is a packet the device and the profile treated differently.
type Difference struct {
	File    string
	Packet  int
	Live    string
	Profile string
}

// finish fills res from the outcomes, the model's verdicts, the plan, the
// device's counters and its conntrack events.
func (r *run) finish(res *Result, model *reference.Engine, plan reference.Plan, before, after map[string]uint64, events []ctEvent, lost error) {
	c := r.cfg.Engine
	rr := &replay.Result{Files: r.in.files, Backends: c.Backends, BackendsHow: "as given", Plan: plan, Drops: map[string]uint64{}}
	rr.Config = replay.ConfigSummary{Profile: c.Profile.Name, Frontends: c.Frontends, PoolSize: max(c.PoolSize, len(c.Backends)), PortsPerInstance: c.PortsPerInstance,
		IdleTimeout: c.IdleTimeout, TCPResetOnIdle: c.TCPResetOnIdle, Protocols: c.Protocols.String(), Strict: c.Strict}
	if rr.Config.Profile == "" {
		rr.Config.Profile = reference.NameAzureLB
	}
	res.Result = rr
	n := &rr.Counts
	n.Packets = r.in.read
	n.NotThroughNAT = r.in.skipped
	res.DeviceDrops = map[string]uint64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			res.DeviceDrops[k] = d
		}
	}
	res.Late, res.Others = r.lateSeen, r.others
	if lost != nil {
		res.EventsLost = lost.Error()
	}
	pk := r.in.packets
	if len(pk) > 0 {
		rr.Start, rr.End = pk[0].at, pk[len(pk)-1].at
	}
	type flowAcc struct {
		idx  int
		flow Flow
	}
	flows := map[reference.Tuple]*flowAcc{}
	var order []reference.Tuple
	public := map[reference.Tuple]netip.AddrPort{}
	for i := range pk {
		p, o := &pk[i], r.outcomes[i]
		switch p.tuple.Proto {
		case reference.TCP:
			n.TCP++
		case reference.UDP:
			n.UDP++
		case reference.ICMP:
			n.ICMP++
		}
		inside := p.tuple
		switch p.kind {
		case kindOutbound:
			n.Outbound++
		case kindReply:
			n.Replies++
			inside = p.tuple.Reverse()
		}
		live := "dropped (nothing came out within the deadline)"
		switch {
		case o.state == stForwarded:
			n.Translated++
			live = "forwarded"
			if p.kind == kindOutbound {
				if _, ok := public[inside]; !ok {
					public[inside] = o.out.Src
				}
			}
		case o.state == stNotSent && p.kind == kindReply:
			n.RepliesNoFlow++
			n.Dropped++
			live = "not sent: no mapping learnt for its flow (C8)"
		default:
			n.Dropped++
			if o.late {
				live = fmt.Sprintf("came out after the %v deadline", r.cfg.Deadline)
			}
			if _, known := public[inside]; p.kind == kindOutbound && !known && opens(p) && res.DeviceDrops[linuxnft.ExhaustionReason] > 0 {
				r.refused(rr, p)
			}
		}
		v := res.model[i]
		fa := flows[inside]
		if fa == nil {
			fa = &flowAcc{idx: len(order), flow: Flow{Inside: inside}}
			flows[inside] = fa
			order = append(order, inside)
		}
		fa.flow.Packets++
		modelFwd := v.forwards()
		if fa.flow.Differs == nil && o.behind > lateTolerance {
			fa.flow.Behind = max(fa.flow.Behind, o.behind)
		}
		if fa.flow.Differs == nil && modelFwd != (o.state == stForwarded) {
			fa.flow.Differs = &Difference{File: r.in.files[p.file], Packet: p.number, Live: live, Profile: v.String()}
		}
	}
	for _, t := range order {
		f := flows[t].flow
		res.Flows = append(res.Flows, f)
		switch {
		case f.Differs == nil:
			res.Agree++
		case f.Behind > 0:
			res.Unjudged++
		default:
			res.Differ++
		}
	}
	for k, v := range res.DeviceDrops {
		if name, ok := engineDrop[k]; ok {
			rr.Drops[name] += v
		}
	}
	// The learnt mappings against conntrack's new flows.
	newFlows := map[reference.Tuple][]netip.AddrPort{}
	for _, e := range events {
		if !e.destroy {
			newFlows[e.orig] = append(newFlows[e.orig], e.public)
		}
	}
	for inside, pub := range public {
		res.Mappings++
		switch ns := newFlows[inside]; {
		case len(ns) == 0:
			res.Unseen++
		case slices.Contains(ns, pub):
			res.Confirmed++
		default:
			res.Different++
		}
	}
	r.instances(res, plan, public, events)
}

// instances fills the per-instance rows and the samples of ports in use,
// from the learnt mappings and conntrack's new and destroyed flows.
func (r *run) instances(res *Result, plan reference.Plan, public map[reference.Tuple]netip.AddrPort, events []ctEvent) {
	rr := res.Result
	inst := map[netip.Addr]int{}
	for i, b := range r.cfg.Engine.Backends {
		inst[b] = i
	}
	pi := func(p reference.Proto) int {
		if p == reference.UDP {
			return 1
		}
		return 0
	}
	type row struct {
		flows      uint64
		peak, used int
	}
	rows := make([][2]row, len(r.cfg.Engine.Backends))
	for inside := range public {
		if i, ok := inst[inside.Src.Addr()]; ok && inside.Proto != reference.ICMP {
			rows[i][pi(inside.Proto)].flows++
		}
	}
	front := map[netip.Addr]bool{}
	for _, f := range r.cfg.Engine.Frontends {
		front[f] = true
	}
	// A SNAT port is in use while a flow holds it: several may, toward
	// other destinations (L3).
	holders := map[reference.Tuple]int{} // proto, public endpoint
	in := make([][2]int32, len(rows))
	for _, e := range events {
		i, ok := inst[e.orig.Src.Addr()]
		if !ok || e.orig.Proto == reference.ICMP || !front[e.public.Addr()] {
			continue // not an instance's, or not translated (routed inside)
		}
		x := &rows[i][pi(e.orig.Proto)]
		port := reference.Tuple{Proto: e.orig.Proto, Src: e.public}
		if e.destroy {
			if holders[port]--; holders[port] <= 0 {
				delete(holders, port)
				x.used = max(x.used-1, 0)
			}
		} else {
			if holders[port]++; holders[port] == 1 {
				x.used++
				x.peak = max(x.peak, x.used)
			}
		}
		in[i][pi(e.orig.Proto)] = int32(x.used)
		rr.Samples = append(rr.Samples, replay.Sample{Time: r.captureTime(e.at), InUse: slices.Clone(in)})
	}
	if len(rr.Samples) > 0 && rr.Samples[len(rr.Samples)-1].Time.Before(rr.End) {
		rr.Samples = append(rr.Samples, replay.Sample{Time: rr.End, InUse: slices.Clone(in)})
	}
	if len(rr.Samples) > 4096 {
		step := (len(rr.Samples) + 4095) / 4096
		kept := rr.Samples[:0]
		for i := 0; i < len(rr.Samples); i += step {
			kept = append(kept, rr.Samples[i])
		}
		rr.Samples = kept
	}
	for i, b := range r.cfg.Engine.Backends {
		if i >= len(plan.Instances) {
			break
		}
		ip := plan.Instances[i]
		for p, proto := range []reference.Proto{reference.TCP, reference.UDP} {
			x := rows[i][p]
			if x.flows == 0 && x.peak == 0 && r.refusalN[[2]int{i, p}] == 0 {
				continue
			}
			ir := replay.InstanceReport{Instance: i, Inside: b, Proto: proto.String(), Peak: x.peak, InUse: x.used, Flows: x.flows,
				ExhaustionDrops: r.refusalN[[2]int{i, p}], FirstExhaustion: r.refusals[[2]int{i, p}]}
			if len(ip.Ranges) > 0 {
				ir.Frontend = ip.Ranges[0].IP
				ir.Allocated = ip.Ranges[0].Len() // the device's rule: the first range (L1)
			}
			rr.Instances = append(rr.Instances, ir)
		}
	}
}

// captureTime maps a wall time of the run to the capture's time: the
// latest packet sent by then, plus the time since, times the speed.
func (r *run) captureTime(w time.Time) time.Time {
	pk := r.in.packets
	i := sort.Search(len(pk), func(i int) bool {
		s := r.outcomes[i].sent
		return !s.IsZero() && s.After(w)
	}) - 1
	for i >= 0 && r.outcomes[i].sent.IsZero() {
		i--
	}
	if i < 0 {
		if len(pk) == 0 {
			return w
		}
		return pk[0].at
	}
	return pk[i].at.Add(w.Sub(r.outcomes[i].sent) * time.Duration(max(r.cfg.Speed, 1)))
}

// writeCapture writes every frame sent and seen, in time order, on the
// inside and outside interfaces, with a comment on each replayed packet
// the device dropped and on each the profile treats otherwise.
func (r *run) writeCapture(path string) error {
	w, err := capture.Create(path, capture.Interface{Name: "inside", LinkType: layers.LinkTypeEthernet}, capture.Interface{Name: "outside", LinkType: layers.LinkTypeEthernet})
	if err != nil {
		return fmt.Errorf("live replay: -w %s: %w", path, err)
	}
	slices.SortStableFunc(r.frames, func(a, b captured) int { return a.at.Compare(b.at) })
	for _, f := range r.frames {
		rec := capture.Record{Time: f.at, Interface: f.iface, LinkType: layers.LinkTypeEthernet, Data: f.data}
		if f.pkt >= 0 {
			p, o := &r.in.packets[f.pkt], r.outcomes[f.pkt]
			rec.Comments = []string{fmt.Sprintf("%s packet %d at %s", r.in.files[p.file], p.number, p.at.Format(time.RFC3339Nano))}
			if o.state != stForwarded {
				rec.Comments = append(rec.Comments, "nothing came out of the device for it")
			}
		}
		if err := w.Write(rec); err != nil {
			w.Close()
			return fmt.Errorf("live replay: -w %s: %w", path, err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("live replay: -w %s: %w", path, err)
	}
	return nil
}

// eventLine is one line of the events: a replayed packet.
type eventLine struct {
	File    string    `json:"file"`
	Packet  int       `json:"packet"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Tuple   string    `json:"tuple"`
	Device  string    `json:"device"`
	Out     string    `json:"out,omitempty"`
	Latency string    `json:"latency,omitempty"`
	Profile string    `json:"profile"`
}

// writeEvents writes one JSON line per replayed packet, in the capture's
// order.
func (r *run) writeEvents(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	for i := range r.in.packets {
		p, o, v := &r.in.packets[i], r.outcomes[i], res.model[i]
		e := eventLine{File: r.in.files[p.file], Packet: p.number, Time: p.at, Kind: [...]string{"", "outbound", "reply", "outside"}[p.kind], Tuple: p.tuple.String(),
			Device: [...]string{"not sent", "in flight", "forwarded", "dropped"}[o.state], Profile: v.String()}
		if o.state == stForwarded {
			e.Out, e.Latency = o.out.String(), o.came.Sub(o.sent).String()
		}
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("live replay: events: %w", err)
		}
	}
	return nil
}

// WriteText writes the offline replay's report of the live figures, then
// what only the live device gives.
func WriteText(w io.Writer, res *Result, o replay.TextOptions) error {
	if err := replay.WriteTextOptions(w, res.Result, o); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nlive device %s: %d packets put on its links in %v", res.Device, res.Injected, res.Elapsed.Round(time.Millisecond))
	if s := res.Elapsed.Seconds(); s > 0 {
		fmt.Fprintf(w, " (%.0f packets/s)", float64(res.Injected)/s)
	}
	fmt.Fprintln(w)
	switch {
	case res.Speed > 0 && !res.Conntrack:
		fmt.Fprintf(w, "  timing: the capture's own, %d× faster (the device's timers taken as %d times shorter than the profile's); packets left at most %v late\n", res.Speed, res.Speed, res.MaxLate.Round(time.Microsecond))
	case res.Speed > 0:
		fmt.Fprintf(w, "  timing: the capture's own, %d× faster (the device's conntrack timers divided by %d); packets left at most %v late\n", res.Speed, res.Speed, res.MaxLate.Round(time.Microsecond))
	default:
		fmt.Fprintln(w, "  timing: as fast as the machine goes (--speed max): the device keeps its own timers, so flows whose fate hangs on time may differ from the profile")
	}
	for _, g := range res.Shortened {
		fmt.Fprintf(w, "  idle gap shortened: %v at %s replayed as %v (longer than every timer of the device)\n", g.Length, g.At.Format(time.RFC3339Nano), g.To)
	}
	fmt.Fprintf(w, "  a packet is judged dropped when nothing came out %v after it; %d came out later after all; %d frames came out that translate no packet\n", res.Deadline, res.Late, res.Others)
	if res.Conntrack {
		fmt.Fprintf(w, "  mappings learnt (no marker in the packets): %d; against the device's conntrack events: %d confirmed, %d different, %d not seen", res.Mappings, res.Confirmed, res.Different, res.Unseen)
	} else {
		fmt.Fprintf(w, "  mappings learnt (no marker in the packets): %d; not checked against the device's own records (a third-party device: no conntrack events, no drop counters; the per-instance ports in use, their peak, the refusals and the plot come from those, and are not measured)", res.Mappings)
	}
	if res.EventsLost != "" {
		fmt.Fprintf(w, " (events lost: %s)", res.EventsLost)
	}
	fmt.Fprintln(w)
	if len(res.DeviceDrops) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(res.DeviceDrops)) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, res.DeviceDrops[k]))
		}
		fmt.Fprintf(w, "  the device's drop counters: %s\n", strings.Join(parts, "; "))
	}
	fmt.Fprintf(w, "\nflows judged against profile %s: %d as the profile says, %d otherwise", res.Config.Profile, res.Agree, res.Differ)
	if res.Unjudged > 0 {
		fmt.Fprintf(w, "; %d not judged (they differ after a packet of theirs left more than %v behind its schedule)", res.Unjudged, lateTolerance)
	}
	fmt.Fprintln(w)
	shown := 0
	for _, f := range res.Flows {
		if f.Differs == nil || f.Behind > 0 {
			continue
		}
		if shown == 20 {
			fmt.Fprintf(w, "  … and %d more (the events file has every packet)\n", res.Differ-shown)
			break
		}
		d := f.Differs
		fmt.Fprintf(w, "  %v: %s packet %d: the device %s; the profile: %s\n", f.Inside, d.File, d.Packet, d.Live, d.Profile)
		shown++
	}
	return nil
}

// engineDrop names the device's drop counters as the offline report names
// the engine's drops (reference.DropReason): the same cause.
var engineDrop = map[string]string{
	linuxnft.ExhaustionReason:  reference.DropExhausted.String(),
	linuxnft.InvalidReason:     reference.DropInvalid.String(),
	linuxnft.UnsolicitedReason: reference.DropUnsolicited.String(),
	linuxnft.LocalReason:       reference.DropUnsolicited.String(),
}

// opens reports whether p would open a flow: a TCP SYN, or UDP and ICMP.
func opens(p *packet) bool {
	if p.tuple.Proto == reference.TCP {
		return p.flags.Has(reference.SYN) && !p.flags.Has(reference.ACK)
	}
	return true
}

// refused counts p, the first packet of a new flow that the device
// dropped while its insert_failed counter moved, as an exhaustion of its
// instance (B9/L4).
func (r *run) refused(rr *replay.Result, p *packet) {
	if r.refusals == nil {
		r.refusals = map[[2]int]*replay.Mark{}
		r.refusalN = map[[2]int]uint64{}
	}
	k := [2]int{p.inst, 0}
	if p.tuple.Proto == reference.UDP {
		k[1] = 1
	}
	r.refusalN[k]++
	if r.refusals[k] == nil {
		r.refusals[k] = &replay.Mark{File: r.in.files[p.file], Packet: int64(p.number), Time: p.at}
	}
}

// jsonLive is what only the live device gives, in the JSON report.
type jsonLive struct {
	Device        string            `json:"device"`
	Speed         int               `json:"speed"`
	Deadline      string            `json:"deadline"`
	Injected      int64             `json:"injected"`
	Elapsed       string            `json:"elapsed"`
	PacketsPerSec float64           `json:"packets_per_second"`
	MaxLate       string            `json:"max_late"`
	Shortened     []Gap             `json:"shortened_gaps,omitempty"`
	Mappings      int               `json:"mappings_learnt"`
	Confirmed     int               `json:"mappings_confirmed_by_conntrack"`
	Different     int               `json:"mappings_different_in_conntrack"`
	Unseen        int               `json:"mappings_not_in_conntrack"`
	EventsLost    string            `json:"conntrack_events_lost,omitempty"`
	Late          int64             `json:"came_out_after_deadline"`
	Others        int64             `json:"frames_translating_no_packet"`
	DeviceDrops   map[string]uint64 `json:"device_drop_counters"`
	Agree         int               `json:"flows_as_profile"`
	Differ        int               `json:"flows_otherwise"`
	Unjudged      int               `json:"flows_not_judged"`
	Differences   []jsonFlow        `json:"differences,omitempty"`
}

type jsonFlow struct {
	Flow    string `json:"flow"`
	File    string `json:"file"`
	Packet  int    `json:"packet"`
	Device  string `json:"device"`
	Profile string `json:"profile"`
}

// WriteJSON writes one JSON document: the offline replay's report of the
// live figures ("replay") and what only the live device gives ("live").
func WriteJSON(w io.Writer, res *Result) error {
	var rb bytes.Buffer
	if err := replay.WriteJSON(&rb, res.Result); err != nil {
		return err
	}
	l := jsonLive{Device: res.Device, Speed: res.Speed, Deadline: res.Deadline.String(), Injected: res.Injected, Elapsed: res.Elapsed.String(),
		MaxLate: res.MaxLate.String(), Shortened: res.Shortened, Mappings: res.Mappings, Confirmed: res.Confirmed, Different: res.Different,
		Unseen: res.Unseen, EventsLost: res.EventsLost, Late: res.Late, Others: res.Others, DeviceDrops: res.DeviceDrops,
		Agree: res.Agree, Differ: res.Differ, Unjudged: res.Unjudged}
	if s := res.Elapsed.Seconds(); s > 0 {
		l.PacketsPerSec = float64(res.Injected) / s
	}
	for _, f := range res.Flows {
		if f.Differs != nil && f.Behind == 0 {
			l.Differences = append(l.Differences, jsonFlow{Flow: f.Inside.String(), File: f.Differs.File, Packet: f.Differs.Packet, Device: f.Differs.Live, Profile: f.Differs.Profile})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Replay json.RawMessage `json:"replay"`
		Live   jsonLive        `json:"live"`
	}{rb.Bytes(), l})
}
