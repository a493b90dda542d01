package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newReplayCmd() *cobra.Command {
	var (
		frontends   []string
		backends    string
		perInstance int
		pool        int
		idle        time.Duration
		resetOnIdle bool
		protocol    string
		strict      bool
		window      time.Duration
		outPath     string
		eventsPath  string
		plotPath    string
		asJSON      bool
		table       string
		bothSides   bool
		failOn      []string
		workers     int
		drain       bool
		shard       string
		pf          profileFlags
		live        liveFlags
	)
	cmd := &cobra.Command{
		Use:   "replay FILE...",
		Short: "Replay captures through the reference SNAT engine and report what the NAT would do",
		Long: `replay sends the packets of pcap/pcapng captures (merged in time order)
through the reference SNAT engine: outbound packets of the backend instances
are translated, and each recorded reply is turned into what the server would
have sent to the SNAT IP:port of its flow and sent through the inbound path
(B8). The report says, per instance, frontend IP and protocol, how many SNAT
ports were allocated and used at peak, how many flows opened, which new
flows were refused for lack of ports (B9), first at which packet, and how
flows ended (B10–B12).

Backend instances are --backends (addresses and prefixes, in pool order;
a prefix stands for its addresses seen in the capture, ascending) or, by
default, detected: private sources that open flows to public addresses.

--profile chooses the NAT's behaviour (SEMANTICS.md): azure-lb (the
default), linux (a Linux SNAT with one rule per instance from the same
allocation plan; its timers from --sysctl, a snapshot of the device's
"sysctl net.netfilter", or --sysctl-dir /proc/sys/net/netfilter for this
machine's), azure-natgw or rfc (--filtering and the timers of R2–R5).
Events and the report cite the profile's own items (L4, G6, R2, …).
azure-natgw and rfc share one inventory between instances, so their
replay runs on one engine whatever --workers says. ICMP is translated on
linux and rfc with the identifier the capture's frames give the engine
(none yet: every echo of a host to a server shares one mapping).`,
		Example: `  natcheck replay captures/public/ndpi__anyconnect-vpn.pcap
  natcheck replay --ports-per-instance 8 --plot usage.png captures/public/ndpi__anyconnect-vpn.pcap
  natcheck replay --backends 10.0.0.0/24 --frontend 203.0.113.1 --ports-per-instance 64 -w out.pcapng --events ev.jsonl trace.pcap
  natcheck replay --fail-on exhaustion --json trace.pcap > report.json
  natcheck replay --shard 1/4 --json huge.pcap > shard-1.json   # then: natcheck merge shard-*.json
  natcheck replay --profile linux --sysctl-dir /proc/sys/net/netfilter --ports-per-instance 1024 trace.pcap
  natcheck replay --profile azure-natgw --frontend 203.0.113.1,203.0.113.2 trace.pcap
  natcheck replay --device linux-nft --speed 10 --profile linux --ports-per-instance 8 -w both.pcapng trace.pcap`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			fr, err := frontendAddrs(frontends, 1)
			if err != nil {
				return usageErr(err)
			}
			rows := -1
			if table != "all" {
				if rows, err = strconv.Atoi(table); err != nil || rows < 1 {
					return usageErr(fmt.Errorf("--table %q: want a number of instances (1 or more) or all", table))
				}
			}
			specs, err := replay.ParseBackends(backends)
			if err != nil {
				return usageErr(err)
			}
			protos, err := reference.ParseProtocols(protocol)
			if err != nil {
				return usageErr(err)
			}
			switch {
			case pool < 0:
				return usageErr(fmt.Errorf("--pool-size %d: want 0 (the instances found) or more", pool))
			case workers < 0 || workers > maxWorkersFlag:
				return usageErr(fmt.Errorf("--workers %d: want 0 (one per CPU) to %d", workers, maxWorkersFlag))
			case window < 0:
				return usageErr(fmt.Errorf("--reorder-window %s: want 0 or more", reference.FormatDuration(window)))
			}
			fail := map[string]bool{}
			for _, f := range failOn {
				switch f = strings.TrimSpace(f); f {
				case "exhaustion", "drop":
					fail[f] = true
				default:
					return usageErr(fmt.Errorf("--fail-on %q: want exhaustion and/or drop", f))
				}
			}
			var sh *replay.Shard
			if shard != "" {
				v, err := replay.ParseShard(shard)
				if err != nil {
					return usageErr(err)
				}
				if outPath != "" || eventsPath != "" || plotPath != "" {
					return usageErr(fmt.Errorf("--shard %s: -w, --events and --plot would hold one shard's instances only; merge the shards' --json reports with natcheck merge, or replay unsharded for them", shard))
				}
				sh = &v
			}
			if plotPath != "" {
				if _, err := replay.PlotFormat(plotPath); err != nil {
					return usageErr(err)
				}
			}
			if bothSides && outPath == "" {
				return usageErr(fmt.Errorf("--both-sides: give -w FILE, the capture it writes"))
			}
			if outPath == "-" && eventsPath == "-" {
				return usageErr(fmt.Errorf("-w - and --events -: only one output can go to standard output"))
			}
			if err := checkOutputs(files, outputPath{"-w", outPath}, outputPath{"--events", eventsPath}, outputPath{"--plot", plotPath}); err != nil {
				return err
			}
			prof, err := pf.profile(cmd)
			if err != nil {
				return usageErr(err)
			}
			if prof.Quota == reference.QuotaShared && workers > 1 {
				fmt.Fprintf(cmd.ErrOrStderr(), "natcheck: profile %s shares one inventory between instances (%s): replaying on one engine, not %d\n", prof.Name, sharedItem(prof), workers)
			}
			cfg := replay.Config{
				Engine: reference.Config{Profile: prof, Frontends: fr, PortsPerInstance: perInstance, IdleTimeout: idle,
					TCPResetOnIdle: resetOnIdle, Protocols: protos, Strict: strict},
				Backends: specs, PoolSize: pool, ReorderWindow: window, Output: outPath, Workers: workers, Drain: drain, Shard: sh,
				Stdin: cmd.InOrStdin(), BothSides: bothSides,
			}
			// The report goes to standard output, unless an output file
			// does: then to standard error.
			report := cmd.OutOrStdout()
			if outPath == "-" {
				cfg.Output, cfg.OutputWriter, report = "standard output", cmd.OutOrStdout(), cmd.ErrOrStderr()
			}
			var events *os.File
			switch eventsPath {
			case "":
			case "-":
				cfg.Events, report = cmd.OutOrStdout(), cmd.ErrOrStderr()
			default:
				if events, err = os.Create(eventsPath); err != nil {
					return outputErr(err)
				}
				defer events.Close()
				cfg.Events = events
			}
			if live.active() {
				switch {
				case sh != nil || drain || outPath == "-" || eventsPath == "-":
					return usageErr(fmt.Errorf("--device: --shard, --drain and - outputs are the offline replay's"))
				}
				res, err := liveReplay(cmd, &live, files, cfg, cfg.Events, report, asJSON, rows)
				if err != nil {
					return err
				}
				if events != nil {
					if err := events.Close(); err != nil {
						return outputErr(fmt.Errorf("--events %s: %w", eventsPath, err))
					}
				}
				if plotPath != "" {
					if err := replay.WritePlot(plotPath, res.Result); err != nil {
						return outputErr(err)
					}
				}
				return liveVerdict(res)
			}
			if fd := int(os.Stderr.Fd()); term.IsTerminal(fd) {
				cfg.Progress = progressBar()
			}
			// Standard input kept for two passes goes into a folder of
			// this run's, removed on the way out, a second Ctrl-C included.
			quit := func() {}
			if slices.Contains(files, replay.Stdin) {
				dir, err := os.MkdirTemp("", "natcheck-")
				if err != nil {
					return fmt.Errorf("replay: a folder for standard input: %w", err)
				}
				cfg.TempDir = dir
				quit = func() { os.RemoveAll(dir) }
				defer quit()
			}
			stop, release := interruptible(cmd.ErrOrStderr(), quit)
			defer release()
			cfg.Stop = stop
			res, runErr := replay.Run(files, cfg)
			runErr = classifyRun(runErr)
			if exitCode(runErr) == exitUsage {
				return runErr
			}
			if events != nil {
				if err := events.Close(); err != nil && runErr == nil {
					runErr = outputErr(fmt.Errorf("--events %s: %w", eventsPath, err))
				}
			}
			if runErr != nil {
				if res.Counts.Packets == 0 {
					return runErr // nothing was read: no report, no empty document a parser would take for a result
				}
				res.Partial = runErr.Error()
			}
			if asJSON {
				err = replay.WriteJSON(report, res)
			} else {
				err = replay.WriteTextOptions(report, res, replay.TextOptions{Rows: rows})
			}
			if err != nil {
				return outputErr(fmt.Errorf("write report: %w", err))
			}
			if plotPath != "" {
				if err := replay.WritePlot(plotPath, res); err != nil {
					return outputErr(err)
				}
			}
			if runErr != nil {
				return runErr
			}
			if n := res.Drops[reference.DropExhausted.String()]; fail["exhaustion"] && n > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("--fail-on exhaustion: %s refused for lack of SNAT ports (B9)", plural(n, "new flow"))}
			}
			if fail["drop"] && res.Counts.Dropped > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("--fail-on drop: %s dropped", plural(uint64(res.Counts.Dropped), "packet"))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&frontends, "frontend", []string{"203.0.113.1"}, "frontend IPv4 addresses, in order")
	f.StringVar(&backends, "backends", "", "backend instances: addresses and prefixes in pool order (default: detect)")
	f.IntVar(&perInstance, "ports-per-instance", 0, "outbound rule: SNAT ports per instance, a multiple of 8 (0: the default table, B3)")
	f.IntVar(&pool, "pool-size", 0, "pool size, if larger than the instances in the capture")
	f.DurationVar(&idle, "idle-timeout", 0, "idle timeout, 4m to 120m in whole minutes (default 4m, B12)")
	f.BoolVar(&resetOnIdle, "tcp-reset-on-idle", false, "send RSTs when an established TCP flow idles out (B14)")
	f.StringVar(&protocol, "protocol", "all", "protocols the outbound rule carries: all, tcp or udp (B15)")
	f.BoolVar(&strict, "strict", false, "create TCP flows only on a SYN (C5)")
	f.DurationVar(&window, "reorder-window", capture.DefaultWindow, "how far back a timestamp may go and still be put in order")
	f.StringVarP(&outPath, "write", "w", "", "write the outside view to this pcapng file (-: standard output; the report then goes to standard error)")
	f.BoolVar(&bothSides, "both-sides", false, "with -w: write both sides of the NAT, each packet as recorded (inside interface) and as translated (outside interface); dropped packets as recorded, with the reason and behaviour ID in a comment")
	f.StringVar(&eventsPath, "events", "", "write one JSON line per event to this file (-: standard output; the report then goes to standard error)")
	f.StringVar(&plotPath, "plot", "", "plot SNAT ports in use over time to this .png or .svg file")
	f.BoolVar(&asJSON, "json", false, "print the report as one JSON document")
	f.StringVar(&table, "table", strconv.Itoa(replay.DefaultRows), "instances the report's table and verdicts show when more sent traffic: N (those under most pressure, and every one that ran out of ports) or all")
	f.StringSliceVar(&failOn, "fail-on", nil, "exit 1 on exhaustion and/or drop (for CI)")
	f.IntVar(&workers, "workers", 0, "engines to spread the instances over (0: one per CPU, at most 8); the result is the same for any number")
	pf.register(cmd)
	f.StringVar(&shard, "shard", "", "replay only the instances i mod n (i/n) and report them, for natcheck merge (profiles whose instances own their ports, B5)")
	f.BoolVar(&drain, "drain", false, "after the last packet, run the clock on until every flow has ended and report those releases apart (C9)")
	live.register(cmd, "replay")
	completeValues(cmd, "protocol", "all", "tcp", "udp")
	completeValues(cmd, "fail-on", "exhaustion", "drop")
	_ = cmd.MarkFlagFilename("write", "pcapng")
	_ = cmd.MarkFlagFilename("events", "jsonl")
	_ = cmd.MarkFlagFilename("plot", "png", "svg", "pdf")
	return cmd
}

// maxWorkersFlag bounds --workers: past the CPUs, more engines only cost
// memory (each holds its own tables).
const maxWorkersFlag = 64

// progressBar returns a Progress callback that draws a bar on standard
// error: one for the detection pass, one for the replay, each with its
// percentage when the input's size is known.
func progressBar() func(replay.Progress) {
	var bar *progressbar.ProgressBar
	phase := ""
	return func(p replay.Progress) {
		if p.Phase != phase {
			if bar != nil {
				_ = bar.Finish()
			}
			phase = p.Phase
			desc := map[string]string{"detect": "detecting backends", "order": "checking time order", "replay": "replaying"}[p.Phase]
			bar = progressbar.DefaultBytes(p.Total, desc)
		}
		_ = bar.Set64(p.Done)
	}
}

// interruptible catches Ctrl-C (SIGINT) for a replay: the first closes the
// returned channel, so that the replay stops reading, finishes its files
// and prints its report marked partial (exit 130); a second ends the
// process at once, with exit 130, after calling quit. release stops
// catching.
func interruptible(stderr io.Writer, quit func()) (stop <-chan struct{}, release func()) {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt)
	ch := make(chan struct{})
	done := make(chan struct{})
	go func() {
		select {
		case <-sig:
		case <-done:
			return
		}
		close(ch)
		fmt.Fprintln(stderr, "\nnatcheck: interrupted: finishing the files written so far and the report (Ctrl-C again to quit at once)")
		select {
		case <-sig:
			quit()
			os.Exit(exitInterrupted)
		case <-done:
		}
	}()
	return ch, func() {
		signal.Stop(sig)
		close(done)
	}
}
