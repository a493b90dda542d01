// Package link puts Ethernet frames on a Linux interface and takes them off
// it, with the kernel's timestamps, and builds the IPv4 frames natcheck
// sends into a live device.
//
// An [Endpoint] is a pair of AF_PACKET sockets bound to one interface of a
// namespace the sandbox made: one sends and receives what arrives on the
// interface, the other sees the frames this process sent, stamped by the
// kernel as they left (SO_TIMESTAMPNS), so that timing is judged from what
// was really sent. [AppendFrame] builds a frame from a [Segment] (tuple,
// TCP flags, sequence numbers, IP ID, payload) with valid checksums, and
// [SplitFragments] cuts one into IPv4 fragments.
//
// It imports the standard library, golang.org/x/sys/unix, package
// device/sandbox (to open sockets in a namespace) and reference for the
// packet vocabulary.
package link
