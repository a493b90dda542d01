package replay

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
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

// peakChild replays path (the benchmark capture, 50 instances) with the
// outside view written, and prints "peak-rss-kB N" read from the kernel's
// VmHWM: the most resident memory the process ever had.
func peakChild(path string) int {
	specs, err := ParseBackends(os.Getenv(childEnv + "_BACKENDS"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	out, err := os.CreateTemp("", "natcheck-peak-*.pcapng")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	out.Close()
	defer os.Remove(out.Name())
	if _, err := Run([]string{path}, Config{Engine: oneFrontend(0), Backends: specs, Output: out.Name()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kb, err := vmHWM()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Printf("peak-rss-kB %d\n", kb)
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

// BenchmarkReplayPeakRSS replays the 2,000,000-packet capture in a fresh
// process and reports its peak resident memory (VmHWM), which the heap
// statistics of a long-lived benchmark process cannot give.
func BenchmarkReplayPeakRSS(b *testing.B) {
	path, specs := benchCapture(b, time.Microsecond)
	var names []string
	for _, p := range specs {
		names = append(names, p.Addr().String())
	}
	var kb int
	for range b.N {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+path, childEnv+"_BACKENDS="+strings.Join(names, ","))
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "peak-rss-kB %d", &kb); err != nil {
			b.Fatalf("child said %q: %v", out, err)
		}
	}
	b.ReportMetric(float64(kb)/1024, "MB-peak-rss")
}
