package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/natcheck/natcheck/device/linuxnft"
	"github.com/natcheck/natcheck/device/livecheck"
	"github.com/natcheck/natcheck/device/sandbox"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// withDevice adds the live-device flags to "natcheck verify": with
// --device, the checks run against a real NAT inside natcheck's sandbox
// instead of the implementations of --impl.
func withDevice(verify *cobra.Command) *cobra.Command {
	var device string
	var scale, parallel, attempts int
	var x externalFlags
	x.register(verify)
	f := verify.Flags()
	f.StringVar(&device, "device", "", "check a live device instead: linux-nft (Linux nftables SNAT in network namespaces natcheck makes)")
	// The default depends on the device, so the flag's own is 0 (not
	// printed) and the help says both.
	f.IntVar(&scale, "time-scale", 0, "with --device: run profile time K times faster than the wall clock (conntrack timers divided by K; default 10); with --inside, the NAT's timers are K times shorter than the profile's (default 1)")
	f.IntVar(&parallel, "parallel", 0, "with --device: checks run at once, each on its own topology (0: 4 per CPU)")
	f.IntVar(&attempts, "attempts", 3, "with --device: runs of a check that ends in a harness error (a packet sent too late for its schedule on a busy machine), at most")
	if f.Lookup("profile") == nil {
		f.String("profile", "azure-lb", "with --device: the profile to judge it against: azure-lb or linux")
	}
	verify.Example += `
  natcheck verify --device linux-nft --time-scale 10     # Linux SNAT in namespaces, judged against azure-lb
  natcheck verify --device linux-nft --profile linux     # the same device against its own profile (L1–L11)`
	next := verify.RunE
	verify.RunE = func(cmd *cobra.Command, args []string) error {
		if x.set() {
			if device != "" {
				return usageErr(errors.New("verify: --device and --inside/--outside: one device at a time"))
			}
			if !cmd.Flags().Changed("time-scale") {
				scale = 1 // a real device's timers are its own
			}
			return verifyExternal(cmd, &x, scale, attempts)
		}
		if device == "" {
			return next(cmd, args)
		}
		if device != linuxnft.Name {
			return usageErr(fmt.Errorf("verify: --device %q: want %s", device, linuxnft.Name))
		}
		if !cmd.Flags().Changed("time-scale") {
			scale = 10
		}
		if scale < 1 {
			return usageErr(fmt.Errorf("verify: --time-scale %d: want 1 or more", scale))
		}
		if !sandbox.Inside() {
			// Everything runs in a child in its own namespaces, killed with
			// this process: nothing natcheck makes outlives it.
			code, err := sandbox.Enter(os.Args)
			if err != nil {
				return usageErr(fmt.Errorf("verify --device %s: %w", device, err))
			}
			os.Exit(code)
		}
		if attempts < 1 {
			return usageErr(fmt.Errorf("verify: --attempts %d: want 1 or more", attempts))
		}
		return verifyDevice(cmd, scale, parallel, attempts)
	}
	return verify
}

// verifyDevice runs inside the sandbox: the preflight, then every check
// against the device, several at once.
func verifyDevice(cmd *cobra.Command, scale, parallel, attempts int) error {
	if err := linuxnft.Preflight(); err != nil {
		return usageErr(fmt.Errorf("verify --device %s: %w", linuxnft.Name, err))
	}
	only, err := behaviorsOf(cmd)
	if err != nil {
		return err
	}
	if parallel <= 0 {
		parallel = 4 * runtime.NumCPU()
	}
	// Each check's precise sends hold a Go processor for up to
	// link.PreciseWindow: one each, and the CPUs for the rest.
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), parallel+runtime.NumCPU()))
	opt := linuxnft.Calibrate(linuxnft.Options{Scale: scale})
	if err := linuxnft.CheckScale(scale); err != nil {
		return usageErr(fmt.Errorf("verify --device %s: %w", linuxnft.Name, err))
	}
	profile, _ := cmd.Flags().GetString("profile")
	var impl specs.Impl
	switch profile {
	case reference.NameAzureLB, "":
		impl, profile = linuxnft.Impl(opt), reference.NameAzureLB
	case reference.NameLinux:
		ct, err := linuxnft.DeviceConntrack()
		if err != nil {
			return fmt.Errorf("verify --device %s: %w", linuxnft.Name, err)
		}
		impl = linuxnft.LinuxImpl(opt, ct)
	default:
		return usageErr(fmt.Errorf("verify --device %s: --profile %q: want azure-lb or linux", linuxnft.Name, profile))
	}
	checks, err := specs.ChecksFor(profile)
	if err != nil {
		return usageErr(err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "device %s against profile %s: time scale %d (profile time %d× the wall clock), resolution %v, %d checks at once\n\n",
		impl.Name, profile, scale, scale, impl.Resolution, parallel)
	m, err := livecheck.Verify(cmd.Context(), impl, checks, only, livecheck.Options{
		Parallel: parallel, Attempts: attempts, LongestFirst: true, Scale: scale,
		Retry: func(err error) bool { return !errors.Is(err, linuxnft.ErrBudget) },
	})
	if err != nil {
		return err
	}
	return reportDevice(cmd, m)
}

// reportDevice writes a live device's matrix, the checks run again, the
// files asked for, and returns the exit status's error.
func reportDevice(cmd *cobra.Command, m specs.Matrix) error {
	out := cmd.OutOrStdout()
	if err := m.WriteTerminal(out); err != nil {
		return outputErr(err)
	}
	if err := writeRetried(out, m); err != nil {
		return outputErr(err)
	}
	for _, o := range []struct {
		flag  string
		write func(*os.File) error
	}{
		{"markdown", func(f *os.File) error { return m.WriteMarkdown(f) }},
		{"junit", func(f *os.File) error { return m.WriteJUnit(f) }},
	} {
		if path, _ := cmd.Flags().GetString(o.flag); path != "" {
			if err := writeFile(path, o.write); err != nil {
				return outputErr(err)
			}
		}
	}
	if !m.Conforms() {
		return &exitError{code: exitFailed, err: fmt.Errorf("verify: %d check(s) of %s did not conform or could not be judged", len(m.Failing()), m.Impls[0])}
	}
	return nil
}

// writeRetried lists the checks that were run again after a harness error,
// with the error of each attempt that was not judged.
func writeRetried(w io.Writer, m specs.Matrix) error {
	first := true
	for _, r := range m.Rows {
		for _, res := range r.Cells[0].Results {
			if len(res.Retried) == 0 {
				continue
			}
			if first {
				if _, err := fmt.Fprintf(w, "\nRun again after a harness error (never a verdict):\n"); err != nil {
					return err
				}
				first = false
			}
			if _, err := fmt.Fprintf(w, "- %s: %s on attempt %d\n", res.Check.Text(), res.Status, res.Attempts); err != nil {
				return err
			}
			for i, why := range res.Retried {
				if _, err := fmt.Fprintf(w, "  attempt %d: %s\n", i+1, strings.TrimSpace(strings.SplitN(why, "\n", 2)[0])); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// behaviorsOf parses --behaviors.
func behaviorsOf(cmd *cobra.Command) ([]reference.Behavior, error) {
	behaviors, _ := cmd.Flags().GetStringSlice("behaviors")
	var only []reference.Behavior
	for _, s := range behaviors {
		b, err := reference.ParseBehavior(strings.TrimSpace(s))
		if err != nil {
			return nil, usageErr(fmt.Errorf("verify: %w", err))
		}
		only = append(only, b)
	}
	return only, nil
}

// profileOf builds the profile verify's flags say (--profile and its
// parameters).
func profileOf(cmd *cobra.Command) (reference.Profile, error) {
	f := cmd.Flags()
	pf := profileFlags{}
	pf.name, _ = f.GetString("profile")
	pf.filtering, _ = f.GetString("filtering")
	pf.sysctlFile, _ = f.GetString("sysctl")
	pf.sysctlDir, _ = f.GetString("sysctl-dir")
	pf.udpTimeout, _ = f.GetDuration("udp-timeout")
	pf.tcpEstablished, _ = f.GetDuration("tcp-established-timeout")
	pf.tcpTransitory, _ = f.GetDuration("tcp-transitory-timeout")
	pf.inboundRefresh, _ = f.GetBool("inbound-refresh")
	pf.seed, _ = f.GetUint64("seed")
	return pf.profile(cmd)
}

// timeDuration is k as a multiplier of durations.
func timeDuration(k int) time.Duration { return time.Duration(max(k, 1)) }
