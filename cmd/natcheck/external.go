package main

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/natcheck/natcheck/device/external"
	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/device/livecheck"
	"github.com/natcheck/natcheck/device/pace"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// externalFlags describe a third-party device for "natcheck verify".
type externalFlags struct {
	inside, outside string
	public          []string
	gateway         string
	backends        []string
	portsPer        int
}

func (x *externalFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&x.inside, "inside", "", "check a third-party NAT: the `IF` on its inside link (natcheck stands for its instances there; give an interface with no address of its own)")
	f.StringVar(&x.outside, "outside", "", "with --inside: the `IF` on the NAT's outside link (natcheck stands for the servers and the upstream router)")
	f.StringSliceVar(&x.public, "public", nil, "with --inside: the NAT's public `IP`s (its frontend IPs, in order)")
	f.StringVar(&x.gateway, "gateway", "", "with --inside: the NAT's own `IP` on the inside link (found by ARP)")
	f.StringSliceVar(&x.backends, "backends", []string{"10.0.0.1"}, "with --inside: the inside `IP`s the NAT translates, in order (the instances of its configuration)")
	f.IntVar(&x.portsPer, "ports-per-instance", 0, "with --inside: the NAT's ports per instance (0: the default table), as configured")
}

// set reports whether the third-party device flags were given.
func (x *externalFlags) set() bool { return x.inside != "" || x.outside != "" }

// verifyExternal checks the third-party NAT the flags describe: checks
// whose configuration is the stated one run, one at a time; the others
// are not checked.
func verifyExternal(cmd *cobra.Command, x *externalFlags, scale, attempts int) error {
	if x.inside == "" || x.outside == "" || len(x.public) == 0 || x.gateway == "" {
		return usageErr(errors.New("verify: a third-party NAT needs --inside IF, --outside IF, --public IP[,IP…] and --gateway IP"))
	}
	var stated reference.Config
	for _, p := range [][]string{x.public, x.backends} {
		for _, s := range p {
			a, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil || !a.Is4() {
				return usageErr(fmt.Errorf("verify: %q: want an IPv4 address", s))
			}
			if len(stated.Frontends) < len(x.public) {
				stated.Frontends = append(stated.Frontends, a)
			} else {
				stated.Backends = append(stated.Backends, a)
			}
		}
	}
	stated.PortsPerInstance = x.portsPer
	gw, err := netip.ParseAddr(x.gateway)
	if err != nil || !gw.Is4() {
		return usageErr(fmt.Errorf("verify: --gateway %q: want an IPv4 address", x.gateway))
	}
	prof, err := profileOf(cmd)
	if err != nil {
		return usageErr(fmt.Errorf("verify: %w", err))
	}
	prof.Conntrack.StreamAfter *= timeDuration(scale)
	checks, err := specs.ChecksFor(prof.Name)
	if err != nil {
		return usageErr(err)
	}
	only, err := behaviorsOf(cmd)
	if err != nil {
		return err
	}
	in, err := link.OpenHere(x.inside)
	if err != nil {
		return fmt.Errorf("verify --inside: %w", err)
	}
	defer in.Close()
	out, err := link.OpenHere(x.outside)
	if err != nil {
		return fmt.Errorf("verify --outside: %w", err)
	}
	defer out.Close()
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), 1+runtime.NumCPU()))
	dev, err := external.Attach(in, out, external.Options{Stated: stated, Gateway: gw, Scale: scale, Tolerance: pace.Tolerance()})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	cal := dev.Calibration()
	impl := external.Impl("device", prof, dev)
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "third-party NAT on %s (inside, MAC %v) and %s (outside, MAC %v) against profile %s: keeps the IP ID %v, shifts TCP sequence numbers %v, latency p99 %v, a packet is judged dropped after %v; time scale %d, resolution %v\n\n",
		x.inside, cal.InsideMAC, x.outside, cal.OutsideMAC, prof.Name, cal.Fields.IPID, cal.Fields.SeqShift, cal.Latency, cal.Deadline, scale, impl.Resolution)
	m, err := livecheck.Verify(cmd.Context(), impl, checks, only, livecheck.Options{Parallel: 1, Attempts: attempts})
	if err != nil {
		return err
	}
	return reportDevice(cmd, m)
}
