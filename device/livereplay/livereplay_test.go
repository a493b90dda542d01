package livereplay_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

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
	if res.Mappings == 0 || res.Confirmed != res.Mappings {
		t.Errorf("mappings: %d learnt, %d confirmed by conntrack events (%d different, %d unseen); want all confirmed", res.Mappings, res.Confirmed, res.Different, res.Unseen)
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
