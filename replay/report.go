package replay

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/olekukonko/tablewriter"
)

// TextOptions says how much of a report WriteTextOptions writes.
type TextOptions struct {
	// Rows is how many instances the table and the verdicts show when
	// more sent traffic: those under most pressure (the highest peak use
	// of their allocation), and every instance that ran out of ports
	// besides. 0 means DefaultRows; a negative number, every instance.
	Rows int
}

// DefaultRows is how many instances a report shows by default.
const DefaultRows = 20

// maxListed is how many addresses the report's header lists; past it, it
// gives the count, the first and the last.
const maxListed = 8

// WriteText writes the report people read with the default options.
func WriteText(w io.Writer, r *Result) error { return WriteTextOptions(w, r, TextOptions{}) }

// WriteTextOptions writes the report people read: what was replayed and
// how, the per instance × frontend IP × protocol table, the drops by
// reason with their behaviour IDs, and a verdict line per instance. At
// scale (more instances sent traffic than o.Rows), the table and the
// verdicts keep the instances under most pressure and every one that ran
// out of ports, after a line of totals; the header never lists more than a
// few addresses.
func WriteTextOptions(w io.Writer, r *Result, o TextOptions) error {
	c := r.Config
	fmt.Fprintf(w, "natcheck replay of %s\n", strings.Join(r.Files, ", "))
	if r.Partial != "" {
		fmt.Fprintf(w, "  PARTIAL REPORT: the replay stopped before the end of its input (%s); what follows covers the packets before that point\n", r.Partial)
	}
	if !r.Start.IsZero() {
		fmt.Fprintf(w, "  %s from %s to %s (%s of capture time)\n", plural(uint64(r.Counts.Packets), "packet"),
			r.Start.Format(time.RFC3339Nano), r.End.Format(time.RFC3339Nano), reference.FormatDuration(r.End.Sub(r.Start).Round(time.Millisecond)))
	}
	alloc := fmt.Sprintf("default table (B3): %d ports per instance", r.Plan.PerInstance)
	if c.PortsPerInstance != 0 {
		alloc = fmt.Sprintf("outbound rule (B4): %d ports per instance", c.PortsPerInstance)
	}
	switch c.Profile {
	case "", reference.NameAzureLB:
		fmt.Fprintf(w, "  profile %s; frontends %v; pool of %d; %s; idle timeout %v (B12); protocols %s (B15); tcpResetOnIdle %v (B14); %s mid-stream TCP (C5)\n",
			c.Profile, addrList(c.Frontends), c.PoolSize, alloc, reference.FormatDuration(c.IdleTimeout), c.Protocols, c.TCPResetOnIdle, map[bool]string{false: "pick-up of", true: "strict: no"}[c.Strict])
	case reference.NameLinux:
		fmt.Fprintf(w, "  profile linux; frontends %v; pool of %d; one SNAT rule per instance from the %s (L1); connection-tracking timers (L5–L7); %s\n",
			addrList(c.Frontends), c.PoolSize, alloc, map[bool]string{false: "tcp_loose as the sysctls say (L9)", true: "strict: tcp_loose=0 (L9)"}[c.Strict])
	default:
		fmt.Fprintf(w, "  profile %s; frontends %v (one inventory shared by a pool of %d); the profile's own timers\n", c.Profile, addrList(c.Frontends), c.PoolSize)
	}
	fmt.Fprintf(w, "  backends %v, %s\n", addrList(r.Backends), r.BackendsHow)
	n := r.Counts
	fmt.Fprintf(w, "  through the NAT: %d outbound, %d replies (%d with no flow: B8); not through it: %d\n",
		n.Outbound, n.Replies, n.RepliesNoFlow, n.NotThroughNAT)
	fmt.Fprintf(w, "  passed over: %d IPv6, %d not IP, %d unreadable (link or IPv4 header cut or malformed); IPv4: %d TCP, %d UDP, %d ICMP, %d other, %d fragments\n",
		n.IPv6, n.NonIP, n.Cut, n.TCP, n.UDP, n.ICMP, n.Other, n.Fragments)
	sent := reference.B14
	if c.Profile != "" && c.Profile != reference.NameAzureLB {
		sent = reference.G6
	}
	fmt.Fprintf(w, "  verdicts: %d translated, %d dropped, %d answered with a RST; %d packets sent by the NAT (%v)\n\n",
		n.Translated, n.Dropped, n.Reset, n.Emitted, sent)

	verdicts := r.InstanceVerdicts()
	shown, cut := selectInstances(verdicts, o.Rows)
	if cut {
		writeTotals(w, r, verdicts, shown)
	}
	t := tablewriter.NewWriter(w)
	t.Header([]string{"inst", "inside", "frontend", "proto", "allocated", "peak", "in use at end", "flows", "exhausted", "first exhausted", "fin", "rst", "idle", "reclaimed"})
	for _, ir := range r.tableRows(verdicts, shown, cut) {
		first := "-"
		if ir.FirstExhaustion != nil {
			first = fmt.Sprintf("pkt %d, +%s", ir.FirstExhaustion.Packet, reference.FormatDuration(ir.FirstExhaustion.Time.Sub(r.Start).Round(time.Microsecond)))
		}
		row := []string{fmt.Sprint(ir.Instance), ir.Inside.String(), ir.Frontend.String(), ir.Proto, fmt.Sprint(ir.Allocated),
			fmt.Sprint(ir.Peak), fmt.Sprint(ir.InUse), fmt.Sprint(ir.Flows), fmt.Sprint(ir.ExhaustionDrops), first,
			fmt.Sprint(ir.Releases.FIN), fmt.Sprint(ir.Releases.RST), fmt.Sprint(ir.Releases.Idle), fmt.Sprint(ir.Releases.Reclaimed)}
		if err := t.Append(row); err != nil {
			return err
		}
	}
	if len(r.Instances) > 0 {
		if err := t.Render(); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(w, "  no instance opened a flow")
	}
	if d := r.Drained; d != nil {
		fmt.Fprintf(w, "\nafter the last packet (--drain), the clock ran on to %s (+%s): %d fin, %d rst, %d idle releases (B10–B12)\n",
			d.Until.Format(time.RFC3339Nano), reference.FormatDuration(d.Until.Sub(r.End).Round(time.Millisecond)), d.Releases.FIN, d.Releases.RST, d.Releases.Idle)
	}
	if len(r.Drops) > 0 {
		fmt.Fprintln(w, "\ndrops by reason:")
		for _, name := range r.dropReasons() {
			_, why := dropInfo(c.Profile, name)
			fmt.Fprintf(w, "  %-22s %8d  (%s)\n", name, r.Drops[name], why)
		}
	}
	fmt.Fprintln(w, "\nverdict per instance:")
	switch {
	case len(verdicts) == 0:
		fmt.Fprintln(w, "  no instance opened a flow")
	case cut:
		for _, i := range shown {
			fmt.Fprintln(w, "  "+verdicts[i].Line)
		}
		fmt.Fprintf(w, "  … and %d more instances (--table all, or --json, shows every one)\n", len(verdicts)-len(shown))
	default:
		for _, v := range verdicts {
			fmt.Fprintln(w, "  "+v.Line)
		}
	}
	return nil
}

// addrList is a list of addresses for the report's header: all of them
// up to maxListed, else their count, the first and the last.
func addrList(as []netip.Addr) string {
	if len(as) <= maxListed {
		return fmt.Sprint(as)
	}
	return fmt.Sprintf("[%d addresses: %v … %v]", len(as), as[0], as[len(as)-1])
}

// pressure is an instance's peak use of its allocation: the highest of its
// TCP and UDP peaks over its allocation.
func (v *Verdict) pressure() float64 {
	p := 0.0
	for i := range v.Peak {
		if v.Allocated[i] > 0 {
			p = max(p, float64(v.Peak[i])/float64(v.Allocated[i]))
		}
	}
	return p
}

// selectInstances picks, when more than rows instances sent traffic (rows
// 0 means DefaultRows, negative means all), the indexes in verdicts of the
// rows under most pressure and of every instance that ran out of ports,
// most pressure first (then most refused, then pool order); cut reports
// whether it left any out. Otherwise it returns every index in pool order.
func selectInstances(verdicts []Verdict, rows int) (shown []int, cut bool) {
	if rows == 0 {
		rows = DefaultRows
	}
	all := make([]int, len(verdicts))
	for i := range all {
		all[i] = i
	}
	if rows < 0 || len(verdicts) <= rows {
		return all, false
	}
	slices.SortStableFunc(all, func(a, b int) int {
		va, vb := &verdicts[a], &verdicts[b]
		pa, pb := va.pressure(), vb.pressure()
		switch {
		case pa != pb:
			if pa > pb {
				return -1
			}
			return 1
		case va.Refused != vb.Refused:
			if va.Refused > vb.Refused {
				return -1
			}
			return 1
		}
		return 0 // pool order, as verdicts are
	})
	n := rows
	for _, i := range all[n:] {
		if verdicts[i].Exhausted { // every one, however many
			all[n] = i
			n++
		}
	}
	return all[:n], n < len(all)
}

// writeTotals writes the line of totals over every instance that a cut
// table starts with.
func writeTotals(w io.Writer, r *Result, verdicts []Verdict, shown []int) {
	var flows, refused uint64
	exhausted := 0
	for i := range verdicts {
		flows += verdicts[i].Flows
		refused += verdicts[i].Refused
		if verdicts[i].Exhausted {
			exhausted++
		}
	}
	fmt.Fprintf(w, "  totals: %d instances sent traffic, %s; %d ran out of ports (%v), %s refused\n",
		len(verdicts), plural(flows, "flow"), exhausted, r.exhaustedItem(), plural(refused, "new flow"))
	fmt.Fprintf(w, "  shown: the %d under most pressure (peak use of their allocation) and every one that ran out; --table all, or --json, shows every instance\n\n", len(shown))
}

// tableRows returns the table's rows: every row of r.Instances, or, when
// cut, those of the shown instances in the order shown.
func (r *Result) tableRows(verdicts []Verdict, shown []int, cut bool) []InstanceReport {
	if !cut {
		return r.Instances
	}
	rows := map[int][]InstanceReport{}
	for _, i := range shown {
		rows[verdicts[i].Instance] = nil
	}
	for _, ir := range r.Instances {
		if rs, ok := rows[ir.Instance]; ok {
			rows[ir.Instance] = append(rs, ir)
		}
	}
	var out []InstanceReport
	for _, i := range shown {
		out = append(out, rows[verdicts[i].Instance]...)
	}
	return out
}

// dropOrder lists the drop reasons in the order reports show them, each
// with why; the behaviour it cites depends on the profile
// (reference.Profile.Cites).
var dropOrder = []struct {
	reason reference.DropReason
	why    string
}{
	{reference.DropExhausted, "the instance had no SNAT port for a new flow"},
	{reference.DropUnsolicited, "inbound, no live flow (azure-natgw answers a TCP one, from either side, with a RST: G6)"},
	{reference.DropUnsupported, "a protocol the NAT does not translate, or the rule does not carry"},
	{reference.DropFragment, "IP fragment"},
	{reference.DropReleased, "packet of a reset or reclaimed flow (B14/B16)"},
	{reference.DropNotSYN, "strict: no flow and not a SYN"},
	{reference.DropInvalid, "a TCP packet connection tracking holds invalid: never sent on with an inside address"},
	{reference.DropNoInstance, "source is not a backend instance"},
	{reference.DropMalformed, "transport, IPv4 or link header cut or impossible: no ports to translate"},
}

// dropReasons returns the reasons of r.Drops in report order: those of
// dropOrder first, then any other in name order.
func (r *Result) dropReasons() []string {
	var out []string
	known := map[string]bool{}
	for _, d := range dropOrder {
		name := d.reason.String()
		known[name] = true
		if r.Drops[name] > 0 {
			out = append(out, name)
		}
	}
	var rest []string
	for name, v := range r.Drops {
		if !known[name] && v > 0 {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// exhaustedItem is the item a refused new flow cites under the replay's
// profile: B9, L4, G3 or R3.
func (r *Result) exhaustedItem() reference.Behavior {
	b, _ := dropInfo(r.Config.Profile, reference.DropExhausted.String())
	return b
}

// dropInfo returns the behaviour a drop reason cites under profile
// (azure-lb when empty or unknown) and its explanation, "B9: the instance
// had …".
func dropInfo(profile, name string) (reference.Behavior, string) {
	p, err := reference.ProfileByName(profile)
	if err != nil {
		p = reference.AzureLB()
	}
	for _, d := range dropOrder {
		if d.reason.String() == name {
			b := p.Cites(d.reason)
			if b == reference.NoBehavior {
				return b, d.why
			}
			return b, b.String() + ": " + d.why
		}
	}
	return reference.NoBehavior, ""
}

// Verdict is the judgement on one instance that sent traffic: whether it
// ran out of ports (B9), when first, and how close it came otherwise.
type Verdict struct {
	Instance int        `json:"instance"`
	Inside   netip.Addr `json:"inside"`
	// Exhausted is set when new flows of the instance were refused (B9).
	Exhausted bool   `json:"exhausted"`
	Flows     uint64 `json:"flows"`
	Refused   uint64 `json:"refused"`
	// First is the first refusal, when Exhausted.
	First *Mark `json:"-"`
	// Peak and Allocated are SNAT ports, indexed 0 TCP, 1 UDP.
	Peak      [2]int `json:"-"`
	Allocated [2]int `json:"-"`
	// Line is the verdict as the text report writes it.
	Line string `json:"line"`
}

// InstanceVerdicts returns the verdict of every instance that sent
// traffic, in pool order.
func (r *Result) InstanceVerdicts() []Verdict {
	var order []int
	byInst := map[int]*Verdict{}
	for _, ir := range r.Instances {
		v := byInst[ir.Instance]
		if v == nil {
			v = &Verdict{Instance: ir.Instance, Inside: ir.Inside}
			byInst[ir.Instance] = v
			order = append(order, ir.Instance)
		}
		p := 0
		if ir.Proto == "udp" {
			p = 1
		}
		v.Peak[p] += ir.Peak
		if ir.Instance < len(r.Plan.Instances) {
			v.Allocated = [2]int{r.Plan.Instances[ir.Instance].Ports, r.Plan.Instances[ir.Instance].Ports}
		}
		v.Flows += ir.Flows
		v.Refused += ir.ExhaustionDrops
		if ir.FirstExhaustion != nil && (v.First == nil || ir.FirstExhaustion.Packet < v.First.Packet) {
			v.First = ir.FirstExhaustion
		}
	}
	out := make([]Verdict, 0, len(order))
	for _, i := range order {
		v := byInst[i]
		if v.Flows == 0 && v.Refused == 0 {
			continue
		}
		v.Exhausted = v.Refused > 0
		use := fmt.Sprintf("peak %d/%d TCP and %d/%d UDP ports", v.Peak[0], v.Allocated[0], v.Peak[1], v.Allocated[1])
		if v.Exhausted {
			v.Line = fmt.Sprintf("instance %d (%s): EXHAUSTED: %s refused (%v), first at packet %d (+%s); %s",
				i, v.Inside, plural(v.Refused, "new flow"), r.exhaustedItem(), v.First.Packet, reference.FormatDuration(v.First.Time.Sub(r.Start).Round(time.Microsecond)), use)
		} else {
			v.Line = fmt.Sprintf("instance %d (%s): ok: %s, never out of ports; %s", i, v.Inside, plural(v.Flows, "flow"), use)
		}
		out = append(out, *v)
	}
	return out
}

// Verdicts returns the verdict lines of InstanceVerdicts, or one line
// saying that no instance opened a flow.
func (r *Result) Verdicts() []string {
	vs := r.InstanceVerdicts()
	if len(vs) == 0 {
		return []string{"no instance opened a flow"}
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Line
	}
	return out
}

// plural returns "1 flow" or "2 flows".
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
