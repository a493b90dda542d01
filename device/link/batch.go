package link

import (
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr: a message header and the length received.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// Batch receives up to its size of frames in one system call (recvmmsg).
// The zero Batch is not usable: call NewBatch.
type Batch struct {
	// Frames are the frames of the last RecvBatch, Times their kernel
	// timestamps; both are valid until the next call.
	Frames [][]byte
	Times  []time.Time
	bufs   [][]byte
	msgs   []mmsghdr
	iovs   []unix.Iovec
	oobs   [][]byte
	froms  []unix.RawSockaddrLinklayer
}

// NewBatch returns a Batch of n frames of up to size bytes each.
func NewBatch(n, size int) *Batch {
	b := &Batch{bufs: make([][]byte, n), msgs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n), oobs: make([][]byte, n), froms: make([]unix.RawSockaddrLinklayer, n),
		Frames: make([][]byte, 0, n), Times: make([]time.Time, 0, n)}
	for i := range n {
		b.bufs[i] = make([]byte, size)
		b.oobs[i] = make([]byte, 64)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(size)
		h := &b.msgs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.froms[i]))
		h.Namelen = uint32(unsafe.Sizeof(b.froms[i]))
		h.Iov = &b.iovs[i]
		h.Iovlen = 1
		h.Control = &b.oobs[i][0]
	}
	return b
}

// RecvBatch reads the frames queued on the endpoint, up to the batch's
// size, without waiting, into b.Frames and b.Times (empty when none is
// queued), leaving out this host's own frames leaving the interface. It
// does not allocate.
func (e *Endpoint) RecvBatch(b *Batch) error {
	b.Frames, b.Times = b.Frames[:0], b.Times[:0]
	for i := range b.msgs {
		b.msgs[i].hdr.SetControllen(len(b.oobs[i]))
		b.msgs[i].hdr.Namelen = uint32(unsafe.Sizeof(b.froms[i]))
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(e.io), uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(len(b.msgs)), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		if errno == unix.EAGAIN {
			return nil
		}
		return fmt.Errorf("receive on %s: %w", e.Name, errno)
	}
	for i := range int(n) {
		if b.froms[i].Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		m := &b.msgs[i]
		b.Frames = append(b.Frames, b.bufs[i][:m.len])
		b.Times = append(b.Times, timestamp(b.oobs[i][:m.hdr.Controllen]))
	}
	return nil
}
