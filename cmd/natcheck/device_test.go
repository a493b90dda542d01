package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/ti-mo/conntrack"

	"github.com/natcheck/natcheck/replay/capture"
)

// netnsRefs returns, for every process, the network namespaces it is in
// or holds a file descriptor to, as "net:[INODE]" strings, keyed by it.
func netnsRefs() map[string][]string {
	refs := map[string][]string{}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		dir := filepath.Join("/proc", p.Name())
		var links []string
		if tasks, err := os.ReadDir(filepath.Join(dir, "task")); err == nil {
			for _, t := range tasks {
				links = append(links, filepath.Join(dir, "task", t.Name(), "ns", "net"))
			}
		}
		if fds, err := os.ReadDir(filepath.Join(dir, "fd")); err == nil {
			for _, fd := range fds {
				links = append(links, filepath.Join(dir, "fd", fd.Name()))
			}
		}
		for _, l := range links {
			if target, err := os.Readlink(l); err == nil && strings.HasPrefix(target, "net:[") {
				refs[target] = append(refs[target], p.Name())
			}
		}
		if mi, err := os.ReadFile(filepath.Join(dir, "mountinfo")); err == nil {
			for _, line := range strings.Split(string(mi), "\n") {
				if i := strings.Index(line, "net:["); i >= 0 && strings.Contains(line, "nsfs") {
					ref := line[i:]
					ref = ref[:strings.IndexByte(ref, ']')+1]
					refs[ref] = append(refs[ref], p.Name()+" (mount)")
				}
			}
		}
	}
	return refs
}

// childOf returns the pid of a child process of parent, or 0.
func childOf(parent int) int {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(parent) {
			return pid
		}
	}
	return 0
}

// heldNamespaces returns the network namespaces pid is in or holds.
func heldNamespaces(pid int) map[string]bool {
	out := map[string]bool{}
	for ref, pids := range netnsRefs() {
		for _, p := range pids {
			if p == strconv.Itoa(pid) {
				out[ref] = true
			}
		}
	}
	return out
}

// TestSIGKILLLeavesNothing kills natcheck with SIGKILL while it checks
// the linux-nft device and asserts that none of the network namespaces
// its sandbox made remains (no process is in one, holds one by a file
// descriptor or mounts one), that the sandbox process is gone, and that no
// interface, nftables table or conntrack entry of it appears in the
// namespace natcheck was started in.
func TestSIGKILLLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED, not passed: needs root to see every process's namespaces")
	}
	bin := filepath.Join(t.TempDir(), "natcheck")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	before := netnsRefs()
	// Time scale 1: the timer checks wait for minutes, so natcheck is
	// mid-run when it is killed.
	cmd := exec.Command(bin, "verify", "--device", "linux-nft", "--time-scale", "1", "--behaviors", "B11,B12", "--parallel", "4")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case first <- sc.Text():
			default:
			}
		}
	}()
	var sandboxPid int
	var held map[string]bool
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if sandboxPid == 0 {
			sandboxPid = childOf(cmd.Process.Pid)
		}
		if sandboxPid != 0 {
			held = heldNamespaces(sandboxPid)
			// Its own namespace and at least one topology of three.
			if len(held) >= 4 {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(held) < 4 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the sandbox (pid %d) never held the namespaces of running checks (held %v); first output line: %q", sandboxPid, held, <-first)
	}
	for ref := range held {
		if _, ok := before[ref]; ok {
			delete(held, ref) // a namespace that existed before natcheck (not the sandbox's)
		}
	}
	time.Sleep(300 * time.Millisecond) // mid-run: checks are sending and waiting
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	var left map[string][]string
	gone := false
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		left = map[string][]string{}
		refs := netnsRefs()
		for ref := range held {
			for _, pid := range refs[ref] {
				// A namespace's inode number is reused as soon as it is
				// freed: another program making namespaces meanwhile (the
				// linux-nft suite runs beside this test in make test) may
				// hold a new namespace under an old number. Only a process
				// of this natcheck binary would be a leak.
				if exe, _ := os.Readlink(filepath.Join("/proc", strings.Fields(pid)[0], "exe")); exe == bin {
					left[ref] = append(left[ref], pid)
				} else {
					t.Logf("namespace number %s is held by pid %s (%s), not natcheck: a new namespace under a reused number", ref, pid, exe)
				}
			}
		}
		_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(sandboxPid), "ns"))
		stat, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(sandboxPid), "stat"))
		gone = errors.Is(err, os.ErrNotExist) || strings.Contains(string(stat), ") Z ")
		if len(left) == 0 && gone {
			break
		}
	}
	if !gone {
		t.Errorf("the sandbox process %d outlived natcheck", sandboxPid)
	}
	if len(left) > 0 {
		t.Errorf("%d of the sandbox's %d network namespaces remain after SIGKILL: %v", len(left), len(held), left)
	}
	if len(left) == 0 {
		t.Logf("the sandbox (pid %d) held %d network namespaces; none remains", sandboxPid, len(held))
	}

	// Nothing of it in the namespace natcheck ran in.
	ifaces, _ := net.Interfaces()
	for _, i := range ifaces {
		switch i.Name {
		case "in0", "nat-in", "nat-out", "out0":
			t.Errorf("interface %s exists in natcheck's own namespace", i.Name)
		}
	}
	if c, err := nftables.New(); err == nil {
		tables, err := c.ListTables()
		if err != nil {
			t.Errorf("list nftables tables: %v", err)
		}
		for _, tb := range tables {
			if tb.Name == "natcheck" {
				t.Errorf("nftables table natcheck exists in natcheck's own namespace")
			}
		}
	}
	ct, err := conntrack.Dial(nil)
	if err != nil {
		t.Fatalf("conntrack: %v", err)
	}
	defer ct.Close()
	flows, err := ct.Dump(nil)
	if err != nil {
		t.Fatalf("conntrack dump: %v", err)
	}
	test := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("198.51.100.0/24")}
	for _, f := range flows {
		for _, a := range []netip.Addr{f.TupleOrig.IP.SourceAddress, f.TupleOrig.IP.DestinationAddress, f.TupleReply.IP.SourceAddress, f.TupleReply.IP.DestinationAddress} {
			for _, p := range test {
				if p.Contains(a) {
					t.Errorf("conntrack entry of natcheck's addresses in its own namespace: %v", f)
				}
			}
		}
	}
}

// TestRecordAndReplayThroughLinuxNFT runs "natcheck record" and "natcheck
// replay --device linux-nft" as a user would (root, the sandbox entered by
// re-executing itself) on the AnyConnect capture at speed 10 with 8 ports
// per instance: record writes both links of the device into one pcapng
// (frames on the inside and on the outside interface) and says every flow
// did what the linux profile says; replay prints the report with the live
// figures, writes the events and exits 0.
func TestRecordAndReplayThroughLinuxNFT(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED, not passed: the linux-nft device needs root here")
	}
	dir := t.TempDir()
	both := filepath.Join(dir, "both.pcapng")
	common := []string{"--device", "linux-nft", "--speed", "10", "--profile", "linux", "--ports-per-instance", "8"}
	r := run(t, append(append([]string{"record"}, common...), vpn, "-o", both)...)
	if r.code != exitOK || !strings.Contains(r.stdout, "packets put on the links of linux-nft") || !strings.Contains(r.stdout, "38 flows as profile linux says, 0 otherwise") {
		t.Fatalf("record: %v", r)
	}
	rd, err := capture.Open(both)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	per := map[int]int{}
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		per[rec.Interface]++
	}
	if per[0] < 225 || per[1] == 0 {
		t.Errorf("%s: frames per interface %v, want the 225 outbound and more on the inside (0), and frames on the outside (1)", both, per)
	}
	ev := filepath.Join(dir, "ev.jsonl")
	r = run(t, append(append([]string{"replay"}, common...), "--events", ev, vpn)...)
	if r.code != exitOK || !strings.Contains(r.stdout, "live device linux-nft: 411 packets put on its links") || !strings.Contains(r.stdout, "27 confirmed") {
		t.Fatalf("replay --device: %v", r)
	}
	if b, err := os.ReadFile(ev); err != nil || strings.Count(string(b), "\n") != 428 {
		t.Errorf("--events %s: %v, %d lines, want one per replayed packet (428)", ev, err, strings.Count(string(b), "\n"))
	}
}

// TestRootless runs natcheck as an unprivileged user (nobody): the
// sandbox makes a user namespace in which it is root, and the linux-nft
// device works there as it does for root (an L8 check conforms). Without
// the user namespace, the network namespaces cannot be made and natcheck
// exits 2 naming why.
func TestRootless(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED, not passed: needs root to run natcheck as another user")
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err != nil || strings.TrimSpace(string(b)) == "0" {
		t.Skip("SKIPPED, not passed: user namespaces are disabled on this machine")
	}
	dir, err := os.MkdirTemp("", "natcheck-rootless-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "natcheck")
	data, err := os.ReadFile(natcheckBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "verify", "--device", "linux-nft", "--profile", "linux", "--behaviors", "L8")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "conforms: 1 check") {
		t.Fatalf("natcheck as nobody: %v\n%s", err, out)
	}
}
