package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/natcheck/natcheck/viewdiff"
	"github.com/spf13/cobra"
)

func newDiffCmd() *cobra.Command {
	var show int
	cmd := &cobra.Command{
		Use:   "diff A.pcapng B.pcapng",
		Short: "Compare two outside views of the same input up to a renaming of SNAT IPs and ports",
		Long: `diff compares two outside views of the same input (natcheck replay -w, or a
device's recording) up to a consistent renaming of SNAT IPs and ports. Two NATs
that chose different ports but made the same structure are equivalent: the
same packets left at the same times, to the same servers, and the SNAT
endpoints of one view map one to one onto the other's over the whole capture,
so that the flows that share a port, the flow that was refused and the flow a
port came back to are the same. Anything else is a difference, shown with
the packets of both views (packet numbers in each file) and what differs.

Exit code: 0 equivalent, 1 different, 2 bad usage, 3 a view that cannot be
read.`,
		Example: `  natcheck replay -w ref.pcapng trace.pcap
  natcheck replay --backends 10.9.9.9,10.0.0.0/8 -w other.pcapng trace.pcap
  natcheck diff ref.pcapng other.pcapng`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, files []string) error {
			views := make([][]viewdiff.Packet, 2)
			for i, f := range files {
				v, err := viewdiff.Read(f)
				if err != nil {
					return &exitError{code: exitInput, err: fmt.Errorf("diff: %w", err)}
				}
				views[i] = v
			}
			r := viewdiff.Compare(views[0], views[1])
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "A = %s: %d packets, %s\nB = %s: %d packets, %s\n",
				files[0], r.PacketsA, snatIPs(r.SNATIPsA), files[1], r.PacketsB, snatIPs(r.SNATIPsB))
			if len(r.SNATIPsA)+len(r.SNATIPsB) == 0 {
				fmt.Fprintf(w, "%d packets paired; no SNAT IP found: no natcheck comment names one (\"… via IP:port\") and no paired packet's endpoints differ\n", r.Paired)
			} else {
				fmt.Fprintf(w, "%d packets paired; %d SNAT endpoints, %d of them renamed\n", r.Paired, len(r.Endpoints), r.Renamed)
			}
			if r.Equivalent() && r.Identical {
				fmt.Fprintln(w, "equivalent: identical, every packet with the same endpoints in both views (nothing renamed)")
				return nil
			}
			if r.Equivalent() {
				fmt.Fprintln(w, "equivalent: the same structure up to a renaming of SNAT endpoints")
				var ex []string
				for _, e := range r.Endpoints {
					if e.A != e.B && len(ex) < 3 {
						ex = append(ex, fmt.Sprintf("%s %v → %v", e.Proto, e.A, e.B))
					}
				}
				if len(ex) > 0 {
					fmt.Fprintf(w, "  renamed, e.g.: %s\n", strings.Join(ex, ", "))
				}
				return nil
			}
			fmt.Fprintf(w, "DIFFERENT: %d differences; the first %d:\n", len(r.Differences), min(show, len(r.Differences)))
			for _, d := range r.Differences[:min(show, len(r.Differences))] {
				fmt.Fprintln(w, "  "+d.String())
			}
			return &exitError{code: exitFailed, err: fmt.Errorf("diff: %s and %s differ in structure (%d differences)", files[0], files[1], len(r.Differences))}
		},
	}
	cmd.Flags().IntVar(&show, "show", 10, "how many differences to show")
	return cmd
}

// snatIPs says which SNAT IPs a view was found to use.
func snatIPs(ips []netip.Addr) string {
	if len(ips) == 0 {
		return "SNAT IPs not found"
	}
	return fmt.Sprintf("SNAT IPs %v", ips)
}
