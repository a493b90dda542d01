package livereplay_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natcheck/natcheck/device/external"
	"github.com/natcheck/natcheck/device/external/standin"
	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/device/linuxnft"
	"github.com/natcheck/natcheck/device/livereplay"
	"github.com/natcheck/natcheck/device/sandbox/sandboxtest"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay"
	"github.com/natcheck/natcheck/replay/capture"
)

func TestMain(m *testing.M) { sandboxtest.Main(m) }

// TestReplayPublicCapture replays a real capture (Cisco AnyConnect, one
// host) through linux-nft at 10× speed with 8 ports per instance: every
// mapping learnt without markers is the one conntrack reports, every flow
// does what the linux profile's engine says (the 8 UDP flows refused for
// lack of ports included, from the same packet), and the outputs hold
// every replayed packet.
func TestReplayPublicCapture(t *testing.T) {
	sandboxtest.Require(t, linuxnft.Preflight)
	ct, err := linuxnft.DeviceConntrack()
	if err != nil {
		t.Fatal(err)
	}
	ct.StreamAfter *= 10 // the kernel's 2 s is wall clock
	out := filepath.Join(t.TempDir(), "both.pcapng")
	var ev bytes.Buffer
	cfg := livereplay.Config{Engine: reference.Config{Profile: reference.Linux(ct), Frontends: []netip.Addr{netip.MustParseAddr("203.0.113.1")},
		Backends: []netip.Addr{netip.MustParseAddr("10.0.0.227")}, PortsPerInstance: 8}, Speed: 10, Output: out, Events: &ev}
	res, err := livereplay.Run(context.Background(), []string{"../../captures/public/ndpi__anyconnect-vpn.pcap"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := livereplay.WriteText(&text, res, replay.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Log(text.String())
	n := res.Counts
	if n.Outbound != 225 || n.Replies != 203 || n.Translated+n.Dropped != n.Outbound+n.Replies {
		t.Errorf("counts %+v: want 225 outbound, 203 replies, each translated or dropped", n)
	}
	if res.Mappings != 27 || res.Confirmed != res.Mappings {
		t.Errorf("mappings: %d learnt, %d confirmed by conntrack events (%d different, %d unseen); want 27, all confirmed", res.Mappings, res.Confirmed, res.Different, res.Unseen)
	}
	if res.Differ != 0 || res.Agree == 0 {
		t.Errorf("flows: %d as the profile says, %d otherwise, %d not judged; want none otherwise", res.Agree, res.Differ, res.Unjudged)
	}
	var udp *replay.InstanceReport
	for i := range res.Instances {
		if res.Instances[i].Proto == "udp" {
			udp = &res.Instances[i]
		}
	}
	if udp == nil || udp.ExhaustionDrops != 8 || udp.FirstExhaustion == nil || udp.FirstExhaustion.Packet != 348 {
		t.Errorf("UDP row %+v: want 8 new flows refused, first at packet 348 (as the engine says)", udp)
	}
	// The plot: ports in use over time, from the device's conntrack events.
	if len(res.Samples) == 0 {
		t.Errorf("no samples of ports in use for the plot")
	}
	png := filepath.Join(t.TempDir(), "usage.png")
	if err := replay.WritePlot(png, res.Result); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("plot %s: %v, %d bytes, want a PNG", png, err, len(b))
	}
	if lines := strings.Count(ev.String(), "\n"); lines != int(n.Outbound+n.Replies) {
		t.Errorf("events: %d lines, want one per replayed packet (%d)", lines, n.Outbound+n.Replies)
	}
	rd, err := capture.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	per := [2]int{}
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		per[rec.Interface]++
	}
	// Every packet put on a link, and every one that came out.
	if want := int(res.Injected + n.Translated); per[0]+per[1] != want || per[0] == 0 || per[1] == 0 {
		t.Errorf("-w: %v frames on the inside and outside, want %d in all, on both", per, want)
	}
}

// TestHoldBackCollidingKey: a packet whose key (protocol, server, payload
// hash, IPv4 ID) is that of one still in flight is held back until that
// one is matched or judged dropped. Eight UDP flows take the eight ports
// of the instance toward one DNS server; a ninth flow's packet (refused
// by the device, L4) and then a packet of the first flow, both with the
// same payload and IP ID, leave 0.1 ms apart. Sent at once, the second's
// translation would be taken for the first's (the ninth flow "forwarded"
// with the first flow's port, the first flow's packet "dropped"); held
// back, each flow is what the linux profile says and every mapping is the
// one conntrack reports. On the built-in device and on a third-party one
// (the same Linux NAT met only through two links).
func TestHoldBackCollidingKey(t *testing.T) {
	sandboxtest.Require(t, linuxnft.Preflight)
	ct, err := linuxnft.DeviceConntrack()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "collide.pcap")
	srv := netip.MustParseAddrPort("198.51.100.1:53")
	var frames []frameAt
	put := func(at time.Duration, port uint16, id uint16, payload string) {
		seg := link.Segment{Tuple: reference.Tuple{Proto: reference.UDP, Src: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), port), Dst: srv}, ID: id, Payload: []byte(payload)}
		frames = append(frames, frameAt{at: at, seg: seg})
	}
	for i := range 8 {
		put(time.Duration(i)*time.Millisecond, uint16(1001+i), uint16(1+i), "query")
	}
	put(10*time.Millisecond, 1009, 77, "same")
	put(10*time.Millisecond+100*time.Microsecond, 1001, 77, "same")
	writeCapture(t, path, testMACs[0], testMACs[1], frames)
	engine := reference.Config{Profile: reference.Linux(ct), Frontends: []netip.Addr{netip.MustParseAddr("203.0.113.1")},
		Backends: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, PortsPerInstance: 8}
	for _, tc := range []struct {
		name      string
		device    func(t *testing.T) *external.Device
		confirmed int // mappings conntrack confirms
	}{
		{"linux-nft", func(*testing.T) *external.Device { return nil }, 8},
		{"third-party", func(t *testing.T) *external.Device { return thirdParty(t, engine, 1) }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := livereplay.Run(context.Background(), []string{path}, livereplay.Config{Engine: engine, Speed: 1, Device: tc.device(t)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Differ != 0 || res.Agree != 9 {
				t.Errorf("flows: %d as the profile says, %d otherwise, %d not judged; want 9 and none otherwise", res.Agree, res.Differ, res.Unjudged)
			}
			if res.Mappings != 8 || res.Confirmed != tc.confirmed {
				t.Errorf("mappings: %d learnt, %d confirmed by conntrack (%d different, %d unseen); want 8 and %d", res.Mappings, res.Confirmed, res.Different, res.Unseen, tc.confirmed)
			}
			if n := res.Counts; n.Translated != 9 || n.Dropped != 1 {
				t.Errorf("counts %+v: want 9 translated, 1 dropped (the ninth flow's)", n)
			}
		})
	}
}

// thirdParty is a Linux NAT that natcheck meets only through two links: a
// routed namespace (10.0.0.254 inside, 203.0.113.1 outside, default route
// via 203.0.113.254, neighbours by ARP) configured as linux-nft configures
// its own for engine at time scale k, attached as a third-party device.
// What the NAT learnt of its neighbours while natcheck attached is then
// forgotten: during a replay it asks again, on both links.
func thirdParty(t *testing.T, engine reference.Config, k int) *external.Device {
	t.Helper()
	topo := standin.New(t, engine, k)
	stated := engine
	stated.Profile = reference.Profile{}
	dev, err := external.Attach(topo.In, topo.Out, external.Options{Stated: stated, Gateway: standin.Gateway, Scale: k})
	if err != nil {
		t.Fatal(err)
	}
	standin.ForgetNeighbours(t, topo)
	return dev
}

// TestReplayThroughThirdParty replays the AnyConnect capture, as
// TestReplayPublicCapture does, through a Linux NAT that natcheck meets
// only through two links (a routed namespace configured as linux-nft
// configures its own, neighbours found by ARP) with the generic device:
// its link-layer addresses found by ARP, what it keeps calibrated, its
// ARP requests answered on both links during the replay (its neighbours
// are flushed after natcheck attached), every mapping
// learnt with no marker. Every flow does what the linux profile says, as
// on the built-in device; no mapping is claimed as checked against
// conntrack (a third-party device offers none).
func TestReplayThroughThirdParty(t *testing.T) {
	sandboxtest.Require(t, linuxnft.Preflight)
	ct, err := linuxnft.DeviceConntrack()
	if err != nil {
		t.Fatal(err)
	}
	ct.StreamAfter *= 10 // the kernel's 2 s is wall clock
	engine := reference.Config{Profile: reference.Linux(ct), Frontends: []netip.Addr{netip.MustParseAddr("203.0.113.1")},
		Backends: []netip.Addr{netip.MustParseAddr("10.0.0.227")}, PortsPerInstance: 8}
	dev := thirdParty(t, engine, 10)
	out := filepath.Join(t.TempDir(), "both.pcapng")
	res, err := livereplay.Run(context.Background(), []string{"../../captures/public/ndpi__anyconnect-vpn.pcap"}, livereplay.Config{Engine: engine, Speed: 10, Output: out, Device: dev})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := livereplay.WriteText(&text, res, replay.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Log(text.String())
	n := res.Counts
	if n.Outbound != 225 || n.Replies != 203 || n.Translated+n.Dropped != n.Outbound+n.Replies || n.Translated == 0 {
		t.Errorf("counts %+v: want 225 outbound, 203 replies, each translated or dropped", n)
	}
	if res.Differ != 0 || res.Agree == 0 {
		t.Errorf("flows: %d as the profile says, %d otherwise, %d not judged; want none otherwise", res.Agree, res.Differ, res.Unjudged)
	}
	if res.Device != livereplay.ExternalName || res.Conntrack || res.Mappings != 27 || res.Confirmed != 0 {
		t.Errorf("device %q, conntrack %v, %d mappings (%d confirmed): want %q, no conntrack, the built-in device's 27 mappings learnt, none claimed confirmed", res.Device, res.Conntrack, res.Mappings, res.Confirmed, livereplay.ExternalName)
	}
	if !strings.Contains(text.String(), "not checked against the device's own records") {
		t.Errorf("the report does not say the mappings were not checked against the device")
	}
}

// TestIdleGapShortened: with every conntrack timer of the device and the
// profile at 10 s, a 99.99 s idle gap in the capture is replayed as 11 s
// (longer than every timer by a second), and the report says so. Across
// it the UDP flow expires on both: a reply sent after the gap to the
// flow's old public endpoint is dropped by the device as the profile says
// (a gap shortened below the timers would have kept the flow alive), and
// the flow's next packet opens it again, on the port the device picks
// (L2: random in the range), which the reply after it is sent to.
func TestIdleGapShortened(t *testing.T) {
	sandboxtest.Require(t, linuxnft.Preflight)
	ct, err := linuxnft.DeviceConntrack()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*time.Duration{&ct.SynSent, &ct.SynRecv, &ct.Established, &ct.FinWait, &ct.CloseWait, &ct.LastAck, &ct.TimeWait, &ct.Close, &ct.Unacknowledged, &ct.UDP, &ct.UDPStream, &ct.ICMP} {
		*d = 10 * time.Second
	}
	ct.StreamAfter *= 10
	path := filepath.Join(t.TempDir(), "gap.pcap")
	out := reference.Tuple{Proto: reference.UDP, Src: netip.MustParseAddrPort("10.0.0.1:5000"), Dst: netip.MustParseAddrPort("198.51.100.1:53")}
	var frames []frameAt
	for i, p := range []struct {
		at time.Duration
		t  reference.Tuple
	}{{0, out}, {10 * time.Millisecond, out.Reverse()}, {100 * time.Second, out.Reverse()}, {100*time.Second + 10*time.Millisecond, out}, {100*time.Second + 20*time.Millisecond, out.Reverse()}} {
		frames = append(frames, frameAt{at: p.at, seg: link.Segment{Tuple: p.t, ID: uint16(i + 1), Payload: []byte{byte(i)}}})
	}
	writeCapture(t, path, testMACs[0], testMACs[1], frames)
	engine := reference.Config{Profile: reference.Linux(ct), Frontends: []netip.Addr{netip.MustParseAddr("203.0.113.1")},
		Backends: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, PortsPerInstance: 8}
	var ev bytes.Buffer
	res, err := livereplay.Run(context.Background(), []string{path}, livereplay.Config{Engine: engine, Speed: 10, Events: &ev})
	if err != nil {
		t.Fatal(err)
	}
	want := []livereplay.Gap{{At: captureT0.Add(10 * time.Millisecond), Length: 100*time.Second - 10*time.Millisecond, To: 11 * time.Second}}
	if len(res.Shortened) != 1 || res.Shortened[0] != want[0] {
		t.Errorf("shortened gaps %+v, want %+v", res.Shortened, want)
	}
	if res.Differ != 0 {
		t.Errorf("flows: %d as the profile says, %d otherwise, %d not judged; want none otherwise", res.Agree, res.Differ, res.Unjudged)
	}
	if n := res.Counts; n.Translated != 4 || n.Dropped != 1 {
		t.Errorf("counts %+v: want 4 translated, the reply after the gap dropped", n)
	}
	var text bytes.Buffer
	if err := livereplay.WriteText(&text, res, replay.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "idle gap shortened: 1m39.99s") || t.Failed() {
		t.Errorf("report:\n%s\nevents:\n%s", text.String(), ev.String())
	}
}
