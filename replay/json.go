package replay

import (
	"encoding/json"
	"io"
	"net/netip"
	"time"
)

// ReportSchema names the JSON document WriteJSON writes; its JSON Schema is
// docs/replay-report.schema.json. The number changes when a field changes
// meaning or goes away (adding a field keeps it).
const ReportSchema = "natcheck-replay-report/1"

// jsonReport is the JSON document: every name in snake_case, every
// duration in seconds (a field name says so), times in RFC 3339.
type jsonReport struct {
	Schema string `json:"schema"`
	// Status is "complete", or "partial" when the replay stopped early
	// (Error says why).
	Status      string         `json:"status"`
	Error       string         `json:"error,omitempty"`
	Shard       *Shard         `json:"shard,omitempty"`
	Files       []string       `json:"files"`
	Backends    []netip.Addr   `json:"backends"`
	BackendsHow string         `json:"backends_how"`
	Config      jsonConfig     `json:"config"`
	Plan        jsonPlan       `json:"plan"`
	Start       *time.Time     `json:"start,omitempty"`
	End         *time.Time     `json:"end,omitempty"`
	Seconds     float64        `json:"duration_seconds"`
	Drained     *jsonDrained   `json:"drained,omitempty"`
	Counts      Counts         `json:"counts"`
	Drops       []jsonDrop     `json:"drops"`
	Instances   []jsonInstance `json:"instances"`
	Verdicts    []jsonVerdict  `json:"verdicts"`
}

// jsonDrained is what --drain found after the last packet.
type jsonDrained struct {
	Until    time.Time    `json:"until"`
	After    float64      `json:"seconds_after_end"`
	Releases ReleaseCount `json:"releases"`
}

type jsonConfig struct {
	Profile          string       `json:"profile"`
	Frontends        []netip.Addr `json:"frontends"`
	PoolSize         int          `json:"pool_size"`
	PortsPerInstance int          `json:"ports_per_instance"`
	IdleSeconds      float64      `json:"idle_timeout_seconds"`
	TCPResetOnIdle   bool         `json:"tcp_reset_on_idle"`
	Protocols        string       `json:"protocols"`
	Strict           bool         `json:"strict"`
}

type jsonPlan struct {
	Profile     string             `json:"profile"`
	PoolSize    int                `json:"pool_size"`
	Allocation  string             `json:"allocation"` // "default-table" (B3) or "outbound-rule" (B4)
	TierPorts   int                `json:"tier_ports_per_ip,omitempty"`
	PerInstance int                `json:"ports_per_instance"`
	MaxPool     int                `json:"max_pool"`
	Instances   []jsonInstancePlan `json:"instances"`
	Frontends   []jsonFrontendPlan `json:"frontends"`
}

type jsonInstancePlan struct {
	Index  int             `json:"index"`
	Inside *netip.Addr     `json:"inside,omitempty"`
	Ports  int             `json:"ports"`
	Ranges []jsonPortRange `json:"ranges"`
}

type jsonPortRange struct {
	IP    netip.Addr `json:"ip"`
	First uint16     `json:"first"`
	Last  uint16     `json:"last"`
}

type jsonFrontendPlan struct {
	IP        netip.Addr `json:"ip"`
	Allocated int        `json:"allocated"`
	Free      int        `json:"free"`
}

type jsonDrop struct {
	Reason   string `json:"reason"`
	Behavior string `json:"behavior"`
	Why      string `json:"why"`
	Packets  uint64 `json:"packets"`
}

type jsonMark struct {
	File    string    `json:"file,omitempty"`
	Packet  int64     `json:"packet"`
	Time    time.Time `json:"time"`
	Elapsed float64   `json:"elapsed_seconds"`
}

type jsonInstance struct {
	InstanceReport
	FirstExhaustion *jsonMark `json:"first_exhaustion,omitempty"`
}

type jsonVerdict struct {
	Verdict
	First *jsonMark `json:"first_exhaustion,omitempty"`
	Ports struct {
		TCP jsonUse `json:"tcp"`
		UDP jsonUse `json:"udp"`
	} `json:"ports"`
}

type jsonUse struct {
	Peak      int `json:"peak"`
	Allocated int `json:"allocated"`
}

// WriteJSON writes r as one indented JSON document, the one
// docs/replay-report.schema.json describes.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.jsonReport())
}

func (r *Result) jsonReport() jsonReport {
	c := r.Config
	doc := jsonReport{Schema: ReportSchema, Status: "complete", Files: r.Files, Backends: r.Backends, BackendsHow: r.BackendsHow,
		Config: jsonConfig{Profile: c.Profile, Frontends: c.Frontends, PoolSize: c.PoolSize, PortsPerInstance: c.PortsPerInstance,
			IdleSeconds: c.IdleTimeout.Seconds(), TCPResetOnIdle: c.TCPResetOnIdle, Protocols: c.Protocols, Strict: c.Strict},
		Counts: r.Counts, Drops: []jsonDrop{}, Instances: []jsonInstance{}, Verdicts: []jsonVerdict{}}
	if r.Partial != "" {
		doc.Status, doc.Error = "partial", r.Partial
	}
	doc.Shard = r.Shard
	if doc.Backends == nil {
		doc.Backends = []netip.Addr{}
	}
	if doc.Config.Frontends == nil {
		doc.Config.Frontends = []netip.Addr{}
	}
	if !r.Start.IsZero() {
		start, end := r.Start, r.End
		doc.Start, doc.End, doc.Seconds = &start, &end, end.Sub(start).Seconds()
	}
	if d := r.Drained; d != nil {
		doc.Drained = &jsonDrained{Until: d.Until, After: d.Until.Sub(r.End).Seconds(), Releases: d.Releases}
	}
	pl := r.Plan
	doc.Plan = jsonPlan{Profile: pl.Profile, PoolSize: pl.PoolSize, Allocation: "default-table", TierPorts: pl.TierPorts,
		PerInstance: pl.PerInstance, MaxPool: pl.MaxPool, Instances: make([]jsonInstancePlan, 0, len(pl.Instances)),
		Frontends: make([]jsonFrontendPlan, 0, len(pl.Frontends))}
	if pl.Manual {
		doc.Plan.Allocation = "outbound-rule"
	}
	for _, ip := range pl.Instances {
		jp := jsonInstancePlan{Index: ip.Index, Ports: ip.Ports, Ranges: make([]jsonPortRange, 0, len(ip.Ranges))}
		if ip.Inside.IsValid() {
			a := ip.Inside
			jp.Inside = &a
		}
		for _, rg := range ip.Ranges {
			jp.Ranges = append(jp.Ranges, jsonPortRange{IP: rg.IP, First: rg.First, Last: rg.Last})
		}
		doc.Plan.Instances = append(doc.Plan.Instances, jp)
	}
	for _, f := range pl.Frontends {
		doc.Plan.Frontends = append(doc.Plan.Frontends, jsonFrontendPlan{IP: f.IP, Allocated: f.Allocated, Free: f.Free})
	}
	for _, name := range r.dropReasons() {
		b, why := dropInfo(r.Config.Profile, name)
		doc.Drops = append(doc.Drops, jsonDrop{Reason: name, Behavior: b.String(), Why: why, Packets: r.Drops[name]})
	}
	for _, ir := range r.Instances {
		doc.Instances = append(doc.Instances, jsonInstance{InstanceReport: ir, FirstExhaustion: r.jsonMark(ir.FirstExhaustion)})
	}
	for _, v := range r.InstanceVerdicts() {
		jv := jsonVerdict{Verdict: v, First: r.jsonMark(v.First)}
		jv.Ports.TCP = jsonUse{Peak: v.Peak[0], Allocated: v.Allocated[0]}
		jv.Ports.UDP = jsonUse{Peak: v.Peak[1], Allocated: v.Allocated[1]}
		doc.Verdicts = append(doc.Verdicts, jv)
	}
	return doc
}

func (r *Result) jsonMark(m *Mark) *jsonMark {
	if m == nil {
		return nil
	}
	return &jsonMark{File: m.File, Packet: m.Packet, Time: m.Time, Elapsed: m.Time.Sub(r.Start).Seconds()}
}
