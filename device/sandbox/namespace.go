package sandbox

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Namespace is a network namespace held by a file descriptor: it exists
// while the descriptor is open (or something inside it holds it) and
// disappears with the sandbox. The zero Namespace is not usable.
type Namespace struct {
	// Name says what the namespace is for ("inside", "nat", "outside"),
	// for messages; it is no name in /run/netns.
	Name   string
	handle netns.NsHandle
}

// NewNamespace creates a network namespace. Its loopback interface is up.
func NewNamespace(name string) (*Namespace, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	res := make(chan result, 1)
	// A fresh goroutine on a locked thread: if switching back fails, it
	// exits still locked and the runtime ends the thread instead of
	// reusing it in the wrong namespace.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			res <- result{err: fmt.Errorf("namespace %s: current namespace: %w", name, err)}
			return
		}
		defer orig.Close()
		h, err := netns.New() // leaves the thread in the new namespace
		if err != nil {
			res <- result{err: fmt.Errorf("namespace %s: create: %w", name, err)}
			return
		}
		loErr := loUp()
		if err := netns.Set(orig); err != nil {
			h.Close()
			res <- result{err: fmt.Errorf("namespace %s: leave: %w", name, err)}
			return
		}
		runtime.UnlockOSThread()
		if loErr != nil {
			h.Close()
			res <- result{err: fmt.Errorf("namespace %s: loopback up: %w", name, loErr)}
			return
		}
		res <- result{h: h}
	}()
	r := <-res
	if r.err != nil {
		return nil, r.err
	}
	return &Namespace{Name: name, handle: r.h}, nil
}

// loUp sets the loopback interface of the thread's namespace up.
func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// Fd is the namespace's file descriptor, for netlink handles that take one
// (netlink.NewHandleAt, nftables.WithNetNSFd, a netlink.Config's NetNS).
func (n *Namespace) Fd() int { return int(n.handle) }

// Handle is the namespace as github.com/vishvananda/netns knows it.
func (n *Namespace) Handle() netns.NsHandle { return n.handle }

// Inode is the namespace's inode number, as /proc/PID/ns/net shows it
// ("net:[INODE]").
func (n *Namespace) Inode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(n.handle), &st); err != nil {
		return 0, fmt.Errorf("namespace %s: %w", n.Name, err)
	}
	return st.Ino, nil
}

// Do runs f on an OS thread that is in n for the whole call: sockets f
// opens belong to n, and /proc/sys/net is n's. The thread goes back to its
// namespace afterwards.
func (n *Namespace) Do(f func() error) error {
	errc := make(chan error, 1)
	// A fresh goroutine: if switching back fails, it exits locked and the
	// runtime ends its thread instead of reusing it in the wrong namespace.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("namespace %s: current namespace: %w", n.Name, err)
			return
		}
		defer orig.Close()
		if err := netns.Set(n.handle); err != nil {
			errc <- fmt.Errorf("namespace %s: enter: %w", n.Name, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("namespace %s: leave: %w (after %v)", n.Name, err, ferr)
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Close lets the namespace go: it disappears once nothing inside holds it.
func (n *Namespace) Close() error {
	if n == nil || !n.handle.IsOpen() {
		return nil
	}
	err := n.handle.Close()
	n.handle = netns.None()
	if err != nil {
		return fmt.Errorf("namespace %s: close: %w", n.Name, err)
	}
	return nil
}
