package link

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PreciseWindow is how long before its time SendAt stops relying on the
// Go runtime's timers. A goroutine asleep on a timer is woken by whichever
// runtime thread next gets the CPU, which on a busy machine can be tens of
// milliseconds late (measured here: 5–56 ms with a load of 3–8 on two
// cores); a thread asleep in the kernel is woken by the kernel itself.
const PreciseWindow = 40 * time.Millisecond

// SendAt puts frame on the wire at wall-clock time at (or at once if at
// has passed) and returns the kernel's timestamp of it as it left. The
// last PreciseWindow of the wait is spent on the calling goroutine's own
// OS thread, asleep in the kernel (clock_nanosleep on CLOCK_REALTIME, the
// kernel timestamps' clock) without handing its Go processor back, and,
// where the process may (root), at real-time priority SCHED_FIFO 1 for
// that moment only, so that the wake-up and the write follow each other
// with nothing scheduled in between. The processor stays busy for up to
// PreciseWindow: a program that sends from several goroutines at once
// needs GOMAXPROCS above their number.
func (e *Endpoint) SendAt(frame []byte, at time.Time) (time.Time, error) {
	if d := time.Until(at) - PreciseWindow; d > 0 {
		time.Sleep(d)
	}
	if len(frame) == 0 {
		return time.Time{}, fmt.Errorf("send on %s: empty frame", e.Name)
	}
	runtime.LockOSThread()
	rt := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 1}, 0) == nil
	ts := unix.NsecToTimespec(at.UnixNano())
	for {
		// Raw: no hand-off of the Go processor around the sleep, so the
		// thread runs on the moment it wakes. TIMER_ABSTIME: an
		// interrupted sleep (the runtime's preemption signal) resumes
		// toward the same instant.
		_, _, errno := unix.RawSyscall6(unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_REALTIME, unix.TIMER_ABSTIME, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if errno != unix.EINTR {
			break
		}
	}
	_, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(e.io), uintptr(unsafe.Pointer(&frame[0])), uintptr(len(frame)))
	if rt {
		_ = unix.SchedSetAttr(0, &unix.SchedAttr{Policy: 0 /* SCHED_OTHER */}, 0)
	}
	runtime.UnlockOSThread()
	if errno != 0 {
		return time.Time{}, fmt.Errorf("send on %s: %w", e.Name, errno)
	}
	return e.sentStamp()
}

// sentStamp reads the kernel's timestamp of the frame just sent from the
// tap socket (the zero Time if it could not be read).
func (e *Endpoint) sentStamp() (time.Time, error) {
	for {
		n, pkttype, ts, err := e.recv(e.tap)
		if err != nil || n == 0 {
			return time.Time{}, nil
		}
		if pkttype == unix.PACKET_OUTGOING {
			return ts, nil
		}
	}
}
