package replay

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
)

// WriteJSON writes r as one indented JSON document.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report people read: what was replayed and how, the
// per instance × frontend IP × protocol table, the drops by reason with
// their behaviour IDs, and a verdict line per instance.
func WriteText(w io.Writer, r *Result) error {
	c := r.Config
	fmt.Fprintf(w, "natcheck replay of %s\n", strings.Join(r.Files, ", "))
	if !r.Start.IsZero() {
		fmt.Fprintf(w, "  %d packets from %s to %s (%s of capture time)\n", r.Counts.Packets,
			r.Start.Format(time.RFC3339Nano), r.End.Format(time.RFC3339Nano), r.End.Sub(r.Start).Round(time.Millisecond))
	}
	alloc := fmt.Sprintf("default table (B3): %d ports per instance", r.Plan.PerInstance)
	if c.PortsPerInstance != 0 {
		alloc = fmt.Sprintf("outbound rule (B4): %d ports per instance", c.PortsPerInstance)
	}
	fmt.Fprintf(w, "  profile %s; frontends %v; pool of %d; %s; idle timeout %v (B12); protocols %s (B15); tcpResetOnIdle %v (B14); %s mid-stream TCP (C5)\n",
		c.Profile, c.Frontends, c.PoolSize, alloc, c.IdleTimeout, c.Protocols, c.TCPResetOnIdle, map[bool]string{false: "pick-up of", true: "strict: no"}[c.Strict])
	fmt.Fprintf(w, "  backends %v, %s\n", r.Backends, r.BackendsHow)
	n := r.Counts
	fmt.Fprintf(w, "  through the NAT: %d outbound, %d replies (%d with no flow: B8); not through it: %d\n",
		n.Outbound, n.Replies, n.RepliesNoFlow, n.NotThroughNAT)
	fmt.Fprintf(w, "  passed over: %d IPv6, %d not IP, %d unreadable (link or IPv4 header cut or malformed); IPv4: %d TCP, %d UDP, %d ICMP, %d other, %d fragments\n",
		n.IPv6, n.NonIP, n.Cut, n.TCP, n.UDP, n.ICMP, n.Other, n.Fragments)
	fmt.Fprintf(w, "  verdicts: %d translated, %d dropped, %d answered with a RST; %d packets sent by the NAT (B14)\n\n",
		n.Translated, n.Dropped, n.Reset, n.Emitted)

	t := tablewriter.NewWriter(w)
	t.Header([]string{"inst", "inside", "frontend", "proto", "allocated", "peak", "in use at end", "flows", "exhausted", "first exhausted", "fin", "rst", "idle", "reclaimed"})
	for _, ir := range r.Instances {
		first := "-"
		if ir.FirstExhaustion != nil {
			first = fmt.Sprintf("pkt %d, +%s", ir.FirstExhaustion.Packet, ir.FirstExhaustion.Time.Sub(r.Start).Round(time.Microsecond))
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
			d.Until.Format(time.RFC3339Nano), d.Until.Sub(r.End).Round(time.Millisecond), d.Releases.FIN, d.Releases.RST, d.Releases.Idle)
	}
	if len(r.Drops) > 0 {
		fmt.Fprintln(w, "\ndrops by reason:")
		for _, reason := range dropOrder {
			if v := r.Drops[reason.name]; v > 0 {
				fmt.Fprintf(w, "  %-22s %8d  (%s)\n", reason.name, v, reason.why)
			}
		}
	}
	fmt.Fprintln(w, "\nverdict per instance:")
	for _, line := range r.Verdicts() {
		fmt.Fprintln(w, "  "+line)
	}
	return nil
}

var dropOrder = []struct{ name, why string }{
	{"exhausted", "B9: the instance had no SNAT port for a new flow"},
	{"unsolicited", "B8: inbound, no live flow"},
	{"unsupported-protocol", "B15: not TCP/UDP, or not carried by the rule"},
	{"fragment", "B15: IP fragment"},
	{"released", "B14/B16: packet of a reset or reclaimed flow"},
	{"not-syn", "C5 strict: no flow and not a SYN"},
	{"no-instance", "source is not a backend instance"},
	{"malformed", "transport, IPv4 or link header cut or impossible: no ports to translate"},
}

// Verdicts returns one line per instance that sent traffic: whether it ran
// out of ports, when first, and how close it came otherwise.
func (r *Result) Verdicts() []string {
	type agg struct {
		inside      string
		drops       uint64
		first       *Mark
		peak, alloc [2]int
		flows       uint64
	}
	var order []int
	byInst := map[int]*agg{}
	for _, ir := range r.Instances {
		a := byInst[ir.Instance]
		if a == nil {
			a = &agg{inside: ir.Inside.String()}
			byInst[ir.Instance] = a
			order = append(order, ir.Instance)
		}
		p := 0
		if ir.Proto == "udp" {
			p = 1
		}
		a.peak[p] += ir.Peak
		if ir.Instance < len(r.Plan.Instances) {
			a.alloc = [2]int{r.Plan.Instances[ir.Instance].Ports, r.Plan.Instances[ir.Instance].Ports}
		}
		a.flows += ir.Flows
		a.drops += ir.ExhaustionDrops
		if ir.FirstExhaustion != nil && (a.first == nil || ir.FirstExhaustion.Packet < a.first.Packet) {
			a.first = ir.FirstExhaustion
		}
	}
	var out []string
	for _, i := range order {
		a := byInst[i]
		if a.flows == 0 && a.drops == 0 {
			continue
		}
		use := fmt.Sprintf("peak %d/%d TCP and %d/%d UDP ports", a.peak[0], a.alloc[0], a.peak[1], a.alloc[1])
		if a.drops > 0 {
			out = append(out, fmt.Sprintf("instance %d (%s): EXHAUSTED: %s refused (B9), first at packet %d (+%s); %s",
				i, a.inside, plural(a.drops, "new flow"), a.first.Packet, a.first.Time.Sub(r.Start).Round(time.Microsecond), use))
			continue
		}
		out = append(out, fmt.Sprintf("instance %d (%s): ok: %s, never out of ports; %s", i, a.inside, plural(a.flows, "flow"), use))
	}
	if len(out) == 0 {
		out = append(out, "no instance opened a flow")
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
