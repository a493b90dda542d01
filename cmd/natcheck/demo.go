package main

import (
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/olekukonko/tablewriter"
	"github.com/spf13/cobra"
)

func newDemoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run the reference engine on a built-in scenario: a burst that exhausts one instance's ports",
		Long: `demo runs a built-in scenario through the reference engine: a pool of 60
instances behind one frontend IP (512 SNAT ports each, B3); instance 0
opens 600 connections to one API server in one second, so the 513th and
later are refused (B9) while other instances and destinations are
unaffected; 100 of them are reset (B11) and their ports come back 15 s later.`,
		Example: "  natcheck demo",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.OutOrStdout())
		},
	}
}

func runDemo(w io.Writer) error {
	cfg := reference.Config{Frontends: []netip.Addr{netip.MustParseAddr("203.0.113.1")}}
	for i := range 60 {
		cfg.Backends = append(cfg.Backends, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}))
	}
	var firstExhaustion *reference.Event
	byBehavior := map[reference.Behavior]int{}
	cfg.Observer = func(ev reference.Event) {
		byBehavior[ev.Behavior]++
		if ev.Kind == reference.Exhausted && firstExhaustion == nil {
			firstExhaustion = &ev
		}
	}
	e, err := reference.New(cfg)
	if err != nil {
		return err
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	api := netip.MustParseAddrPort("198.51.100.10:443")
	send := func(at time.Duration, src netip.AddrPort, dst netip.AddrPort, fl reference.TCPFlags) (reference.Verdict, error) {
		v, _, err := e.Process(reference.Packet{Time: t0.Add(at), Tuple: reference.Tuple{Proto: reference.TCP, Src: src, Dst: dst}, Flags: fl}, nil)
		return v, err
	}
	inst0 := cfg.Backends[0]
	for i := range 600 {
		at := time.Duration(i) * time.Second / 600
		if _, err := send(at, netip.AddrPortFrom(inst0, uint16(40000+i)), api, reference.SYN); err != nil {
			return err
		}
	}
	for i := range 100 {
		if _, err := send(2*time.Second, netip.AddrPortFrom(inst0, uint16(40000+i)), api, reference.RST); err != nil {
			return err
		}
	}
	refusedAt16 := 0
	for i := range 100 {
		v, err := send(17*time.Second, netip.AddrPortFrom(inst0, uint16(41000+i)), api, reference.SYN)
		if err != nil {
			return err
		}
		if v.Action != reference.Translated {
			refusedAt16++
		}
	}
	other, err := send(17*time.Second, netip.AddrPortFrom(cfg.Backends[1], 40000), api, reference.SYN)
	if err != nil {
		return err
	}

	fmt.Fprintf(w, "scenario: 60 instances on 203.0.113.1, default table (B3) gives %d ports each\n", e.Plan().PerInstance)
	if firstExhaustion != nil {
		fmt.Fprintf(w, "B9: instance 0 exhausted at %s: %s -> %s refused\n", firstExhaustion.Time.Sub(t0), firstExhaustion.Inside, firstExhaustion.Remote)
	}
	fmt.Fprintf(w, "B5: instance 1's first connection to the same server: %s via %s\n", other.Action, other.Tuple.Src)
	fmt.Fprintf(w, "B11: 100 connections reset at 2 s; 100 new ones at 17 s: %d refused\n\n", refusedAt16)
	t := tablewriter.NewWriter(w)
	t.Header([]string{"instance", "inside", "proto", "allocated", "in use", "peak", "flows", "exhaustion drops", "released rst"})
	for _, s := range e.Stats() {
		if s.Flows == 0 && s.ExhaustionDrops == 0 {
			continue
		}
		if err := t.Append([]string{fmt.Sprint(s.Instance), s.Inside.String(), s.Proto.String(), fmt.Sprint(s.Allocated),
			fmt.Sprint(s.InUse), fmt.Sprint(s.Peak), fmt.Sprint(s.Flows), fmt.Sprint(s.ExhaustionDrops),
			fmt.Sprint(s.Releases[reference.ReleaseRST])}); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nevents by behaviour:")
	for _, b := range reference.Behaviors() {
		if n := byBehavior[b]; n > 0 {
			fmt.Fprintf(w, "  %-4s %d\n", b, n)
		}
	}
	return nil
}
