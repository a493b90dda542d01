package replay

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// childEnv makes the test binary, started by BenchmarkReplayPeakRSS, replay
// one capture and print its peak resident memory instead of running tests.
const childEnv = "NATCHECK_REPLAY_PEAK_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(peakChild(path))
	}
	os.Exit(m.Run())
}

// peakChild replays path with the outside view written, as the parent's
// case says (childEnv_CASE: "best" for benchCapture's capture and its 50
// instances, "busy" for busyCapture's as busyConfig replays it), on the
// number of workers the parent names (its GOMAXPROCS is set by the parent
// too), and prints "peak-rss-kB N …" read from the kernel's VmHWM: the
// most resident memory the process ever had.
func peakChild(path string) int {
	workers, err := strconv.Atoi(os.Getenv(childEnv + "_WORKERS"))
	if err != nil || workers < 1 {
		fmt.Fprintf(os.Stderr, "%s_WORKERS=%q: want a worker count\n", childEnv, os.Getenv(childEnv+"_WORKERS"))
		return 2
	}
	out, err := os.CreateTemp("", "natcheck-peak-*.pcapng")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	out.Close()
	defer os.Remove(out.Name())
	var cfg Config
	switch c := os.Getenv(childEnv + "_CASE"); c {
	case "best":
		cfg = Config{Engine: oneFrontend(0), Backends: benchSpecs(), Output: out.Name(), Workers: workers}
	case "busy":
		cfg = busyConfig(out.Name(), workers, nil)
	default:
		fmt.Fprintf(os.Stderr, "%s_CASE=%q: want best or busy\n", childEnv, c)
		return 2
	}
	if _, err := Run([]string{path}, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kb, err := vmHWM()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Printf("peak-rss-kB %d gomaxprocs %d workers %d\n", kb, runtime.GOMAXPROCS(0), workers)
	return 0
}

func vmHWM() (int, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.Atoi(strings.Fields(rest)[0])
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// BenchmarkReplayPeakRSS replays a capture in a fresh process and reports
// its peak resident memory (VmHWM), which the heap statistics of a
// long-lived benchmark process cannot give. The child runs with this
// benchmark's GOMAXPROCS (set by -cpu: the name's -N suffix) and one worker
// per CPU, as BenchmarkReplayEndToEnd does; it reports both back, and the
// "workers" metric labels the figure. Cases: best-case/gap=1µs is
// benchCapture's 2,000,000 packets of 40,000 flows in batches; the
// worst-case/busy-subnet ones are issue 11's class at 2 and 20 million
// packets (the same 200,000 live flows: the peak should be the same), and
// at 2 and 20 million with 10 % of the records written 1 ms late (what the
// re-ordering holds, which should not grow with the length either).
func BenchmarkReplayPeakRSS(b *testing.B) {
	b.Run("best-case/gap=1µs", func(b *testing.B) {
		path, _ := benchCapture(b, time.Microsecond)
		benchPeakRSS(b, path, "best")
	})
	for _, n := range []int{2_000_000, 20_000_000} {
		b.Run(fmt.Sprintf("worst-case/busy-subnet/packets=%dM", n/1_000_000), func(b *testing.B) {
			benchPeakRSS(b, busyCapture(b, n), "busy")
		})
	}
	for _, n := range []int{2_000_000, 20_000_000} {
		b.Run(fmt.Sprintf("worst-case/busy-subnet/packets=%dM/late=10%%", n/1_000_000), func(b *testing.B) {
			benchPeakRSS(b, busyCaptureLate(b, n, 0.1), "busy")
		})
	}
}

func benchPeakRSS(b *testing.B, path, class string) {
	procs := runtime.GOMAXPROCS(0)
	workers := procs
	var kb int
	for range b.N {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+path, childEnv+"_CASE="+class,
			childEnv+"_WORKERS="+strconv.Itoa(workers), "GOMAXPROCS="+strconv.Itoa(procs))
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		var gotProcs, gotWorkers int
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "peak-rss-kB %d gomaxprocs %d workers %d", &kb, &gotProcs, &gotWorkers); err != nil {
			b.Fatalf("child said %q: %v", out, err)
		}
		if gotProcs != procs || gotWorkers != workers {
			b.Fatalf("child ran with GOMAXPROCS %d and %d workers, want %d and %d", gotProcs, gotWorkers, procs, workers)
		}
	}
	b.ReportMetric(float64(kb)/1024, "MB-peak-rss")
	b.ReportMetric(float64(workers), "workers")
}
