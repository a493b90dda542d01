package main

import (
	"errors"

	"fmt"
	"github.com/natcheck/natcheck/internal/modelnat"
	"github.com/natcheck/natcheck/specs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/natcheck/natcheck/reference"
)

// profileFlags are --profile and the profile's own parameters, shared by
// replay, plan and verify.
type profileFlags struct {
	name           string
	filtering      string
	sysctlFile     string
	sysctlDir      string
	udpTimeout     time.Duration
	tcpEstablished time.Duration
	tcpTransitory  time.Duration
	inboundRefresh bool
	seed           uint64
}

// profileOnly names, per parameter flag, the profile it belongs to.
var profileOnly = map[string]string{
	"filtering": reference.NameRFC, "udp-timeout": reference.NameRFC, "tcp-established-timeout": reference.NameRFC,
	"tcp-transitory-timeout": reference.NameRFC, "inbound-refresh": reference.NameRFC,
	"sysctl": reference.NameLinux, "sysctl-dir": reference.NameLinux,
}

func (pf *profileFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&pf.name, "profile", reference.NameAzureLB, "the NAT's behaviour: azure-lb, azure-natgw, rfc or linux (SEMANTICS.md)")
	f.StringVar(&pf.sysctlFile, "sysctl", "", "linux: a `FILE` with the output of `sysctl net.netfilter` from the device to predict (L5–L7, L9)")
	f.StringVar(&pf.sysctlDir, "sysctl-dir", "", "linux: read the conntrack sysctls from a `DIR` laid out as /proc/sys/net/netfilter (this machine's: --sysctl-dir /proc/sys/net/netfilter)")
	f.StringVar(&pf.filtering, "filtering", "address-and-port", "rfc: inbound filtering, endpoint-independent, address or address-and-port (R2)")
	f.DurationVar(&pf.udpTimeout, "udp-timeout", 5*time.Minute, "rfc: UDP mapping timer, at least 2m (R4)")
	f.DurationVar(&pf.tcpEstablished, "tcp-established-timeout", 124*time.Minute, "rfc: established TCP idle timeout, at least 2h4m (R5)")
	f.DurationVar(&pf.tcpTransitory, "tcp-transitory-timeout", 4*time.Minute, "rfc: transitory TCP idle timeout, at least 4m (R5)")
	f.BoolVar(&pf.inboundRefresh, "inbound-refresh", true, "rfc: inbound packets refresh a UDP mapping (R4)")
	f.Uint64Var(&pf.seed, "seed", 1, "azure-natgw, linux: seed of the random port choices (G2, L2), so that a run can be repeated")
	completeValues(cmd, "profile", reference.ProfileNames()...)
	completeValues(cmd, "filtering", "address-and-port", "address", "endpoint-independent")
}

// profile builds the profile the flags say, or a usage error: a parameter
// given for another profile, a sysctl snapshot that cannot be read.
func (pf *profileFlags) profile(cmd *cobra.Command) (reference.Profile, error) {
	p, err := reference.ProfileByName(pf.name)
	if err != nil {
		return p, fmt.Errorf("--profile: %w", err)
	}
	for flag, owner := range profileOnly {
		if cmd.Flags().Changed(flag) && owner != p.Name {
			return p, fmt.Errorf("--%s applies to --profile %s, not %s", flag, owner, p.Name)
		}
	}
	if cmd.Flags().Changed("seed") && p.Name != reference.NameAzureNATGW && p.Name != reference.NameLinux {
		return p, fmt.Errorf("--seed applies to --profile azure-natgw or linux, not %s (its choices are not random)", p.Name)
	}
	p.Seed = pf.seed
	switch p.Name {
	case reference.NameLinux:
		if pf.sysctlFile != "" && pf.sysctlDir != "" {
			return p, errors.New("--sysctl and --sysctl-dir: give one snapshot of the sysctls, not two")
		}
		switch {
		case pf.sysctlFile != "":
			f, err := os.Open(pf.sysctlFile)
			if err != nil {
				return p, fmt.Errorf("--sysctl: %w", err)
			}
			defer f.Close()
			if p.Conntrack, err = reference.ParseSysctl(f, pf.sysctlFile); err != nil {
				return p, fmt.Errorf("--sysctl: %w", err)
			}
		case pf.sysctlDir != "":
			if p.Conntrack, err = reference.ReadSysctlFS(os.DirFS(pf.sysctlDir), pf.sysctlDir); err != nil {
				return p, fmt.Errorf("--sysctl-dir: %w", err)
			}
		}
	case reference.NameRFC:
		if p.Filtering, err = reference.ParseFiltering(strings.TrimSpace(pf.filtering)); err != nil {
			return p, fmt.Errorf("--filtering: %w", err)
		}
		p.RFC.UDP, p.RFC.TCPEstablished, p.RFC.TCPTransitory = pf.udpTimeout, pf.tcpEstablished, pf.tcpTransitory
		p.RFC.InboundRefresh = pf.inboundRefresh
	}
	return p, nil
}

// sharedItem is the item that says a profile's instances share one
// inventory.
func sharedItem(p reference.Profile) reference.Behavior {
	if p.Name == reference.NameRFC {
		return reference.R3
	}
	return reference.G1
}

// engineName is the --impl name of the reference engine in profile p.
func engineName(p string) string {
	if p == reference.NameAzureLB {
		return "reference"
	}
	return "reference-" + p
}

// modelPackage is the internal package of profile p's model.
func modelPackage(p string) string {
	return map[string]string{reference.NameLinux: "linuxmodel", reference.NameAzureNATGW: "natgwmodel", reference.NameRFC: "rfcmodel"}[p]
}

// implByName resolves an --impl name: the engine or the model of a
// profile (with prof's parameters when it is prof's profile, the
// defaults otherwise), or what specs.ImplByName knows (mutants).
func implByName(name string, prof reference.Profile) (specs.Impl, error) {
	for _, p := range reference.ProfileNames() {
		pick := func() (reference.Profile, error) {
			if p == prof.Name {
				return prof, nil
			}
			return reference.ProfileByName(p)
		}
		switch name {
		case engineName(p):
			pr, err := pick()
			return specs.Engine(pr), err
		case "model-" + p:
			if p == reference.NameAzureLB {
				break
			}
			pr, err := pick()
			return modelnat.Impl(pr), err
		}
	}
	return specs.ImplByName(name)
}
