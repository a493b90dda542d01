// Package viewdiff compares two outside views of the same input (natcheck
// replay -w, or a device's recording) up to a consistent renaming of SNAT
// IPs and ports (natcheck diff). Two NATs that chose different ports but
// made the same structure — which flows share a port, which flow was
// refused, when a port came back to be used by another flow — are
// equivalent; anything else is a difference, shown with its packets.
//
// How: every packet of each view is reduced to its shape (time, protocol,
// TCP flags, sequence numbers, payload) and paired with the packet of the
// other view that has the same shape at the same time. A pair whose
// endpoints differ shows which side is the NAT's (the SNAT endpoint
// changes, the server's does not); those sides give each view's SNAT IPs.
// Then every pair must have the same server endpoint, and the SNAT
// endpoints of the pairs must make one bijection between the two views,
// over the whole capture (and so must their IPs): a port that carries
// two flows in one view carries two in the other, a port that comes back
// to a new flow does so in both. A packet with no partner (a flow refused
// or dropped in one view only, a RST only one NAT sent) is a difference.
package viewdiff

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/replay/frame"
)

// Packet is one packet of a view, as the comparison sees it.
type Packet struct {
	// Number is the packet's position in its file, from 1.
	Number int
	Time   time.Time
	Proto  reference.Proto
	// Src and Dst are the endpoints (port 0 for a protocol without ports).
	Src, Dst netip.AddrPort
	Flags    reference.TCPFlags
	Comment  string
	// Via is the SNAT endpoint the packet's comment names ("… via
	// 203.0.113.1:1024", as natcheck replay writes on a packet that opens
	// a flow), if any.
	Via   netip.AddrPort
	shape [32]byte
}

// String renders the packet in one line: "packet 12 at 2025-…: tcp
// 203.0.113.1:1024 > 198.51.100.10:443 [S]".
func (p Packet) String() string {
	s := fmt.Sprintf("packet %d at %s: %s %s > %s", p.Number, p.Time.Format(time.RFC3339Nano), p.Proto, p.Src, p.Dst)
	if p.Proto == reference.TCP {
		s += " [" + p.Flags.String() + "]"
	}
	return s
}

// Read reads the packets of a view. Packets that are not IPv4 have
// nothing to rename and take part with their bytes as shape.
//
// A live device's recording (natcheck record: a pcapng file whose
// interfaces are named "inside" and "outside") is read as its outside
// view: the packets of the outside interface only, each at the capture
// time its comment names ("FILE packet N at TIME"), so that it pairs with
// a replay's outside view of the same input, or with another recording of
// it, made at another time or speed. A frame of the outside link that
// translates no replayed packet keeps the time it was recorded at (and so
// pairs with nothing).
func Read(path string) ([]Packet, error) {
	rd, err := capture.Open(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var out []Packet
	var f frame.Frame
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		p := Packet{Number: rec.Number, Time: rec.Time}
		if len(rec.Comments) > 0 {
			p.Comment = strings.Join(rec.Comments, "; ")
			p.Via = via(p.Comment)
		}
		if isRecording(rd) {
			if rd.InterfaceName(rec.Interface) != "outside" {
				continue
			}
			if t, ok := recordedTime(rec.Comments); ok {
				p.Time = t
			}
		}
		h := sha256.New()
		var head [12]byte
		binary.BigEndian.PutUint64(head[0:], uint64(p.Time.UnixNano()))
		if err := frame.Decode(rec.LinkType, rec.Data, &f); err != nil || f.Network != frame.IPv4 {
			h.Write(head[:8])
			h.Write(rec.Data)
		} else {
			p.Proto, p.Flags = f.Proto, f.Flags
			p.Src, p.Dst = netip.AddrPortFrom(f.Src, f.SrcPort), netip.AddrPortFrom(f.Dst, f.DstPort)
			head[8], head[9] = byte(f.Proto), byte(f.Flags)
			binary.BigEndian.PutUint16(head[10:], uint16(f.PayloadLen))
			h.Write(head[:])
			var sq [8]byte
			binary.BigEndian.PutUint32(sq[0:], f.Seq)
			binary.BigEndian.PutUint32(sq[4:], f.Ack)
			h.Write(sq[:])
			if f.Transport && f.L4 > 0 {
				h.Write(rec.Data[min(payloadStart(&f, rec.Data), len(rec.Data)):min(f.End, len(rec.Data))])
			}
		}
		h.Sum(p.shape[:0])
		out = append(out, p)
	}
}

// isRecording reports whether rd reads a live device's recording: its
// first two interfaces are named "inside" and "outside", as natcheck
// record writes them.
func isRecording(rd *capture.Reader) bool {
	return rd.InterfaceName(0) == "inside" && rd.InterfaceName(1) == "outside"
}

// recordedTime returns the capture time a recording's comment names for
// its packet ("FILE packet N at 2025-01-01T00:00:00.5Z").
func recordedTime(comments []string) (time.Time, bool) {
	for _, c := range comments {
		i := strings.LastIndex(c, " at ")
		if i < 0 || !strings.Contains(c[:i], " packet ") {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, c[i+len(" at "):]); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// via returns the SNAT endpoint a natcheck comment names after " via ".
func via(comment string) netip.AddrPort {
	_, rest, ok := strings.Cut(comment, " via ")
	if !ok {
		return netip.AddrPort{}
	}
	if i := strings.IndexAny(rest, "; "); i >= 0 {
		rest = rest[:i]
	}
	ap, _ := netip.ParseAddrPort(rest)
	return ap
}

// payloadStart is the offset of the transport payload.
func payloadStart(f *frame.Frame, data []byte) int {
	switch f.Proto {
	case reference.TCP:
		if f.L4+12 < len(data) {
			return f.L4 + int(data[f.L4+12]>>4)*4
		}
		return len(data)
	case reference.UDP, reference.ICMP:
		return f.L4 + 8
	}
	return f.L4
}

// Difference is one way the views differ, with the packets that show it
// (A or B may be nil when the packet has no partner).
type Difference struct {
	A, B *Packet
	What string
}

// String renders the difference over a few lines.
func (d Difference) String() string {
	var b strings.Builder
	b.WriteString(d.What)
	for _, side := range []struct {
		name string
		p    *Packet
	}{{"A", d.A}, {"B", d.B}} {
		if side.p != nil {
			fmt.Fprintf(&b, "\n    %s %s", side.name, side.p)
			if side.p.Comment != "" {
				fmt.Fprintf(&b, " %q", side.p.Comment)
			}
		}
	}
	return b.String()
}

// Result is the comparison of two views.
type Result struct {
	PacketsA, PacketsB, Paired int
	// SNATIPsA and SNATIPsB are the SNAT IPs each view uses, as found:
	// named by natcheck's comments ("via 203.0.113.1:1024"), or the side of
	// a paired packet whose endpoint differs between the views. Both are
	// empty when neither view has such comments and every pair has the
	// same endpoints (Identical).
	SNATIPsA, SNATIPsB []netip.Addr
	// Identical: every packet of each view is paired, with the same
	// endpoints in both views; nothing needed renaming.
	Identical bool
	// Endpoints is the renaming found: every SNAT endpoint of A with B's,
	// in the order A first used them; Renamed counts those that differ.
	Endpoints []Rename
	Renamed   int
	// Differences are every difference, in A's packet order (packets only
	// in B at their time).
	Differences []Difference
}

// Rename is one SNAT endpoint of A and the one of B that stands for it.
type Rename struct {
	Proto reference.Proto
	A, B  netip.AddrPort
}

// Equivalent reports whether the views have the same structure.
func (r *Result) Equivalent() bool { return len(r.Differences) == 0 }

// Compare compares the views a and b.
func Compare(a, b []Packet) *Result {
	res := &Result{PacketsA: len(a), PacketsB: len(b)}
	byTime := func(x, y Packet) int { return x.Time.Compare(y.Time) }
	a = slices.Clone(a)
	b = slices.Clone(b)
	slices.SortStableFunc(a, byTime)
	slices.SortStableFunc(b, byTime)
	pairs, onlyA, onlyB := pair(a, b, nil, nil)
	snatA, snatB := map[netip.Addr]bool{}, map[netip.Addr]bool{}
	for _, v := range []struct {
		view []Packet
		snat map[netip.Addr]bool
	}{{a, snatA}, {b, snatB}} {
		for _, p := range v.view {
			if p.Via.IsValid() {
				v.snat[p.Via.Addr()] = true
			}
		}
	}
	for _, pr := range pairs {
		pa, pb := pr[0], pr[1]
		if pa.Src != pb.Src && pa.Dst == pb.Dst {
			snatA[pa.Src.Addr()], snatB[pb.Src.Addr()] = true, true
		}
		if pa.Dst != pb.Dst && pa.Src == pb.Src {
			snatA[pa.Dst.Addr()], snatB[pb.Dst.Addr()] = true, true
		}
	}
	// A SNAT IP one view's comments name is one in the other view too
	// where a pair has the same endpoints in both (a device's recording,
	// with no comments, against a replay).
	for _, pr := range pairs {
		pa, pb := pr[0], pr[1]
		if pa.Src == pb.Src && pa.Dst == pb.Dst {
			for _, ip := range []netip.Addr{pa.Src.Addr(), pa.Dst.Addr()} {
				if snatA[ip] || snatB[ip] {
					snatA[ip], snatB[ip] = true, true
				}
			}
		}
	}
	if len(snatA) > 0 || len(snatB) > 0 {
		// With the SNAT sides known, pair again with the server endpoint
		// in the shape: packets at one time with one shape are told apart.
		pairs, onlyA, onlyB = pair(a, b, snatA, snatB)
	}
	res.Paired = len(pairs)
	res.Identical = len(onlyA) == 0 && len(onlyB) == 0
	for _, pr := range pairs {
		res.Identical = res.Identical && pr[0].Src == pr[1].Src && pr[0].Dst == pr[1].Dst
	}
	res.SNATIPsA, res.SNATIPsB = sortedAddrs(snatA), sortedAddrs(snatB)
	type key struct {
		proto reference.Proto
		ep    netip.AddrPort
	}
	fwd, bwd := map[key]netip.AddrPort{}, map[key]netip.AddrPort{}
	firstA, firstB := map[key]*Packet{}, map[key]*Packet{}
	ipFwd, ipBwd := map[netip.Addr]netip.Addr{}, map[netip.Addr]netip.Addr{}
	ipFirst := map[netip.Addr]*Packet{}
	var diffs []Difference
	for _, pr := range pairs {
		pa, pb := pr[0], pr[1]
		sa, ra, okA := split(*pa, snatA)
		sb, rb, okB := split(*pb, snatB)
		switch {
		case !okA && !okB:
			if pa.Src != pb.Src || pa.Dst != pb.Dst {
				diffs = append(diffs, Difference{A: pa, B: pb, What: "endpoints differ and neither is a SNAT endpoint"})
			}
			continue
		case okA != okB:
			diffs = append(diffs, Difference{A: pa, B: pb, What: "a SNAT endpoint in one view is not one in the other"})
			continue
		case ra != rb:
			diffs = append(diffs, Difference{A: pa, B: pb, What: fmt.Sprintf("the server endpoint differs: %v in A, %v in B", ra, rb)})
			continue
		}
		ka, kb := key{pa.Proto, sa}, key{pb.Proto, sb}
		if m, ok := fwd[ka]; ok && m != sb {
			diffs = append(diffs, Difference{A: pa, B: pb, What: fmt.Sprintf(
				"A's %s %v stands for B's %v since A's packet %d, but here B uses %v: the flows that share a port, or the flow a port came back to, differ",
				pa.Proto, sa, m, firstA[ka].Number, sb)})
			continue
		}
		if m, ok := bwd[kb]; ok && m != sa {
			diffs = append(diffs, Difference{A: pa, B: pb, What: fmt.Sprintf(
				"B's %s %v stands for A's %v since B's packet %d, but here A uses %v: the flows that share a port, or the flow a port came back to, differ",
				pb.Proto, sb, m, firstB[kb].Number, sa)})
			continue
		}
		if m, ok := ipFwd[sa.Addr()]; ok && m != sb.Addr() {
			diffs = append(diffs, Difference{A: pa, B: pb, What: fmt.Sprintf(
				"A's SNAT IP %v stands for B's %v since A's packet %d, but here B uses %v: the flows that share a frontend IP differ",
				sa.Addr(), m, ipFirst[sa.Addr()].Number, sb.Addr())})
			continue
		}
		if m, ok := ipBwd[sb.Addr()]; ok && m != sa.Addr() {
			diffs = append(diffs, Difference{A: pa, B: pb, What: fmt.Sprintf(
				"B's SNAT IP %v stands for A's %v, but here A uses %v: the flows that share a frontend IP differ", sb.Addr(), m, sa.Addr())})
			continue
		}
		if _, ok := fwd[ka]; !ok {
			fwd[ka], bwd[kb], firstA[ka], firstB[kb] = sb, sa, pa, pb
			res.Endpoints = append(res.Endpoints, Rename{Proto: pa.Proto, A: sa, B: sb})
			if sa != sb {
				res.Renamed++
			}
		}
		if _, ok := ipFwd[sa.Addr()]; !ok {
			ipFwd[sa.Addr()], ipBwd[sb.Addr()], ipFirst[sa.Addr()] = sb.Addr(), sa.Addr(), pa
		}
	}
	for _, p := range onlyA {
		diffs = append(diffs, Difference{A: p, What: "only in A: B has no packet of this shape at this time (refused, dropped or sent by one NAT only)"})
	}
	for _, p := range onlyB {
		diffs = append(diffs, Difference{B: p, What: "only in B: A has no packet of this shape at this time (refused, dropped or sent by one NAT only)"})
	}
	slices.SortStableFunc(diffs, func(x, y Difference) int { return x.order().Compare(y.order()) })
	res.Differences = diffs
	return res
}

// order sorts differences by time, then by A's packet number, then B's.
func (d Difference) order() orderKey {
	p := d.A
	if p == nil {
		p = d.B
	}
	k := orderKey{t: p.Time.UnixNano()}
	if d.A != nil {
		k.a = d.A.Number
	}
	if d.B != nil {
		k.b = d.B.Number
	}
	return k
}

type orderKey struct {
	t    int64
	a, b int
}

func (k orderKey) Compare(o orderKey) int {
	switch {
	case k.t != o.t:
		return cmpInt(k.t, o.t)
	case k.a != o.a:
		return cmpInt(int64(k.a), int64(o.a))
	}
	return cmpInt(int64(k.b), int64(o.b))
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// split returns a packet's SNAT endpoint and server endpoint, given the
// view's SNAT IPs; ok is false when neither or both ends are SNAT IPs.
func split(p Packet, snat map[netip.Addr]bool) (s, r netip.AddrPort, ok bool) {
	srcS, dstS := snat[p.Src.Addr()], snat[p.Dst.Addr()]
	switch {
	case srcS && !dstS:
		return p.Src, p.Dst, true
	case dstS && !srcS:
		return p.Dst, p.Src, true
	}
	return netip.AddrPort{}, netip.AddrPort{}, false
}

// pair pairs the packets of a and b with the same shape at the same time,
// in order; with the SNAT IPs known, the server endpoint is part of the
// shape. It returns the pairs in a's order and the packets left over.
func pair(a, b []Packet, snatA, snatB map[netip.Addr]bool) (pairs [][2]*Packet, onlyA, onlyB []*Packet) {
	// The pairs must stay in a's order for the renaming to be checked in
	// time order: they are sorted back at the end.
	shape := func(p *Packet, snat map[netip.Addr]bool) string {
		s := string(p.shape[:])
		if snat != nil {
			if _, r, ok := split(*p, snat); ok {
				s += r.String()
			}
		}
		return s
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		// The packets of the next time: one group from each view.
		var t time.Time
		switch {
		case i == len(a):
			t = b[j].Time
		case j == len(b):
			t = a[i].Time
		case b[j].Time.Before(a[i].Time):
			t = b[j].Time
		default:
			t = a[i].Time
		}
		ei, ej := i, j
		for ei < len(a) && a[ei].Time.Equal(t) {
			ei++
		}
		for ej < len(b) && b[ej].Time.Equal(t) {
			ej++
		}
		// First with the server endpoints, then, for what is left, without
		// them: such a pair is a difference of server endpoint.
		usedA, usedB := make([]bool, ei-i), make([]bool, ej-j)
		for round, sa := range []map[netip.Addr]bool{snatA, nil} {
			if round == 1 && snatA == nil {
				break
			}
			sb := snatB
			if sa == nil {
				sb = nil
			}
			for x := i; x < ei; x++ {
				if usedA[x-i] {
					continue
				}
				sx := shape(&a[x], sa)
				for y := j; y < ej; y++ {
					if !usedB[y-j] && shape(&b[y], sb) == sx {
						usedA[x-i], usedB[y-j] = true, true
						pairs = append(pairs, [2]*Packet{&a[x], &b[y]})
						break
					}
				}
			}
		}
		for x := i; x < ei; x++ {
			if !usedA[x-i] {
				onlyA = append(onlyA, &a[x])
			}
		}
		for y := j; y < ej; y++ {
			if !usedB[y-j] {
				onlyB = append(onlyB, &b[y])
			}
		}
		i, j = ei, ej
	}
	slices.SortStableFunc(pairs, func(x, y [2]*Packet) int {
		if c := x[0].Time.Compare(y[0].Time); c != 0 {
			return c
		}
		return x[0].Number - y[0].Number
	})
	return pairs, onlyA, onlyB
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
