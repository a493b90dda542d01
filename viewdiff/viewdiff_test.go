package viewdiff

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/replay/frame"
)

const (
	vpn   = "../captures/public/ndpi__anyconnect-vpn.pcap"
	reuse = "../captures/scenarios/azure-lb-tcp-reuse-dst-ports.pcap"
	rst   = "../captures/scenarios/azure-lb-rst-15s.pcap"
)

// view replays input with the given engine and backends and returns its
// outside view.
func view(t *testing.T, input string, backends string, ec reference.Config) []Packet {
	t.Helper()
	specs, err := replay.ParseBackends(backends)
	if err != nil {
		t.Fatal(err)
	}
	if ec.Frontends == nil {
		ec.Frontends = []netip.Addr{netip.MustParseAddr("203.0.113.1")}
	}
	out := filepath.Join(t.TempDir(), "out.pcapng")
	if _, err := replay.Run([]string{input}, replay.Config{Engine: ec, Backends: specs, Output: out, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	v, err := Read(out)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// TestOtherPlacementIsEquivalent: the reference against engines that
// place the instance elsewhere (second in the pool, so other blocks, C2;
// another frontend IP; ports from 1025, a profile with other placement)
// chose other SNAT ports for the same structure: equivalent, with every
// endpoint renamed.
func TestOtherPlacementIsEquivalent(t *testing.T) {
	from1025 := reference.AzureLB()
	from1025.FirstPort = 1025
	for _, tc := range []struct {
		input, backends string
		ports           int
	}{{vpn, "10.0.0.227", 8}, {reuse, "10.0.0.1", 8}, {rst, "10.0.0.1", 8}} {
		ref := view(t, tc.input, tc.backends, reference.Config{PortsPerInstance: tc.ports})
		for name, other := range map[string][]Packet{
			"second in the pool": view(t, tc.input, "10.9.9.9,"+tc.backends, reference.Config{PortsPerInstance: tc.ports}),
			"another frontend IP": view(t, tc.input, "10.9.9.9,"+tc.backends,
				reference.Config{Frontends: addrs("192.0.2.1"), PortsPerInstance: tc.ports}),
			"ports from 1025": view(t, tc.input, tc.backends, reference.Config{Profile: from1025, PortsPerInstance: tc.ports}),
		} {
			r := Compare(ref, other)
			if !r.Equivalent() || r.Paired != len(ref) || r.Renamed == 0 || r.Renamed != len(r.Endpoints) {
				t.Errorf("%s, %s: equivalent %v, %d of %d paired, %d of %d endpoints renamed; first difference: %v",
					filepath.Base(tc.input), name, r.Equivalent(), r.Paired, len(ref), r.Renamed, len(r.Endpoints), first(r))
			}
		}
		if r := Compare(ref, ref); !r.Equivalent() || r.Renamed != 0 {
			t.Errorf("%s against itself: %+v", tc.input, r)
		}
	}
}

func first(r *Result) string {
	if len(r.Differences) == 0 {
		return "none"
	}
	return r.Differences[0].String()
}

// TestRefusedFlowIsADifference: 8 ports against 16: the flows the first
// refused appear in the second only; the first difference is the packet
// of input packet 348 (the first refused), at its time.
func TestRefusedFlowIsADifference(t *testing.T) {
	a := view(t, vpn, "10.0.0.227", reference.Config{PortsPerInstance: 8})
	b := view(t, vpn, "10.9.9.9,10.0.0.227", reference.Config{PortsPerInstance: 16})
	r := Compare(a, b)
	if r.Equivalent() || len(r.Differences) != len(b)-len(a) {
		t.Fatalf("8 vs 16 ports: %d differences, want %d (the packets of the flows only 16 ports let through)", len(r.Differences), len(b)-len(a))
	}
	d := r.Differences[0]
	at := time.Date(2019, 9, 28, 16, 14, 27, 481295000, time.UTC)
	if d.A != nil || d.B == nil || !d.B.Time.Equal(at) || !strings.HasPrefix(d.What, "only in B") || d.B.Proto != reference.UDP {
		t.Errorf("first difference = %s; want B's UDP packet at %v (input packet 348) only in B", d, at)
	}
}

// TestPortCameBackLaterIsADifference: a 14 s RST hold against 15 s: the
// port comes back earlier, so a flow that one refused the other lets
// through, and the packets of the reset flow map to other ports.
func TestPortCameBackLaterIsADifference(t *testing.T) {
	p14 := reference.AzureLB()
	p14.RSTHold = 14 * time.Second
	a := view(t, rst, "10.0.0.1", reference.Config{PortsPerInstance: 8})
	b := view(t, rst, "10.9.9.9,10.0.0.1", reference.Config{Profile: p14, PortsPerInstance: 8})
	r := Compare(a, b)
	if r.Equivalent() {
		t.Fatal("a 14 s RST hold is equivalent to the 15 s one")
	}
	t.Logf("first difference: %s", r.Differences[0])
}

// TestSharingBrokenIsADifference: one packet of a flow moved to another
// SNAT port (in the rewritten copy of a view, the flows that share that
// port are no longer the same) is a difference at that packet, naming the
// endpoint whose renaming it breaks.
func TestSharingBrokenIsADifference(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "a.pcapng")
	specs, _ := replay.ParseBackends("10.0.0.1")
	if _, err := replay.Run([]string{reuse}, replay.Config{Engine: reference.Config{Frontends: addrs("203.0.113.1"), PortsPerInstance: 8},
		Backends: specs, Output: in, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	a, err := Read(in)
	if err != nil {
		t.Fatal(err)
	}
	// Packet 9 of the view is the first flow to :80, sharing 1024 with
	// the first flow to :443 (B6); move it to port 1100.
	if a[8].Src != netip.MustParseAddrPort("203.0.113.1:1024") || a[8].Dst.Port() != 80 {
		t.Fatalf("packet 9 of the view is %s, want the first flow to :80 from 1024", a[8])
	}
	out := filepath.Join(dir, "b.pcapng")
	rewriteView(t, in, out, 9, netip.MustParseAddrPort("203.0.113.1:1100"))
	b, err := Read(out)
	if err != nil {
		t.Fatal(err)
	}
	r := Compare(a, b)
	if r.Equivalent() {
		t.Fatal("a flow moved off its shared port is equivalent")
	}
	d := r.Differences[0]
	if d.A == nil || d.A.Number != 9 || d.B == nil || d.B.Number != 9 || !strings.Contains(d.What, "203.0.113.1:1024") || !strings.Contains(d.What, "share a port") {
		t.Errorf("first difference = %s; want packet 9 of both, naming 203.0.113.1:1024 and its sharing", d)
	}
}

// rewriteView copies a pcapng view, giving packet n the source src.
func rewriteView(t *testing.T, in, out string, n int, src netip.AddrPort) {
	t.Helper()
	rd, err := capture.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var w *capture.Writer
	for {
		rec, err := rd.Next()
		if err != nil {
			break
		}
		if w == nil {
			if w, err = capture.Create(out, capture.Interface{Name: "x", LinkType: rec.LinkType}); err != nil {
				t.Fatal(err)
			}
		}
		data := append([]byte(nil), rec.Data...)
		if rec.Number == n {
			var f frame.Frame
			if err := frame.Decode(rec.LinkType, data, &f); err != nil {
				t.Fatal(err)
			}
			if err := frame.RewriteSource(data, &f, src); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Write(capture.Record{Time: rec.Time, Data: data, Length: rec.Length, Comments: rec.Comments}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestServerEndpointMustMatch: a packet that goes to another server in
// one view is a difference, not a renaming.
func TestServerEndpointMustMatch(t *testing.T) {
	p := func(n int, src, dst string) Packet {
		return Packet{Number: n, Time: time.Unix(int64(n), 0), Proto: reference.UDP,
			Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst)}
	}
	a := []Packet{p(1, "203.0.113.1:1024", "198.51.100.1:53"), p(2, "203.0.113.1:1024", "198.51.100.1:53")}
	b := []Packet{p(1, "203.0.113.1:2000", "198.51.100.1:53"), p(2, "203.0.113.1:2000", "198.51.100.2:53")}
	r := Compare(a, b)
	if len(r.Differences) != 1 || !strings.Contains(r.Differences[0].What, "server endpoint differs") {
		t.Fatalf("differences = %v, want one naming the server endpoint", r.Differences)
	}
}

// TestIdenticalViews: a view against itself names its SNAT IPs, found in
// natcheck's comments ("… via 203.0.113.1:1024") though no endpoint
// differs, counts its SNAT endpoints, and is identical; without comments
// (a device's recording) no SNAT IP can be found and the result says the
// views are identical endpoint for endpoint; one commented view lends its
// SNAT IPs to the other where their packets have the same endpoints.
func TestIdenticalViews(t *testing.T) {
	ref := view(t, vpn, "10.0.0.227", reference.Config{PortsPerInstance: 8})
	bare := make([]Packet, len(ref))
	for i, p := range ref {
		p.Comment, p.Via = "", netip.AddrPort{}
		bare[i] = p
	}
	one := addrs("203.0.113.1")
	other := view(t, vpn, "10.9.9.9,10.0.0.227", reference.Config{Frontends: addrs("192.0.2.1"), PortsPerInstance: 8})
	for _, tc := range []struct {
		name           string
		a, b           []Packet
		ipsA, ipsB     []netip.Addr
		identical      bool
		endpoints, ren int
	}{
		{"itself", ref, ref, one, one, true, 11, 0},
		{"itself, no comments", bare, bare, nil, nil, true, 0, 0},
		{"commented against bare", ref, bare, one, one, true, 11, 0},
		{"bare against commented", bare, ref, one, one, true, 11, 0},
		{"bare against another placement", bare, other, one, addrs("192.0.2.1"), false, 11, 11},
	} {
		r := Compare(tc.a, tc.b)
		if !r.Equivalent() || r.Identical != tc.identical || !slices.Equal(r.SNATIPsA, tc.ipsA) || !slices.Equal(r.SNATIPsB, tc.ipsB) ||
			len(r.Endpoints) != tc.endpoints || r.Renamed != tc.ren || r.Paired != len(ref) {
			t.Errorf("%s: equivalent %v, identical %v, SNAT IPs %v and %v, %d endpoints, %d renamed, %d paired; want true, %v, %v and %v, %d, %d, %d; first difference %v",
				tc.name, r.Equivalent(), r.Identical, r.SNATIPsA, r.SNATIPsB, len(r.Endpoints), r.Renamed, r.Paired,
				tc.identical, tc.ipsA, tc.ipsB, tc.endpoints, tc.ren, len(ref), first(r))
		}
	}
	// A view with one packet moved to another port is neither identical
	// nor equivalent, commented or not.
	moved := slices.Clone(bare)
	for i, p := range moved {
		if p.Src.Addr() == one[0] {
			moved[i].Src = netip.AddrPortFrom(one[0], 60000)
			break
		}
	}
	if r := Compare(bare, moved); r.Equivalent() || r.Identical {
		t.Errorf("a view against itself with one packet moved: equivalent %v, identical %v", r.Equivalent(), r.Identical)
	}
}

// TestReadRecording: a live device's recording (natcheck record, both
// links) is read as its outside link, each packet at the capture time of
// the input packet its comment names: linux-nft's recording of
// real-http-curl gives the input's 36 packets, at the input's times, with
// the frontend IP on the outside, none with an inside address.
func TestReadRecording(t *testing.T) {
	v, err := Read("../captures/device/real-http-curl.linux-nft.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	rd, err := capture.Open("../captures/real/real-http-curl.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var times []time.Time
	for {
		rec, err := rd.Next()
		if err != nil {
			break
		}
		times = append(times, rec.Time)
	}
	if len(v) != len(times) || len(v) != 36 {
		t.Fatalf("%d packets read, want the input's %d (36)", len(v), len(times))
	}
	front, inside := netip.MustParseAddr("203.0.113.1"), netip.MustParsePrefix("10.0.0.0/8")
	for i, p := range v {
		if !p.Time.Equal(times[i]) {
			t.Errorf("packet %d at %v, want the input's time %v", p.Number, p.Time, times[i])
		}
		if (p.Src.Addr() != front && p.Dst.Addr() != front) || inside.Contains(p.Src.Addr()) || inside.Contains(p.Dst.Addr()) {
			t.Errorf("packet %d %v > %v: want the outside link only", p.Number, p.Src, p.Dst)
		}
	}
}
