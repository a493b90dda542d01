package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/natcheck/natcheck/device/sandbox"
)

// Endpoint sends and receives Ethernet frames on one interface. It is used
// by one goroutine at a time.
type Endpoint struct {
	// Name and Index identify the interface in its namespace; MAC is its
	// address.
	Name  string
	Index int
	MAC   net.HardwareAddr

	io, tap int
	buf     []byte
	oob     []byte
	closed  bool
	// The receive call's arguments, kept so that a receive does not
	// allocate (unix.Recvmsg allocates the sender's address).
	msg  unix.Msghdr
	iov  unix.Iovec
	from unix.RawSockaddrLinklayer
}

// rcvBuf is each socket's receive buffer: room for a burst of several
// thousand frames that the NAT forwards while the sender is still sending.
const rcvBuf = 16 << 20

// Open binds an endpoint to interface ifname of namespace ns.
func Open(ns *sandbox.Namespace, ifname string) (*Endpoint, error) {
	var e *Endpoint
	err := ns.Do(func() error {
		var err error
		e, err = OpenHere(ifname)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("in %s: %w", ns.Name, err)
	}
	return e, nil
}

// OpenHere binds an endpoint to interface ifname of the calling thread's
// network namespace: an interface the user named (a third-party device's
// link), or, inside Namespace.Do, one of the sandbox's.
func OpenHere(ifname string) (*Endpoint, error) {
	e := &Endpoint{Name: ifname, buf: make([]byte, 65536), oob: make([]byte, 128), io: -1, tap: -1}
	err := func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		e.Index, e.MAC = ifi.Index, ifi.HardwareAddr
		if e.io, err = packetSocket(ifi.Index); err != nil {
			return err
		}
		e.tap, err = packetSocket(ifi.Index)
		return err
	}()
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("link %s: %w", ifname, err)
	}
	return e, nil
}

func packetSocket(index int) (int, error) {
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err != nil {
		return -1, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: index}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind AF_PACKET: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Send puts frame on the wire and returns the kernel's timestamp of it as
// it left (the zero Time if the kernel's copy could not be read).
func (e *Endpoint) Send(frame []byte) (time.Time, error) {
	if _, err := unix.Write(e.io, frame); err != nil {
		return time.Time{}, fmt.Errorf("send on %s: %w", e.Name, err)
	}
	return e.sentStamp()
}

// Recv returns the next frame that arrived on the interface, if one is
// queued (it does not wait), and its kernel timestamp. The frame is valid
// until the next call.
func (e *Endpoint) Recv() (frame []byte, ts time.Time, ok bool, err error) {
	for {
		n, pkttype, ts, err := e.recv(e.io)
		if err != nil {
			return nil, time.Time{}, false, fmt.Errorf("receive on %s: %w", e.Name, err)
		}
		if n == 0 {
			return nil, time.Time{}, false, nil
		}
		if pkttype == unix.PACKET_OUTGOING {
			continue // another socket's frame leaving this interface
		}
		return e.buf[:n], ts, true, nil
	}
}

// WaitReadable waits up to d for a frame to arrive.
func (e *Endpoint) WaitReadable(d time.Duration) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(e.io), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, pollTimeout(d))
	if err != nil && !errors.Is(err, unix.EINTR) {
		return false, fmt.Errorf("poll %s: %w", e.Name, err)
	}
	return n > 0, nil
}

// pollTimeout is d in poll(2)'s milliseconds, rounded up: a deadline that
// passed (d ≤ 0) is 0, never poll's negative "wait forever" (a caller
// computing time.Until(deadline) just after checking it may get one).
func pollTimeout(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// Drain discards every queued frame on both sockets.
func (e *Endpoint) Drain() {
	for _, fd := range []int{e.io, e.tap} {
		if fd < 0 {
			continue
		}
		for {
			n, _, _, err := e.recv(fd)
			if err != nil || n == 0 {
				break
			}
		}
	}
}

// recv reads one frame from fd into e.buf without waiting: its length (0
// when none is queued), its packet type and its kernel timestamp.
func (e *Endpoint) recv(fd int) (int, uint8, time.Time, error) { return e.recvInto(fd, e.buf) }

// recvInto reads one frame from fd into b without waiting.
func (e *Endpoint) recvInto(fd int, b []byte) (int, uint8, time.Time, error) {
	if len(b) == 0 {
		return 0, 0, time.Time{}, errors.New("receive: empty buffer")
	}
	e.iov.Base = &b[0]
	e.iov.SetLen(len(b))
	e.msg.Name = (*byte)(unsafe.Pointer(&e.from))
	e.msg.Namelen = uint32(unsafe.Sizeof(e.from))
	e.msg.Iov = &e.iov
	e.msg.Iovlen = 1
	e.msg.Control = &e.oob[0]
	e.msg.SetControllen(len(e.oob))
	n, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&e.msg)), unix.MSG_DONTWAIT)
	if errno != 0 {
		if errno == unix.EAGAIN {
			return 0, 0, time.Time{}, nil
		}
		return 0, 0, time.Time{}, errno
	}
	return int(n), e.from.Pkttype, timestamp(e.oob[:e.msg.Controllen]), nil
}

// timestamp finds SCM_TIMESTAMPNS in a control message buffer.
func timestamp(oob []byte) time.Time {
	for len(oob) >= unix.SizeofCmsghdr {
		l := int(binary.NativeEndian.Uint64(oob))
		level := int32(binary.NativeEndian.Uint32(oob[8:]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:]))
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return time.Time{}
		}
		if level == unix.SOL_SOCKET && typ == unix.SCM_TIMESTAMPNS && l >= unix.SizeofCmsghdr+16 {
			sec := int64(binary.NativeEndian.Uint64(oob[16:]))
			nsec := int64(binary.NativeEndian.Uint64(oob[24:]))
			return time.Unix(sec, nsec)
		}
		oob = oob[(l+7)&^7:]
	}
	return time.Time{}
}

// Close closes the endpoint's sockets.
func (e *Endpoint) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	var errs []error
	for _, fd := range []int{e.io, e.tap} {
		if fd >= 0 {
			errs = append(errs, unix.Close(fd))
		}
	}
	return errors.Join(errs...)
}

// Write puts frame on the wire without reading its timestamp: the fast
// path of a replay, which takes the time itself.
func (e *Endpoint) Write(frame []byte) error {
	if _, err := unix.Write(e.io, frame); err != nil {
		return fmt.Errorf("send on %s: %w", e.Name, err)
	}
	return nil
}

// RecvInto copies the next frame that arrived into b (it does not wait)
// and returns its length and kernel timestamp; n is 0 when none is queued.
// It does not allocate.
func (e *Endpoint) RecvInto(b []byte) (n int, ts time.Time, err error) {
	for {
		n, pkttype, ts, err := e.recvInto(e.io, b)
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("receive on %s: %w", e.Name, err)
		}
		if n == 0 || pkttype != unix.PACKET_OUTGOING {
			return n, ts, nil
		}
	}
}

// CloseTap closes the socket that reads back the frames this endpoint
// sends: a replay that does not need their timestamps spares the kernel
// a copy of every frame. Send then returns the zero Time.
func (e *Endpoint) CloseTap() error {
	if e.tap < 0 {
		return nil
	}
	err := unix.Close(e.tap)
	e.tap = -1
	return err
}
