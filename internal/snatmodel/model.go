// Package snatmodel is a deliberately simple model of the azure-lb SNAT
// profile, written straight from SEMANTICS.md for differential tests of
// the reference engine (its unit tests, the fuzzers) and, with a [Fault]
// switched on, as the negative-control mutants of package specs.
//
// It shares no logic with the engine, only its public types (Config,
// Packet, Verdict, Plan, Event, …): the numbers of the profile are written
// here again (B1–B4, B10–B12, C1), validation, allocation and placement
// (B2–B5, C1, C2), pool changes (B16), port choice (C3), reuse (B6, B7),
// filtering (B8), timers (B10–B14, C6, C7) are plain code over maps keyed
// by value types, with time compared as time.Time. Only the zero Profile
// (azure-lb) is modelled.
package snatmodel

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// The numbers of profile azure-lb (SEMANTICS.md), written here on purpose
// rather than read from reference.AzureLB().
const (
	firstPort   = 1024  // C1: ports 1024–65023
	portsPerIP  = 64000 // B1
	blockSize   = 8     // B2
	maxDefault  = 1024  // B3: an instance's default total is capped
	finHold     = 240 * time.Second
	rstHold     = 15 * time.Second
	idleDefault = 4 * time.Minute
	idleMin     = 4 * time.Minute
	idleMax     = 120 * time.Minute
)

const nBlocksPerIP = portsPerIP / blockSize

// tiers is B3's default table: pools of up to upTo instances get ports
// ports per frontend IP each.
var tiers = []struct{ upTo, ports int }{{50, 1024}, {100, 512}, {200, 256}, {400, 128}, {800, 64}, {1000, 32}}

// Fault is a set of deliberate mistakes, for negative control: each breaks
// one item of SEMANTICS.md. The zero Fault is the faithful model.
type Fault uint32

// The faults, one bit each; the comment names what each one breaks.
const (
	// TCPSameDestination: a new TCP flow toward a destination IP:port
	// that one flow of the instance already reaches takes that flow's
	// SNAT port (B6).
	TCPSameDestination Fault = 1 << iota
	// NoPortReuse: a SNAT port never carries two flows of a protocol, even
	// toward different destinations (B6, B7).
	NoPortReuse
	// UDPFullTuple: UDP mappings keyed by the full 5-tuple (B7).
	UDPFullTuple
	// UDPFullCone: a UDP mapping takes replies from any port of its
	// destination IP (B8).
	UDPFullCone
	// BorrowPorts: an instance with no suitable port takes one of another
	// instance's (B5, B9).
	BorrowPorts
	// FirstIPOnly: an instance uses only its ports on its first frontend
	// IP (B9).
	FirstIPOnly
	// SkipCapacityCheck: a manual allocation beyond frontend IPs × 64,000
	// is accepted; instances past the capacity get no ports (B4).
	SkipCapacityCheck
	// FINRestart: every packet after a FIN restarts the FIN timer (B10).
	FINRestart
	// RSTLengthensFIN: a RST always sets the release time to RST + 15 s,
	// even later than a FIN's (B11).
	RSTLengthensFIN
	// InboundNoRefresh: inbound packets do not restart the idle timer
	// (B12).
	InboundNoRefresh
	// DroppedRefresh: an inbound UDP packet dropped by the filter restarts
	// the mapping's idle timer (B12).
	DroppedRefresh
	// LateRelease: a flow is released 1 ns after its release time, so a
	// packet at exactly T still finds it (B13, C4).
	LateRelease
	// NoReclaim: pool growth takes no ports back (B16).
	NoReclaim
	// ReclaimedFlowsSurvive: flows on reclaimed ports keep being
	// translated (B16).
	ReclaimedFlowsSurvive
	// ReversePlacement: instances placed in reverse configuration order
	// (C2).
	ReversePlacement
	// HighestPortFirst: port choice starts at the instance's highest port
	// (C3).
	HighestPortFirst
	// ResetUnestablished: tcpResetOnIdle also resets flows that never
	// translated a packet inbound (B14, C6).
	ResetUnestablished
	// ShortMemory: a flow reset at idle expiry is remembered for half an
	// idle timeout only (C7).
	ShortMemory

	faultEnd
)

var faultNames = [...]string{
	"tcp-same-destination", "no-port-reuse", "udp-full-tuple", "udp-full-cone", "borrow-ports",
	"first-ip-only", "skip-capacity-check", "fin-restart", "rst-lengthens-fin", "inbound-no-refresh",
	"dropped-refresh", "late-release", "no-reclaim", "reclaimed-flows-survive", "reverse-placement",
	"highest-port-first", "reset-unestablished", "short-memory",
}

// Faults returns every fault, one per element, in declaration order.
func Faults() []Fault {
	var out []Fault
	for f := Fault(1); f < faultEnd; f <<= 1 {
		out = append(out, f)
	}
	return out
}

// String returns the faults' names joined by "+", "none" for the zero
// Fault.
func (f Fault) String() string {
	if f == 0 {
		return "none"
	}
	s := ""
	for i, b := 0, Fault(1); b < faultEnd; i, b = i+1, b<<1 {
		if f&b != 0 {
			if s != "" {
				s += "+"
			}
			s += faultNames[i]
		}
	}
	if f >= faultEnd {
		s += "+unknown"
	}
	return s
}

func (f Fault) has(g Fault) bool { return f&g != 0 }

// outKey names a flow from inside: the destination port is zero for a UDP
// mapping, which is per destination IP (B7).
type outKey struct {
	proto          reference.Proto
	inside, remote netip.AddrPort
}

// inKey names a flow from outside: SNAT endpoint and remote (port zero for
// UDP).
type inKey struct {
	proto        reference.Proto
	snat, remote netip.AddrPort
}

// slotKey names what one port of an instance may carry once (B6, B7): the
// flows of an instance and protocol toward one destination.
type slotKey struct {
	inst   int
	proto  reference.Proto
	remote netip.AddrPort
}

type flow struct {
	seq                  uint64 // creation order
	proto                reference.Proto
	inst                 int
	inside, remote, snat netip.AddrPort
	slot                 slotKey
	index                int // position of snat in the instance's ports (C3 order); -1 for none
	peers                map[uint16]bool
	deadline             time.Time
	fixed, rst           bool
	sawOut, sawIn        bool
	live                 bool
}

type tomb struct {
	until        time.Time
	reclaimed    bool // B16: drop; otherwise B14: answer with a RST
	inst         int
	inside, snat netip.AddrPort
}

// Model is one SNAT configuration's state. Use New or NewMutant.
type Model struct {
	faults    Fault
	frontends []netip.Addr
	backends  []netip.Addr
	pool      int
	perInst   int // 0: the default table
	idle      time.Duration
	resetIdle bool
	strict    bool
	protocols reference.Protocols
	obs       reference.Observer
	owner     []int   // per block (IP-major), the instance holding it, or -1
	blocks    [][]int // per instance, its blocks in C3 order
	flows     []*flow // creation order; released ones are dropped lazily
	nLive     int
	out       map[outKey]*flow
	in        map[inKey]*flow
	taken     map[slotKey][]int // sorted indices of the ports carrying a flow toward the key
	portUse   map[inKey]int     // flows per (proto, SNAT endpoint); remote unused
	tombOut   map[outKey]tomb
	tombIn    map[inKey]tomb
	seq       uint64
	now       time.Time
	started   bool
	nextCheck time.Time // no flow is due before this (a lower bound)
	pending   []reference.Packet
}

// New returns a model of cfg, or the configuration's error (a
// *reference.ConfigError naming the behaviour whose rule it breaks).
func New(cfg reference.Config) (*Model, error) { return NewMutant(cfg, 0) }

// NewMutant returns a model of cfg with faults switched on.
func NewMutant(cfg reference.Config, faults Fault) (*Model, error) {
	m := &Model{faults: faults, out: map[outKey]*flow{}, in: map[inKey]*flow{}, taken: map[slotKey][]int{},
		portUse: map[inKey]int{}, tombOut: map[outKey]tomb{}, tombIn: map[inKey]tomb{}}
	if err := m.configure(cfg); err != nil {
		return nil, fmt.Errorf("snatmodel: %w", err)
	}
	return m, nil
}

func cfgErr(field string, value any, b reference.Behavior, reason string) error {
	return &reference.ConfigError{Field: field, Value: value, Behavior: b, Reason: reason}
}

func checkAddrs(what string, as []netip.Addr) error {
	seen := map[netip.Addr]bool{}
	for i, a := range as {
		if !a.Is4() || seen[a] {
			return cfgErr(fmt.Sprintf("%s #%d", what, i+1), a, reference.NoBehavior, "want distinct IPv4 addresses")
		}
		seen[a] = true
	}
	return nil
}

// tierPorts is B3's per-IP value for a pool of n, 0 past the table.
func tierPorts(n int) int {
	for _, t := range tiers {
		if n <= t.upTo {
			return t.ports
		}
	}
	return 0
}

// target is each instance's total for a pool of n (B3, B4).
func (m *Model) target(n int) int {
	if m.perInst != 0 {
		return m.perInst
	}
	return min(tierPorts(n)*len(m.frontends), maxDefault)
}

func (m *Model) configure(c reference.Config) error {
	if c.Profile.Name != "" {
		return cfgErr("profile", c.Profile.Name, reference.NoBehavior, "the model knows azure-lb only (the zero Profile)")
	}
	if len(c.Frontends) == 0 {
		return cfgErr("frontends", "[]", reference.B1, "want at least one")
	}
	if err := checkAddrs("frontend", c.Frontends); err != nil {
		return err
	}
	if err := checkAddrs("backend", c.Backends); err != nil {
		return err
	}
	pool := c.PoolSize
	if pool == 0 {
		pool = len(c.Backends)
	}
	if pool < 1 || pool < len(c.Backends) {
		return cfgErr("pool size", pool, reference.NoBehavior, "want at least 1 and at least the backends given")
	}
	k, ppi := len(c.Frontends), c.PortsPerInstance
	switch {
	case ppi == 0 && pool > 1000:
		return cfgErr("pool size", pool, reference.B3, "the default table covers pools of 1 to 1,000")
	case ppi%blockSize != 0: // B2's own message for any value that is not whole blocks, 7 included
		return cfgErr("ports per instance", ppi, reference.B2, "want a multiple of 8")
	case ppi != 0 && (ppi < 8 || ppi > 64000):
		return cfgErr("ports per instance", ppi, reference.B4, "want 8 to 64,000")
	case ppi != 0 && pool*ppi > k*portsPerIP && !m.faults.has(SkipCapacityCheck):
		return cfgErr("ports per instance", ppi, reference.B4, "instances × ports exceed frontend IPs × 64,000")
	}
	idle := c.IdleTimeout
	if idle == 0 {
		idle = idleDefault
	}
	if idle < idleMin || idle > idleMax || idle%time.Minute != 0 {
		return cfgErr("idle timeout", idle, reference.B12, "want 4 to 120 whole minutes")
	}
	if c.Protocols != reference.AllProtocols && c.Protocols != reference.TCPOnly && c.Protocols != reference.UDPOnly {
		return cfgErr("protocol", c.Protocols, reference.B15, "want all, tcp or udp")
	}
	m.frontends = slices.Clone(c.Frontends)
	m.backends = slices.Clone(c.Backends)
	m.perInst, m.idle, m.resetIdle, m.strict, m.protocols, m.obs = ppi, idle, c.TCPResetOnIdle, c.Strict, c.Protocols, c.Observer
	m.owner = make([]int, k*nBlocksPerIP)
	for i := range m.owner {
		m.owner[i] = -1
	}
	// C2: instances in configuration order take the lowest free blocks.
	order := make([]int, pool)
	for i := range order {
		order[i] = i
	}
	if m.faults.has(ReversePlacement) {
		slices.Reverse(order)
	}
	m.blocks = make([][]int, pool)
	for _, i := range order {
		m.blocks[i] = m.take(i, m.target(pool))
	}
	m.pool = pool
	return nil
}

// take gives instance i the n lowest free blocks, or nothing when fewer
// than n are free (B16: an instance past a manual capacity has no ports).
func (m *Model) take(i, n int) []int {
	want := n / blockSize
	var got []int
	for g := 0; g < len(m.owner) && len(got) < want; g++ {
		if m.owner[g] < 0 {
			got = append(got, g)
		}
	}
	if want == 0 || len(got) < want {
		return nil
	}
	for _, g := range got {
		m.owner[g] = i
	}
	return got
}

// give adds blocks to instance i's, keeping them in C3 order.
func (m *Model) give(i int, more []int) {
	m.blocks[i] = append(m.blocks[i], more...)
	sort.Ints(m.blocks[i])
}

// nPorts is how many ports instance i chooses from.
func (m *Model) nPorts(i int) int {
	bs := m.blocks[i]
	if m.faults.has(FirstIPOnly) && len(bs) > 0 {
		n := 0
		for _, g := range bs {
			if g/nBlocksPerIP == bs[0]/nBlocksPerIP {
				n++
			}
		}
		return n * blockSize
	}
	return len(bs) * blockSize
}

// portAt is instance i's j-th port in C3 order: its blocks by frontend IP
// in configuration order, then by number (blocks are kept sorted).
func (m *Model) portAt(i, j int) netip.AddrPort {
	if m.faults.has(HighestPortFirst) {
		j = m.nPorts(i) - 1 - j
	}
	g := m.blocks[i][j/blockSize]
	return netip.AddrPortFrom(m.frontends[g/nBlocksPerIP], uint16(firstPort+(g%nBlocksPerIP)*blockSize+j%blockSize))
}

// indexOf is the position of snat among instance i's ports, or -1 when
// the instance does not hold it.
func (m *Model) indexOf(i int, snat netip.AddrPort) int {
	ip := slices.Index(m.frontends, snat.Addr())
	off := int(snat.Port()) - firstPort
	if i >= len(m.blocks) || ip < 0 || off < 0 || off >= portsPerIP {
		return -1
	}
	k, found := slices.BinarySearch(m.blocks[i], ip*nBlocksPerIP+off/blockSize)
	j := k*blockSize + off%blockSize
	if !found || j >= m.nPorts(i) {
		return -1
	}
	if m.faults.has(HighestPortFirst) {
		j = m.nPorts(i) - 1 - j
	}
	return j
}

// holds reports whether instance i holds the block of snat (B16: a flow on
// a port its instance no longer holds is reclaimed).
func (m *Model) holds(i int, snat netip.AddrPort) bool {
	ip := slices.Index(m.frontends, snat.Addr())
	off := int(snat.Port()) - firstPort
	if i >= len(m.blocks) || ip < 0 || off < 0 || off >= portsPerIP {
		return false
	}
	_, found := slices.BinarySearch(m.blocks[i], ip*nBlocksPerIP+off/blockSize)
	return found
}

// Plan returns the allocation: per instance its port ranges (B1–B5, C1,
// C2), per frontend IP what it has handed out.
func (m *Model) Plan() reference.Plan {
	pl := reference.Plan{Profile: "azure-lb", PoolSize: m.pool, Manual: m.perInst != 0, PerInstance: m.target(m.pool)}
	if pl.Manual {
		pl.MaxPool = len(m.frontends) * portsPerIP / m.perInst
	} else {
		pl.TierPorts = tierPorts(m.pool)
		pl.MaxPool = 1000
	}
	for i, bs := range m.blocks {
		ip := reference.InstancePlan{Index: i, Ports: len(bs) * blockSize}
		if i < len(m.backends) {
			ip.Inside = m.backends[i]
		}
		for _, g := range bs {
			a := m.frontends[g/nBlocksPerIP]
			first := uint16(firstPort + (g%nBlocksPerIP)*blockSize)
			last := first + blockSize - 1
			if n := len(ip.Ranges); n > 0 && ip.Ranges[n-1].IP == a && ip.Ranges[n-1].Last+1 == first {
				ip.Ranges[n-1].Last = last
			} else {
				ip.Ranges = append(ip.Ranges, reference.PortRange{IP: a, First: first, Last: last})
			}
		}
		pl.Instances = append(pl.Instances, ip)
	}
	for j, a := range m.frontends {
		n := 0
		for g := j * nBlocksPerIP; g < (j+1)*nBlocksPerIP; g++ {
			if m.owner[g] >= 0 {
				n += blockSize
			}
		}
		pl.Frontends = append(pl.Frontends, reference.FrontendPlan{IP: a, Allocated: n, Free: portsPerIP - n})
	}
	return pl
}

// Flows returns the number of live flows.
func (m *Model) Flows() int { return m.nLive }

func (m *Model) live() []*flow {
	if len(m.flows) > 2*m.nLive+64 {
		m.flows = slices.DeleteFunc(m.flows, func(f *flow) bool { return !f.live })
	}
	var out []*flow
	for _, f := range m.flows {
		if f.live {
			out = append(out, f)
		}
	}
	return out
}

// NextDeadline returns a live flow's release time picked by i (modulo the
// number of flows), or false when there is none: tests use it to land
// exactly on a boundary.
func (m *Model) NextDeadline(i int) (time.Time, bool) {
	fs := m.live()
	if len(fs) == 0 {
		return time.Time{}, false
	}
	return fs[i%len(fs)].deadline, true
}

// SomeFlow returns the outbound tuple (protocol, inside endpoint, first
// remote endpoint) and the SNAT endpoint of a live flow picked by i
// (modulo the number of flows), or false when there is none.
func (m *Model) SomeFlow(i int) (out reference.Tuple, snat netip.AddrPort, ok bool) {
	fs := m.live()
	if len(fs) == 0 {
		return reference.Tuple{}, netip.AddrPort{}, false
	}
	f := fs[i%len(fs)]
	return reference.Tuple{Proto: f.proto, Src: f.inside, Dst: f.remote}, f.snat, true
}

// remoteKey is the part of the remote endpoint that keys a flow: all of it
// for TCP (B6), the IP for UDP (B7).
func (m *Model) remoteKey(proto reference.Proto, a netip.AddrPort) netip.AddrPort {
	if proto == reference.UDP && !m.faults.has(UDPFullTuple) {
		return netip.AddrPortFrom(a.Addr(), 0)
	}
	return a
}

func (m *Model) event(f *flow, t time.Time, kind reference.EventKind, b reference.Behavior, why reference.ReleaseReason) {
	if m.obs != nil {
		m.obs(reference.Event{Time: t, Kind: kind, Behavior: b, Instance: f.inst, Proto: f.proto,
			Inside: f.inside, Remote: f.remote, SNAT: f.snat, Release: why})
	}
}

// setTime moves the clock to t, releasing every flow due by then.
func (m *Model) setTime(t time.Time, emit []reference.Packet) ([]reference.Packet, error) {
	if m.started && t.Before(m.now) {
		return emit, &reference.TimeError{Now: m.now, Got: t}
	}
	m.started = true
	m.now = t
	emit = append(emit, m.pending...)
	m.pending = m.pending[:0]
	return m.expire(t, emit), nil
}

func (m *Model) due(f *flow, t time.Time) bool {
	if m.faults.has(LateRelease) {
		return f.deadline.Before(t)
	}
	return !f.deadline.After(t)
}

// expire releases, in order of release time, the flows due by t (B10–B13)
// and sends the RSTs of B14.
func (m *Model) expire(t time.Time, emit []reference.Packet) []reference.Packet {
	if t.Before(m.nextCheck) {
		return emit
	}
	var due []*flow
	next := time.Time{}
	for _, f := range m.live() {
		if m.due(f, t) {
			due = append(due, f)
		} else if next.IsZero() || f.deadline.Before(next) {
			next = f.deadline
		}
	}
	if next.IsZero() {
		next = t.Add(1000 * time.Hour)
	}
	m.nextCheck = next
	sort.SliceStable(due, func(a, b int) bool { return due[a].deadline.Before(due[b].deadline) })
	for _, f := range due {
		why := reference.ReleaseIdle
		switch {
		case f.rst:
			why = reference.ReleaseRST
		case f.fixed:
			why = reference.ReleaseFIN
		}
		established := f.sawOut && f.sawIn // C6
		if why == reference.ReleaseIdle && m.resetIdle && f.proto == reference.TCP && (established || m.faults.has(ResetUnestablished)) {
			emit = append(emit,
				reference.Packet{Time: f.deadline, Dir: reference.Inbound, Tuple: reference.Tuple{Proto: reference.TCP, Src: f.remote, Dst: f.inside}, Flags: reference.RST | reference.ACK},
				reference.Packet{Time: f.deadline, Dir: reference.Outbound, Tuple: reference.Tuple{Proto: reference.TCP, Src: f.snat, Dst: f.remote}, Flags: reference.RST | reference.ACK})
			m.remember(f, f.deadline, false)
			m.event(f, f.deadline, reference.ResetSent, reference.B14, 0)
		}
		m.release(f, f.deadline, why)
	}
	return emit
}

// remember keeps a released flow for one idle timeout (C7).
func (m *Model) remember(f *flow, at time.Time, reclaimed bool) {
	keep := m.idle
	if m.faults.has(ShortMemory) && !reclaimed {
		keep /= 2
	}
	tb := tomb{until: at.Add(keep), reclaimed: reclaimed, inst: f.inst, inside: f.inside, snat: f.snat}
	m.tombOut[outKey{f.proto, f.inside, m.remoteKey(f.proto, f.remote)}] = tb
	m.tombIn[inKey{f.proto, f.snat, m.remoteKey(f.proto, f.remote)}] = tb
}

func (m *Model) release(f *flow, at time.Time, why reference.ReleaseReason) {
	f.live = false
	m.nLive--
	ok := outKey{f.proto, f.inside, m.remoteKey(f.proto, f.remote)}
	if m.out[ok] == f {
		delete(m.out, ok)
	}
	ik := inKey{f.proto, f.snat, m.remoteKey(f.proto, f.remote)}
	if m.in[ik] == f {
		delete(m.in, ik)
	}
	m.untake(f)
	pk := inKey{proto: f.proto, snat: f.snat}
	if m.portUse[pk]--; m.portUse[pk] == 0 {
		delete(m.portUse, pk)
	}
	b := map[reference.ReleaseReason]reference.Behavior{reference.ReleaseFIN: reference.B10, reference.ReleaseRST: reference.B11,
		reference.ReleaseIdle: reference.B12, reference.ReleaseReclaimed: reference.B16}[why]
	m.event(f, at, reference.Released, b, why)
}

func (m *Model) untake(f *flow) {
	if f.index < 0 {
		return
	}
	s := m.taken[f.slot]
	if j, found := slices.BinarySearch(s, f.index); found {
		s = slices.Delete(s, j, j+1)
	}
	if len(s) == 0 {
		delete(m.taken, f.slot)
	} else {
		m.taken[f.slot] = s
	}
	f.index = -1
}

func (m *Model) mark(f *flow, index int) {
	f.index = index
	s := m.taken[f.slot]
	j, _ := slices.BinarySearch(s, index)
	m.taken[f.slot] = slices.Insert(s, j, index)
}

// touch applies a translated packet to its flow (B10–B12).
func (m *Model) touch(f *flow, t time.Time, flags reference.TCPFlags, outbound bool) {
	if outbound {
		f.sawOut = true
	} else {
		f.sawIn = true
	}
	if f.proto == reference.TCP && flags&reference.RST != 0 {
		if d := t.Add(rstHold); !f.fixed || d.Before(f.deadline) || m.faults.has(RSTLengthensFIN) {
			f.deadline, f.fixed, f.rst = d, true, true
		}
	}
	if f.proto == reference.TCP && flags&reference.FIN != 0 && !f.fixed {
		f.deadline, f.fixed = t.Add(finHold), true
	}
	switch {
	case !f.fixed && (outbound || !m.faults.has(InboundNoRefresh)):
		f.deadline = t.Add(m.idle)
	case f.fixed && !f.rst && m.faults.has(FINRestart):
		f.deadline = t.Add(finHold)
	}
	if f.deadline.Before(m.nextCheck) {
		m.nextCheck = f.deadline
	}
}

func verdictDrop(r reference.DropReason, b reference.Behavior, inst int) reference.Verdict {
	return reference.Verdict{Action: reference.Dropped, Reason: r, Behavior: b, Instance: inst}
}

// Advance lets time pass until t and appends what the NAT sent meanwhile.
func (m *Model) Advance(t time.Time, emit []reference.Packet) ([]reference.Packet, error) {
	return m.setTime(t, emit)
}

// Process runs one packet at p.Time and returns the verdict and, appended
// to emit, the packets the NAT sent by then.
func (m *Model) Process(p reference.Packet, emit []reference.Packet) (reference.Verdict, []reference.Packet, error) {
	emit, err := m.setTime(p.Time, emit)
	if err != nil {
		return reference.Verdict{Instance: -1}, emit, err
	}
	tu := p.Tuple
	if p.Malformed { // its ports cannot be read
		return verdictDrop(reference.DropMalformed, reference.NoBehavior, -1), emit, nil
	}
	// B15.
	if p.Fragment {
		return verdictDrop(reference.DropFragment, reference.B15, -1), emit, nil
	}
	carried := (tu.Proto == reference.TCP && m.protocols != reference.UDPOnly) || (tu.Proto == reference.UDP && m.protocols != reference.TCPOnly)
	if !carried || !tu.Src.Addr().Is4() || !tu.Dst.Addr().Is4() {
		return verdictDrop(reference.DropUnsupported, reference.B15, -1), emit, nil
	}
	if p.Dir == reference.Inbound {
		v, emit := m.inbound(p, emit)
		return v, emit, nil
	}
	v, emit := m.outbound(p, emit)
	return v, emit, nil
}

// answer is B14 and B16 for a packet of a remembered flow (C7).
func (m *Model) answer(p reference.Packet, tb tomb, emit []reference.Packet) (reference.Verdict, []reference.Packet) {
	if tb.reclaimed {
		return verdictDrop(reference.DropReleased, reference.B16, tb.inst), emit
	}
	dir, remote := reference.Inbound, p.Tuple.Dst
	if p.Dir == reference.Inbound {
		dir, remote = reference.Outbound, p.Tuple.Src
	}
	emit = append(emit, reference.Packet{Time: p.Time, Dir: dir, Tuple: p.Tuple.Reverse(), Flags: reference.RST | reference.ACK})
	if m.obs != nil {
		m.obs(reference.Event{Time: p.Time, Kind: reference.ResetSent, Behavior: reference.B14, Instance: tb.inst,
			Proto: reference.TCP, Inside: tb.inside, Remote: remote, SNAT: tb.snat})
	}
	return reference.Verdict{Action: reference.Reset, Reason: reference.DropReleased, Behavior: reference.B14, Instance: tb.inst}, emit
}

func (m *Model) inbound(p reference.Packet, emit []reference.Packet) (reference.Verdict, []reference.Packet) {
	tu := p.Tuple
	if !slices.Contains(m.frontends, tu.Dst.Addr()) {
		return verdictDrop(reference.DropUnsolicited, reference.B8, -1), emit
	}
	k := inKey{tu.Proto, tu.Dst, m.remoteKey(tu.Proto, tu.Src)}
	if f := m.in[k]; f != nil {
		if f.proto == reference.UDP && !f.peers[tu.Src.Port()] && !m.faults.has(UDPFullCone) {
			if m.faults.has(DroppedRefresh) && !f.fixed {
				f.deadline = p.Time.Add(m.idle)
			}
			return verdictDrop(reference.DropUnsolicited, reference.B8, f.inst), emit
		}
		m.touch(f, p.Time, p.Flags, false)
		return reference.Verdict{Action: reference.Translated, Behavior: reference.B8, Instance: f.inst,
			Tuple: reference.Tuple{Proto: tu.Proto, Src: tu.Src, Dst: f.inside}}, emit
	}
	if tb, ok := m.tombIn[k]; ok && tb.until.After(p.Time) {
		return m.answer(p, tb, emit)
	}
	return verdictDrop(reference.DropUnsolicited, reference.B8, -1), emit
}

func reuseBehavior(proto reference.Proto) reference.Behavior {
	if proto == reference.UDP {
		return reference.B7
	}
	return reference.B6
}

func (m *Model) outbound(p reference.Packet, emit []reference.Packet) (reference.Verdict, []reference.Packet) {
	tu := p.Tuple
	k := outKey{tu.Proto, tu.Src, m.remoteKey(tu.Proto, tu.Dst)}
	if f := m.out[k]; f != nil {
		if f.proto == reference.UDP {
			f.peers[tu.Dst.Port()] = true
		}
		m.touch(f, p.Time, p.Flags, true)
		return reference.Verdict{Action: reference.Translated, Behavior: reuseBehavior(f.proto), Instance: f.inst,
			Tuple: reference.Tuple{Proto: tu.Proto, Src: f.snat, Dst: tu.Dst}}, emit
	}
	inst := slices.Index(m.backends, tu.Src.Addr())
	if inst < 0 {
		return verdictDrop(reference.DropNoInstance, reference.NoBehavior, -1), emit
	}
	syn := tu.Proto == reference.TCP && p.Flags&(reference.SYN|reference.ACK) == reference.SYN
	if tb, ok := m.tombOut[k]; ok && tb.until.After(p.Time) {
		if !syn {
			return m.answer(p, tb, emit)
		}
		delete(m.tombOut, k)
	}
	if tu.Proto == reference.TCP && !syn && m.strict {
		return verdictDrop(reference.DropNotSYN, reference.C5, inst), emit
	}
	owner, index := inst, m.choose(inst, tu.Proto, tu.Dst)
	if index < 0 && m.faults.has(BorrowPorts) {
		for j := range m.blocks {
			if j != inst {
				if index = m.choose(j, tu.Proto, tu.Dst); index >= 0 {
					owner = j
					break
				}
			}
		}
	}
	if index < 0 {
		return reference.Verdict{Action: reference.Dropped, Reason: reference.DropExhausted, Behavior: reference.B9, Instance: inst}, emit
	}
	m.seq++
	f := &flow{seq: m.seq, proto: tu.Proto, inst: owner, inside: tu.Src, remote: tu.Dst, snat: m.portAt(owner, index),
		slot: m.slotOf(owner, tu.Proto, tu.Dst), live: true, peers: map[uint16]bool{tu.Dst.Port(): true}}
	m.flows = append(m.flows, f)
	m.nLive++
	m.out[k] = f
	if ik := (inKey{f.proto, f.snat, m.remoteKey(f.proto, f.remote)}); m.in[ik] == nil {
		m.in[ik] = f // under TCPSameDestination the first flow keeps the inbound path
	}
	if m.faults.has(TCPSameDestination) && len(m.taken[f.slot]) == 1 && tu.Proto == reference.TCP && m.taken[f.slot][0] == index {
		f.index = -1 // shares the first flow's port, holds no slot of its own
	} else {
		m.mark(f, index)
	}
	pk := inKey{proto: f.proto, snat: f.snat}
	kind := reference.MappingCreated
	if m.portUse[pk] > 0 {
		kind = reference.MappingReused
	}
	m.portUse[pk]++
	m.event(f, p.Time, kind, reuseBehavior(f.proto), 0)
	if tu.Proto == reference.TCP && !syn {
		m.event(f, p.Time, reference.PickedUp, reference.C5, 0)
	}
	m.touch(f, p.Time, p.Flags, true)
	return reference.Verdict{Action: reference.Translated, Behavior: reuseBehavior(f.proto), Instance: owner, NewFlow: true,
		Tuple: reference.Tuple{Proto: tu.Proto, Src: f.snat, Dst: tu.Dst}}, emit
}

func (m *Model) slotOf(inst int, proto reference.Proto, remote netip.AddrPort) slotKey {
	if m.faults.has(NoPortReuse) {
		return slotKey{inst: inst, proto: proto}
	}
	return slotKey{inst, proto, m.remoteKey(proto, remote)}
}

// choose returns the index of instance inst's first port in C3 order that
// carries no flow toward remote (B6, B7), or -1 (B9).
func (m *Model) choose(inst int, proto reference.Proto, remote netip.AddrPort) int {
	s := m.taken[m.slotOf(inst, proto, remote)]
	if m.faults.has(TCPSameDestination) && proto == reference.TCP && len(s) == 1 {
		return s[0]
	}
	// s holds distinct indices in increasing order, so s[j] >= j, and the
	// first j with s[j] != j is the lowest index missing from s.
	j := sort.Search(len(s), func(j int) bool { return s[j] != j })
	if j >= m.nPorts(inst) {
		return -1
	}
	return j
}

// SetPool changes the pool at time t (B16): backends extend or truncate
// the list; poolSize 0 means len(backends). Timers due by t fire first;
// the packets they send are returned by the next Process or Advance.
func (m *Model) SetPool(t time.Time, backends []netip.Addr, poolSize int) error {
	if poolSize == 0 {
		poolSize = len(backends)
	}
	n := min(len(backends), len(m.backends))
	if !slices.Equal(backends[:n], m.backends[:n]) {
		return fmt.Errorf("snatmodel: %w", cfgErr("backends", backends, reference.B16, "a pool change keeps the instances in order"))
	}
	if err := checkAddrs("backend", backends); err != nil {
		return fmt.Errorf("snatmodel: %w", err)
	}
	if poolSize < 1 || poolSize < len(backends) {
		return fmt.Errorf("snatmodel: %w", cfgErr("pool size", poolSize, reference.NoBehavior, "want at least 1 and at least the backends given"))
	}
	if m.perInst == 0 && poolSize > 1000 {
		return fmt.Errorf("snatmodel: %w", cfgErr("pool size", poolSize, reference.B3, "the default table covers pools of 1 to 1,000"))
	}
	emit, err := m.setTime(t, nil)
	if err != nil {
		return fmt.Errorf("snatmodel: %w", err)
	}
	m.pending = emit
	target := m.target(poolSize)
	// Instances past the new pool give their blocks back.
	for i := poolSize; i < len(m.blocks); i++ {
		for _, g := range m.blocks[i] {
			m.owner[g] = -1
		}
	}
	if poolSize < len(m.blocks) {
		m.blocks = m.blocks[:poolSize]
	}
	// Default table: an instance over the new total keeps its lowest
	// blocks (the lower half when the pool crosses one tier).
	if m.perInst == 0 && !m.faults.has(NoReclaim) {
		for i, bs := range m.blocks {
			if keep := target / blockSize; len(bs) > keep {
				for _, g := range bs[keep:] {
					m.owner[g] = -1
				}
				m.blocks[i] = bs[:keep:keep]
			}
		}
	}
	// Then, in configuration order, an instance under its total takes the
	// lowest free blocks it lacks (default table), or its whole total if
	// it has none (a manual allocation never shrinks nor grows); new
	// instances last.
	for i, bs := range m.blocks {
		if lack := target - len(bs)*blockSize; lack > 0 && (m.perInst == 0 || len(bs) == 0) {
			m.give(i, m.take(i, lack))
		}
	}
	for i := len(m.blocks); i < poolSize; i++ {
		m.blocks = append(m.blocks, m.take(i, target))
	}
	m.backends = slices.Clone(backends)
	m.pool = poolSize
	// Flows on ports their instance no longer holds are released (B16)
	// and remembered, so that their late packets are dropped (C7).
	for _, f := range m.live() {
		if m.holds(f.inst, f.snat) {
			continue
		}
		if m.faults.has(ReclaimedFlowsSurvive) {
			continue
		}
		m.remember(f, t, true)
		m.release(f, t, reference.ReleaseReclaimed)
	}
	// Slot indices follow the new port order.
	m.taken = map[slotKey][]int{}
	for _, f := range m.live() {
		wasShared := f.index < 0
		f.index = -1
		if wasShared && m.faults.has(TCPSameDestination) {
			continue
		}
		if j := m.indexOf(f.inst, f.snat); j >= 0 {
			m.mark(f, j)
		}
	}
	return nil
}

// Lookup returns the SNAT endpoint of the live flow an outbound packet
// with tuple out would use, changing nothing.
func (m *Model) Lookup(out reference.Tuple) (netip.AddrPort, bool) {
	if f := m.out[outKey{out.Proto, out.Src, m.remoteKey(out.Proto, out.Dst)}]; f != nil {
		return f.snat, true
	}
	return netip.AddrPort{}, false
}
