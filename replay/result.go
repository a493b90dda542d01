package replay

import (
	"net/netip"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// Result is everything a replay learned, up to the end of its input or the
// first fault in it.
type Result struct {
	Files []string `json:"files"`
	// Backends are the instances, in pool order; BackendsHow says how they
	// were chosen.
	Backends    []netip.Addr      `json:"backends"`
	BackendsHow string            `json:"backends_how"`
	Config      ConfigSummary     `json:"config"`
	Plan        reference.Plan    `json:"plan"`
	Counts      Counts            `json:"counts"`
	Drops       map[string]uint64 `json:"drops"`
	Instances   []InstanceReport  `json:"instances"`
	// Start and End are the first and last packet times. The clock stops
	// at End (C9): in use at the end means at End.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Drained is set when the clock ran on past End until every flow had
	// ended (Config.Drain).
	Drained *DrainSummary `json:"drained,omitempty"`
	// Shard is set for the result of one shard of a replay (Config.Shard):
	// only its instances' rows and counts are in it.
	Shard *Shard `json:"shard,omitempty"`
	// Samples are SNAT ports in use over time, for the plot.
	Samples []Sample `json:"-"`
	// Partial, when not empty, says why the replay stopped before the end
	// of its input (the error, or an interruption): the report then covers
	// only the packets before that point, and says so.
	Partial string `json:"-"`
}

// ConfigSummary is the engine configuration a replay ran with.
type ConfigSummary struct {
	Profile          string        `json:"profile"`
	Frontends        []netip.Addr  `json:"frontends"`
	PoolSize         int           `json:"pool_size"`
	PortsPerInstance int           `json:"ports_per_instance"`
	IdleTimeout      time.Duration `json:"idle_timeout_ns"`
	TCPResetOnIdle   bool          `json:"tcp_reset_on_idle"`
	Protocols        string        `json:"protocols"`
	Strict           bool          `json:"strict"`
}

// Counts are the replay's packet counters.
type Counts struct {
	// Packets is the number of records read.
	Packets int64 `json:"packets"`
	// IPv6 and NonIP packets are passed over; Cut ones were cut by the
	// snap length inside their IP or transport header.
	IPv6  int64 `json:"ipv6"`
	NonIP int64 `json:"non_ip"`
	Cut   int64 `json:"cut"`
	// TCP, UDP, ICMP, Other and Fragments count IPv4 packets.
	TCP       int64 `json:"tcp"`
	UDP       int64 `json:"udp"`
	ICMP      int64 `json:"icmp"`
	Other     int64 `json:"other_protocols"`
	Fragments int64 `json:"fragments"`
	// Outbound packets come from an instance; Replies go to one;
	// NotThroughNAT packets do neither (or both).
	Outbound      int64 `json:"outbound"`
	Replies       int64 `json:"replies"`
	NotThroughNAT int64 `json:"not_through_nat"`
	// RepliesNoFlow are replies whose flow had no SNAT mapping (never
	// created, refused, or released): they are dropped as unsolicited (B8).
	RepliesNoFlow int64 `json:"replies_without_flow"`
	Translated    int64 `json:"translated"`
	Dropped       int64 `json:"dropped"`
	Reset         int64 `json:"reset"`
	// Emitted counts packets the NAT itself sent (B14 RSTs).
	Emitted int64 `json:"emitted"`
	// Written counts packets written to the output capture.
	Written int64 `json:"written"`
}

// InstanceReport is one instance's use of one protocol on one frontend IP.
type InstanceReport struct {
	Instance  int          `json:"instance"`
	Inside    netip.Addr   `json:"inside"`
	Frontend  netip.Addr   `json:"frontend"`
	Proto     string       `json:"proto"`
	Allocated int          `json:"allocated"`
	Peak      int          `json:"peak_in_use"`
	InUse     int          `json:"in_use_at_end"`
	Flows     uint64       `json:"flows"`
	Releases  ReleaseCount `json:"releases"`
	// DrainedReleases counts releases after End (Config.Drain), on the
	// instance's first frontend row.
	DrainedReleases *ReleaseCount `json:"drained_releases,omitempty"`
	// Exhaustion drops (B9) are counted per instance and protocol; they
	// appear on the instance's first frontend row.
	ExhaustionDrops uint64 `json:"exhaustion_drops"`
	FirstExhaustion *Mark  `json:"first_exhaustion,omitempty"`
}

// ReleaseCount counts released flows by reason.
type ReleaseCount struct {
	FIN       uint64 `json:"fin"`
	RST       uint64 `json:"rst"`
	Idle      uint64 `json:"idle"`
	Reclaimed uint64 `json:"reclaimed"`
}

// DrainSummary is what happened after the last record when the clock ran
// on: every flow still live ended by Until.
type DrainSummary struct {
	Until    time.Time    `json:"until"`
	Releases ReleaseCount `json:"releases"`
}

func (r *ReleaseCount) add(o ReleaseCount) {
	r.FIN += o.FIN
	r.RST += o.RST
	r.Idle += o.Idle
	r.Reclaimed += o.Reclaimed
}

// Mark is a point in the input: a packet number and its time.
type Mark struct {
	File   string    `json:"file,omitempty"`
	Packet int64     `json:"packet"`
	Time   time.Time `json:"time"`
}

// Sample is the number of SNAT ports each instance had in use at a time,
// indexed [instance][0 TCP, 1 UDP].
type Sample struct {
	Time  time.Time
	InUse [][2]int32
}
