package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// envChild marks the sandbox process: natcheck's own re-execution of
// itself, never a user's setting.
const envChild = "NATCHECK_SANDBOX"

// Inside reports whether this process is a sandbox that [Enter] started.
func Inside() bool { return os.Getenv(envChild) == "1" }

// ErrUnavailable is matched by the error of [Enter] when the kernel or the
// machine's policy does not let natcheck make its namespaces
// (errors.Is(err, ErrUnavailable)).
var ErrUnavailable = errors.New("live devices unavailable")

// Enter runs the program again, with args (args[0] as its name, the rest
// as its arguments), inside a new sandbox, with this process's standard
// streams and environment, and waits for it. It returns the child's exit
// code. SIGINT and SIGTERM received meanwhile are passed on to the child.
//
// The child gets new network and mount namespaces and, when this process
// is not root, a new user namespace in which it is root. It is killed by
// the kernel when the thread that started it exits, so the start happens
// on a locked OS thread (the Go runtime never ends a thread that is not
// locked), and when this process dies.
func Enter(args []string) (int, error) {
	if Inside() {
		return 0, errors.New("sandbox: already inside the sandbox")
	}
	cmd := exec.Command("/proc/self/exe", args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Env = append(os.Environ(), envChild+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = sysProcAttr()

	sig := make(chan os.Signal, 4)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)

	runtime.LockOSThread()
	err := cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return 0, startError(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sig:
			_ = cmd.Process.Signal(s)
		case err := <-done:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return 128 + int(ws.Signal()), nil
				}
				return ee.ExitCode(), nil
			}
			if err != nil {
				return 0, fmt.Errorf("sandbox: %w", err)
			}
			return 0, nil
		}
	}
}

// sysProcAttr is the child's namespaces and death signal.
func sysProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNET | unix.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	if os.Geteuid() != 0 {
		a.Cloneflags |= unix.CLONE_NEWUSER
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		a.GidMappingsEnableSetgroups = false
		a.AmbientCaps = []uintptr{unix.CAP_NET_ADMIN, unix.CAP_NET_RAW, unix.CAP_SYS_ADMIN}
	}
	return a
}

// startError names why the namespaces could not be made.
func startError(err error) error {
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSPC) && !errors.Is(err, unix.EACCES) {
		return fmt.Errorf("sandbox: start: %w", err)
	}
	why := "this process may not create network namespaces"
	if os.Geteuid() != 0 {
		why = "user namespaces are disabled for unprivileged users"
		for _, s := range []struct{ path, bad, say string }{
			{"/proc/sys/kernel/unprivileged_userns_clone", "0", "kernel.unprivileged_userns_clone is 0"},
			{"/proc/sys/user/max_user_namespaces", "0", "user.max_user_namespaces is 0"},
			{"/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1", "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)"},
		} {
			if b, e := os.ReadFile(s.path); e == nil && strings.TrimSpace(string(b)) == s.bad {
				why = s.say
			}
		}
	}
	if seccompFiltered() {
		why += "; a seccomp filter is active (a container's default profile forbids unshare and clone of namespaces)"
	}
	return fmt.Errorf("%w: %s (%v); run as root or allow user namespaces", ErrUnavailable, why, err)
}

// seccompFiltered reports whether this process runs under a seccomp filter.
func seccompFiltered() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	return slices.Contains(strings.Split(string(b), "\n"), "Seccomp:\t2")
}
