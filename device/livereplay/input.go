package livereplay

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/replay/frame"
)

// Packet kinds: which path of the NAT a recorded packet takes.
const (
	kindOutbound = iota + 1 // from an instance: on the inside link
	kindReply               // recorded to an instance: from the outside, to its flow's public endpoint
	kindOutside             // recorded to a frontend IP: from the outside, as it is
)

// packet is one recorded packet that crosses the NAT.
type packet struct {
	file   int
	number int
	at     time.Time // capture time
	kind   uint8
	inst   int
	tuple  reference.Tuple // as recorded
	flags  reference.TCPFlags
	frag   bool
	seq    uint32
	ipid   uint16
	// ip is the IPv4 packet as recorded (header to end).
	ip []byte
}

// input is the capture's packets that cross the NAT, in time order, and
// what was passed over.
type input struct {
	files   []string
	packets []packet
	read    int64 // records read
	skipped int64 // not IPv4, or crossing no NAT path
}

// load reads files, keeps the IPv4 packets that cross the NAT (by
// instances and frontends) and sorts them by time (file order, then record
// order, for equal times). The device routes the instances' /24s toward
// the inside: traffic between them, and multicast and broadcast, stays
// there.
func load(files []string, instances map[netip.Addr]int, frontends map[netip.Addr]bool) (*input, error) {
	in := &input{}
	inside := map[netip.Prefix]bool{}
	for a := range instances {
		p, _ := a.Prefix(24)
		inside[p] = true
	}
	var f frame.Frame
	for fi, path := range files {
		in.files = append(in.files, filepath.Base(path))
		rd, err := capture.Open(path)
		if err != nil {
			return in, fmt.Errorf("live replay: %w", err)
		}
		for {
			rec, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rd.Close()
				return in, fmt.Errorf("live replay: %w", err)
			}
			in.read++
			if frame.Decode(rec.LinkType, rec.Data, &f) != nil || f.Network != frame.IPv4 || f.Truncated || f.End > len(rec.Data) {
				in.skipped++
				continue
			}
			p := packet{file: fi, number: rec.Number, at: rec.Time, tuple: f.Tuple(), frag: f.Fragment, ipid: f.ID}
			if f.Proto == reference.TCP {
				p.flags, p.seq = f.Flags, f.Seq
			}
			src, srcInst := instances[f.Src]
			_, dstInst := instances[f.Dst]
			switch {
			case srcInst && crosses(f.Dst, inside) && !frontends[f.Dst]:
				p.kind, p.inst = kindOutbound, src
			case dstInst && crosses(f.Src, inside):
				p.kind, p.inst = kindReply, instances[f.Dst]
			case frontends[f.Dst]:
				p.kind, p.inst = kindOutside, -1
			default:
				in.skipped++
				continue
			}
			if !f.HasPorts() && !f.IsEcho() {
				in.skipped++ // no endpoint to learn a mapping of
				continue
			}
			p.ip = append([]byte(nil), rec.Data[f.L3:f.End]...)
			in.packets = append(in.packets, p)
		}
		rd.Close()
	}
	slices.SortStableFunc(in.packets, func(a, b packet) int { return a.at.Compare(b.at) })
	return in, nil
}

// crosses reports whether a packet between an instance and a crosses the
// NAT: a is unicast and outside the instances' /24s.
func crosses(a netip.Addr, inside map[netip.Prefix]bool) bool {
	if a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	p, _ := a.Prefix(24)
	return !inside[p]
}
