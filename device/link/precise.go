package link

import (
	"fmt"
	"runtime"
	"slices"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PreciseWindow is how long before its time SendAt stops relying on the
// Go runtime's timers. A goroutine asleep on a timer is woken by whichever
// runtime thread next gets the CPU, which on a busy machine can be tens of
// milliseconds late (measured here: 5–56 ms with a load of 3–13 on two
// cores); a thread asleep in the kernel is woken by the kernel itself.
const PreciseWindow = time.Second

// rawWindow is the last part of the wait, slept without handing the Go
// processor back: the runtime may take a moment to give a thread back its
// processor after a blocking system call.
const rawWindow = 2 * time.Millisecond

// SendAt puts frame on the wire at wall-clock time at (or at once if at
// has passed) and returns the kernel's timestamp of it as it left. The
// last PreciseWindow of the wait is spent on the calling goroutine's own
// OS thread, asleep in the kernel (clock_nanosleep on CLOCK_REALTIME, the
// kernel timestamps' clock), and, where the process may (root), at
// real-time priority SCHED_FIFO 1, so that the kernel wakes it on time
// whatever else the machine runs; its last 2 ms keep the thread's Go
// processor, so that the wake-up and the write follow each other with
// nothing scheduled in between. A program that sends from several
// goroutines at once needs GOMAXPROCS above their number.
func (e *Endpoint) SendAt(frame []byte, at time.Time) (time.Time, error) {
	if d := time.Until(at) - PreciseWindow; d > 0 {
		time.Sleep(d)
	}
	if len(frame) == 0 {
		return time.Time{}, fmt.Errorf("send on %s: empty frame", e.Name)
	}
	var errno unix.Errno
	preciseAt(at, func() {
		_, _, errno = unix.RawSyscall(unix.SYS_WRITE, uintptr(e.io), uintptr(unsafe.Pointer(&frame[0])), uintptr(len(frame)))
	})
	if errno != 0 {
		return time.Time{}, fmt.Errorf("send on %s: %w", e.Name, errno)
	}
	return e.sentStamp()
}

// preciseAt sleeps until at on the calling goroutine's own thread, in the
// kernel, at real-time priority where permitted, and runs f (which must
// not block) the moment it wakes.
func preciseAt(at time.Time, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 1}, 0) == nil {
		defer unix.SchedSetAttr(0, &unix.SchedAttr{Policy: 0 /* SCHED_OTHER */}, 0)
	}
	if coarse := at.Add(-rawWindow); time.Until(coarse) > 0 {
		ts := unix.NsecToTimespec(coarse.UnixNano())
		for unix.ClockNanosleep(unix.CLOCK_REALTIME, unix.TIMER_ABSTIME, &ts, nil) == unix.EINTR {
		}
	}
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
	f()
}

// WakeLateness measures how late SendAt's wait wakes on this machine now:
// the 99th percentile of n waits of 1 ms.
func WakeLateness(n int) time.Duration {
	late := make([]time.Duration, 0, n)
	for range n {
		at := time.Now().Add(time.Millisecond)
		var woke time.Time
		preciseAt(at, func() { woke = time.Now() })
		late = append(late, woke.Sub(at))
	}
	slices.Sort(late)
	return late[len(late)*99/100]
}

// sentStamp reads the kernel's timestamp of the frame just sent from the
// tap socket (the zero Time if it could not be read).
func (e *Endpoint) sentStamp() (time.Time, error) {
	for e.tap >= 0 {
		n, pkttype, ts, err := e.recv(e.tap)
		if err != nil || n == 0 {
			return time.Time{}, nil
		}
		if pkttype == unix.PACKET_OUTGOING {
			return ts, nil
		}
	}
	return time.Time{}, nil
}
