package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/natcheck/natcheck/device/external"
	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/device/linuxnft"
	"github.com/natcheck/natcheck/device/livereplay"
	"github.com/natcheck/natcheck/device/pace"
	"github.com/natcheck/natcheck/device/sandbox"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay"
)

// liveFlags are the live-device flags of replay and record: the built-in
// device, or a third-party NAT met through two interfaces.
type liveFlags struct {
	device                   string
	speed                    string
	inside, outside, gateway string
}

// active reports whether a live device was named.
func (l *liveFlags) active() bool { return l.device != "" || l.inside != "" || l.outside != "" }

// name is the device's, for reports.
func (l *liveFlags) name() string {
	if l.device != "" {
		return l.device
	}
	return "the NAT on " + l.inside + " and " + l.outside
}

func (l *liveFlags) register(cmd *cobra.Command, what string) {
	f := cmd.Flags()
	f.StringVar(&l.device, "device", "", what+" through a live NAT instead of the engine: linux-nft (Linux nftables SNAT in network namespaces natcheck makes)")
	f.StringVar(&l.speed, "speed", "1", "with --device: K, the capture's time K times faster (the device's conntrack timers divided by K: 1, 2, 5 or 10), or max: as fast as the machine goes (the device keeps its timers)")
	f.StringVar(&l.inside, "inside", "", what+" through a third-party NAT instead: the `IF` on its inside link (natcheck stands for its instances there, the addresses of --backends; give an interface with no address of its own)")
	f.StringVar(&l.outside, "outside", "", "with --inside: the `IF` on the NAT's outside link (natcheck stands for the servers and the upstream router; the NAT's public IPs are --frontend)")
	f.StringVar(&l.gateway, "gateway", "", "with --inside: the NAT's own `IP` on the inside link (found by ARP)")
	completeValues(cmd, "device", linuxnft.Name)
}

// parseSpeed is --speed: K, or 0 for max.
func (l *liveFlags) parseSpeed() (int, error) {
	if l.speed == "max" {
		return 0, nil
	}
	k, err := strconv.Atoi(l.speed)
	if err != nil || k < 1 {
		return 0, fmt.Errorf("--speed %q: want a whole number, 1 or more, or max", l.speed)
	}
	return k, nil
}

// liveReplay replays files through the device the flags name, inside
// natcheck's sandbox (re-entering it from outside), with cfg's engine
// configuration: the offline replay first finds the instances (as it
// would), then the live one runs. report gets the text (or JSON) report.
func liveReplay(cmd *cobra.Command, l *liveFlags, files []string, cfg replay.Config, events io.Writer, report io.Writer, asJSON bool, rows int) (*livereplay.Result, error) {
	third := l.inside != "" || l.outside != ""
	var gw netip.Addr
	switch {
	case third && l.device != "":
		return nil, usageErr(fmt.Errorf("--device and --inside: one device at a time"))
	case third && (l.inside == "" || l.outside == "" || l.gateway == ""):
		return nil, usageErr(fmt.Errorf("a third-party NAT needs --inside IF, --outside IF and --gateway IP (its public IPs are --frontend)"))
	case third:
		var err error
		if gw, err = netip.ParseAddr(l.gateway); err != nil || !gw.Is4() {
			return nil, usageErr(fmt.Errorf("--gateway %q: want an IPv4 address", l.gateway))
		}
	case l.device != linuxnft.Name:
		return nil, usageErr(fmt.Errorf("--device %q: want %s", l.device, linuxnft.Name))
	}
	speed, err := l.parseSpeed()
	if err != nil {
		return nil, usageErr(err)
	}
	if third {
		return externalReplay(cmd, l, gw, speed, files, cfg, events, report, asJSON, rows)
	}
	if !sandbox.Inside() {
		code, err := sandbox.Enter(os.Args)
		if err != nil {
			return nil, usageErr(fmt.Errorf("--device %s: %w", l.device, err))
		}
		os.Exit(code)
	}
	if err := linuxnft.Preflight(); err != nil {
		return nil, usageErr(fmt.Errorf("--device %s: %w", l.device, err))
	}
	if speed > 0 {
		if err := linuxnft.CheckScale(speed); err != nil {
			return nil, usageErr(fmt.Errorf("--speed: %w", err))
		}
	}
	ec, offRes, err := liveEngine(files, cfg, speed)
	if err != nil {
		return nil, err
	}
	res, err := livereplay.Run(cmd.Context(), files, livereplay.Config{Engine: ec, Speed: speed, Output: cfg.Output, Events: events})
	if err != nil {
		return nil, err
	}
	res.BackendsHow = offRes.BackendsHow
	return res, writeLive(report, res, asJSON, rows)
}

// externalReplay replays files through the third-party NAT on --inside
// and --outside, here (not in the sandbox: the interfaces are the
// user's), its configuration stated by the replay's flags.
func externalReplay(cmd *cobra.Command, l *liveFlags, gw netip.Addr, speed int, files []string, cfg replay.Config, events io.Writer, report io.Writer, asJSON bool, rows int) (*livereplay.Result, error) {
	ec, offRes, err := liveEngine(files, cfg, speed)
	if err != nil {
		return nil, err
	}
	in, err := link.OpenHere(l.inside)
	if err != nil {
		return nil, fmt.Errorf("--inside: %w", err)
	}
	defer in.Close()
	out, err := link.OpenHere(l.outside)
	if err != nil {
		return nil, fmt.Errorf("--outside: %w", err)
	}
	defer out.Close()
	stated := ec
	stated.Profile = reference.Profile{}
	dev, err := external.Attach(in, out, external.Options{Stated: stated, Gateway: gw, Scale: max(speed, 1), Tolerance: pace.Tolerance()})
	if err != nil {
		return nil, err
	}
	res, err := livereplay.Run(cmd.Context(), files, livereplay.Config{Engine: ec, Speed: speed, Output: cfg.Output, Events: events, Device: dev})
	if err != nil {
		return nil, err
	}
	res.BackendsHow = offRes.BackendsHow
	return res, writeLive(report, res, asJSON, rows)
}

// writeLive writes a live replay's report, as text or JSON.
func writeLive(report io.Writer, res *livereplay.Result, asJSON bool, rows int) error {
	var err error
	if asJSON {
		err = livereplay.WriteJSON(report, res)
	} else {
		err = livereplay.WriteText(report, res, replay.TextOptions{Rows: rows})
	}
	if err != nil {
		return outputErr(fmt.Errorf("write report: %w", err))
	}
	return nil
}

// liveVerdict is the exit status's error of a live replay: a flow the
// device treated otherwise than its profile says.
func liveVerdict(res *livereplay.Result) error {
	if res.Differ > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("replay --device: %d flow(s) of %d did not do what profile %s says", res.Differ, len(res.Flows), res.Config.Profile)}
	}
	return nil
}

// newRecordCmd is "natcheck record": what a live device did with a
// capture, both links, as a pcapng file for the regression corpus.
func newRecordCmd() *cobra.Command {
	var l liveFlags
	var out, frontends, backends string
	var perInstance int
	var pf profileFlags
	cmd := &cobra.Command{
		Use:   "record --device linux-nft FILE... -o BOTH.pcapng",
		Short: "Replay captures through a live NAT and record both of its links",
		Long: `record replays captures through a live NAT, as "natcheck replay --device"
does, and writes every frame put on its links and every frame that came out
— the inside and the outside interface of one pcapng file, with the
kernel's timestamps and a comment naming each replayed packet's file,
number and capture time — then prints a one-line summary. The recording
shows what the device did, for the regression corpus: "natcheck diff"
compares its outside link with another recording or a replay's outside
view (-w).`,
		Example: `  natcheck record --device linux-nft --speed 10 captures/public/ndpi__anyconnect-vpn.pcap -o both.pcapng`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if !l.active() || out == "" {
				return usageErr(fmt.Errorf("record: --device (or --inside, --outside and --gateway) and -o are required"))
			}
			if err := checkOutputs(files, outputPath{"-o", out}); err != nil {
				return err
			}
			fr, err := frontendAddrs(strings.Split(frontends, ","), 1)
			if err != nil {
				return usageErr(err)
			}
			specs, err := replay.ParseBackends(backends)
			if err != nil {
				return usageErr(err)
			}
			prof, err := pf.profile(cmd)
			if err != nil {
				return usageErr(err)
			}
			cfg := replay.Config{Engine: reference.Config{Profile: prof, Frontends: fr, PortsPerInstance: perInstance}, Backends: specs, Output: out}
			res, err := liveReplay(cmd, &l, files, cfg, nil, io.Discard, false, 0)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "recorded %s: %d packets put on the links of %s, %d came out; %d flows as profile %s says, %d otherwise\n",
				out, res.Injected, l.name(), res.Counts.Translated, res.Agree, res.Config.Profile, res.Differ)
			return nil
		},
	}
	l.register(cmd, "replay")
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "", "the pcapng `FILE` of both links")
	f.StringVar(&frontends, "frontend", "203.0.113.1", "frontend IPv4 addresses, in order")
	f.StringVar(&backends, "backends", "", "backend instances: addresses and prefixes in pool order (default: detect)")
	f.IntVar(&perInstance, "ports-per-instance", 0, "outbound rule: SNAT ports per instance, a multiple of 8 (0: the default table, B3)")
	pf.register(cmd)
	return cmd
}

// liveEngine is the engine configuration a live replay judges the device
// by: the instances as the offline replay finds them (its result is
// returned too), and, at a speed above 1, linux's StreamAfter scaled, as
// the kernel's 2 s is wall clock.
func liveEngine(files []string, cfg replay.Config, speed int) (reference.Config, *replay.Result, error) {
	off := cfg
	off.Output, off.OutputWriter, off.Events, off.BothSides, off.Progress = "", nil, nil, false, nil
	offRes, err := replay.Run(files, off)
	if err != nil {
		return reference.Config{}, nil, classifyRun(err)
	}
	ec := cfg.Engine
	ec.Backends = offRes.Backends
	ec.PoolSize = max(cfg.PoolSize, len(offRes.Backends))
	if speed > 1 && ec.Profile.Name == reference.NameLinux {
		ec.Profile.Conntrack.StreamAfter *= timeDuration(speed)
	}
	return ec, offRes, nil
}
