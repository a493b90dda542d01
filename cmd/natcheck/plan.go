package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/natcheck/natcheck/reference"
	"github.com/olekukonko/tablewriter"
	"github.com/spf13/cobra"
)

func newPlanCmd() *cobra.Command {
	var pf profileFlags
	var (
		pool, ips, perInstance int
		frontends              []string
	)
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Print the SNAT port allocation for a pool and frontend IPs (B1–B5, C1, C2)",
		Long: `plan prints how the frontend IPs' 64,000 SNAT ports each are split among the
backend instances: each instance's port ranges and total (which is also the
number of concurrent connections it can hold to one destination IP:port, B6),
what each frontend IP has left, and the largest pool the configuration
admits. It fails exactly where B2–B4 reject a configuration.

--profile linux prints the same plan: natcheck's Linux device writes one
SNAT rule per instance onto its ranges (L1). azure-natgw and rfc have no
plan (every instance shares the public IPs' ports, G1, R3): plan says so
and exits 2.`,
		Example: `  natcheck plan --pool-size 60 --frontend-ips 1
  natcheck plan --pool-size 10 --frontend-ips 1 --ports-per-instance 6400
  natcheck plan --pool-size 3 --frontend 203.0.113.1,203.0.113.2 --ports-per-instance 40000
  natcheck plan --profile linux --pool-size 4 --ports-per-instance 1024`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fr, err := frontendAddrs(frontends, ips)
			if err != nil {
				return usageErr(err)
			}
			prof, err := pf.profile(cmd)
			if err != nil {
				return usageErr(err)
			}
			if prof.Quota == reference.QuotaShared {
				return usageErr(fmt.Errorf("plan: profile %s has no allocation plan: every instance shares every public IP's ports (%s)", prof.Name, sharedItem(prof)))
			}
			pl, err := reference.PlanFor(reference.Config{Profile: prof, Frontends: fr, PoolSize: pool, PortsPerInstance: perInstance})
			if err != nil {
				return usageErr(err)
			}
			return writePlan(cmd.OutOrStdout(), pl)
		},
	}
	f := cmd.Flags()
	f.IntVar(&pool, "pool-size", 1, "backend instances in the pool")
	f.IntVar(&ips, "frontend-ips", 1, "number of frontend IPs (named 203.0.113.1, .2, …) when --frontend is not given")
	f.StringSliceVar(&frontends, "frontend", nil, "frontend IPv4 addresses, in order (overrides --frontend-ips)")
	f.IntVar(&perInstance, "ports-per-instance", 0, "outbound rule: SNAT ports per instance, a multiple of 8 (0: the default table, B3)")
	pf.register(cmd)
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if pool < 1 {
			return usageErr(fmt.Errorf("--pool-size %d: want 1 or more backend instances", pool))
		}
		return nil
	}
	return cmd
}

// frontendAddrs parses --frontend, or names k documentation addresses.
func frontendAddrs(list []string, k int) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range list {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("--frontend %s: not an IPv4 address", strings.TrimSpace(s))
		}
		out = append(out, a)
	}
	if len(out) > 0 {
		return out, nil
	}
	if k < 1 || k > 254 {
		return nil, fmt.Errorf("--frontend-ips %d: want 1 to 254 (or list them with --frontend)", k)
	}
	for i := range k {
		out = append(out, netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}))
	}
	return out, nil
}

func writePlan(w io.Writer, pl reference.Plan) error {
	mode := fmt.Sprintf("default table (B3): %d ports per IP for a pool of %d", pl.TierPorts, pl.PoolSize)
	if pl.Manual {
		mode = fmt.Sprintf("outbound rule (B4): %d ports per instance", pl.PerInstance)
	}
	fmt.Fprintf(w, "profile %s, %s\n", pl.Profile, mode)
	if pl.Profile == reference.NameLinux {
		fmt.Fprintf(w, "each instance: one SNAT rule onto its %d ports (L1) = up to %d concurrent flows to one destination IP:port, TCP and UDP alike (L3); Linux may refuse a flow before all are taken (L4)\n",
			pl.PerInstance, pl.PerInstance)
	} else {
		fmt.Fprintf(w, "each instance: %d SNAT ports = %d concurrent TCP connections to one destination IP:port (B6), %d UDP mappings toward one destination IP (B7)\n",
			pl.PerInstance, pl.PerInstance, pl.PerInstance)
	}
	fmt.Fprintf(w, "largest pool this allocation admits: %d instances\n\n", pl.MaxPool)

	t := tablewriter.NewWriter(w)
	t.Header([]string{"instance", "inside", "ports", "ranges"})
	for _, in := range pl.Instances {
		inside := "-"
		if in.Inside.IsValid() {
			inside = in.Inside.String()
		}
		var rs []string
		for _, r := range in.Ranges {
			rs = append(rs, fmt.Sprintf("%s:%d-%d", r.IP, r.First, r.Last))
		}
		if err := t.Append([]string{fmt.Sprint(in.Index), inside, fmt.Sprint(in.Ports), strings.Join(rs, " ")}); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	ft := tablewriter.NewWriter(w)
	ft.Header([]string{"frontend IP", "allocated", "free"})
	for _, f := range pl.Frontends {
		if err := ft.Append([]string{f.IP.String(), fmt.Sprint(f.Allocated), fmt.Sprint(f.Free)}); err != nil {
			return err
		}
	}
	return ft.Render()
}
