package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// withoutNetfilterNetlink, set in a child's environment to natcheck's
// arguments, makes the test binary run the natcheck binary named by
// natcheckBinEnv with them under a seccomp filter that refuses netfilter's
// netlink sockets, as a kernel without nf_tables and nf_conntrack_netlink
// would (noNetfilterNetlinkChild, called first by TestMain).
const (
	withoutNetfilterNetlink = "NATCHECK_TEST_NO_NFNETLINK"
	natcheckBinEnv          = "NATCHECK_TEST_BIN"
)

// noNetfilterNetlinkChild does nothing unless this process is the child
// TestPreflightNamesWhatIsMissing starts; then it becomes natcheck under
// the filter, or exits 99 saying why it could not.
func noNetfilterNetlinkChild() {
	args := os.Getenv(withoutNetfilterNetlink)
	if args == "" {
		return
	}
	natcheckBin = os.Getenv(natcheckBinEnv)
	err := denyNetfilterNetlinkAndExec(strings.Fields(args))
	fmt.Fprintln(os.Stderr, "seccomp child:", err)
	os.Exit(99)
}

// denyNetfilterNetlinkAndExec installs, on this thread, a seccomp filter
// under which socket(AF_NETLINK, _, NETLINK_NETFILTER) fails with
// EPROTONOSUPPORT (what a kernel without the modules answers), then
// replaces the process with natcheck: the filter holds for it and for the
// sandbox it starts. It returns only on an error.
func denyNetfilterNetlinkAndExec(args []string) error {
	runtime.LockOSThread()
	const (
		ldAbs  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret    = unix.BPF_RET | unix.BPF_K
		x86_64 = 0xc000003e // AUDIT_ARCH_X86_64
	)
	// struct seccomp_data: nr at 0, arch at 4, args[i] at 16+8i (low half
	// first on little-endian).
	filter := []unix.SockFilter{
		{Code: ldAbs, K: 4},
		{Code: jeq, K: x86_64, Jf: 6},
		{Code: ldAbs, K: 0},
		{Code: jeq, K: unix.SYS_SOCKET, Jf: 4},
		{Code: ldAbs, K: 16},
		{Code: jeq, K: unix.AF_NETLINK, Jf: 2},
		{Code: ldAbs, K: 32},
		{Code: jeq, K: unix.NETLINK_NETFILTER, Jt: 1},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPROTONOSUPPORT)},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0); err != nil {
		return err
	}
	return syscall.Exec(natcheckBin, append([]string{natcheckBin}, args...), os.Environ())
}

// TestPreflightNamesWhatIsMissing: on a machine whose kernel refuses
// netfilter's netlink sockets (here a seccomp filter, as a container
// runtime's profile might set), verify --device linux-nft stops before any
// check with one message naming every part missing — nftables and
// conntrack netlink with their kernel modules — and the usage exit code.
func TestPreflightNamesWhatIsMissing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED, not passed: the linux-nft device needs root here")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("SKIPPED, not passed: the seccomp filter is written for x86-64")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run", "^$")
	cmd.Env = append(os.Environ(), withoutNetfilterNetlink+"=verify --device linux-nft --behaviors B1", natcheckBinEnv+"="+natcheckBin)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("natcheck verify --device linux-nft without netfilter netlink: %v, want exit %d\n%s", err, exitUsage, out)
	}
	msg := string(out)
	for _, want := range []string{
		"linux-nft preflight: missing",
		"nftables netlink (kernel module nf_tables)",
		"conntrack netlink (kernel module nf_conntrack_netlink)",
		"protocol not supported",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("preflight message lacks %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "preflight"); n != 1 {
		t.Errorf("want one preflight message, got %d:\n%s", n, msg)
	}
	if strings.Contains(msg, "conforms") || strings.Contains(msg, "deviates") {
		t.Errorf("checks ran after a failed preflight:\n%s", msg)
	}
}
