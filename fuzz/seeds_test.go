package fuzz

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/natcheck/natcheck/internal/snatmodel"
	"github.com/natcheck/natcheck/reference"
)

// enc builds a fuzz input in Decode's format, so that a seed reads as
// what it does.
type enc []byte

// Header bytes: the shape and its variant, the timers and rules, the
// shape's parameter (see shapeOf).
func scenario(shape, variant int, timers, param byte) enc {
	return enc{byte(shape + numShapes*variant), timers, param}
}

// timers: idle timeout index (4, 5, 120, 4 minutes), tcpResetOnIdle.
// Strict mode stays off (bit 3 set).
func timers(idle int, reset bool) byte {
	b := byte(idle&3) | 8
	if reset {
		b |= 4
	}
	return b
}

// Flag indices of flagTable.
const (
	fSYN = iota
	_
	fACK
	fSYNACK
	fPSHACK
	fFINACK
	fRST
	fRSTACK
)

// tcp is one outbound TCP packet from instance selector x, source port
// 2000+port (port < 256), to servers[server].
func (e enc) tcp(x byte, port, server int, flags byte) enc {
	return append(e, 0, x, byte(server&7)|1<<3|byte(port&7)<<5, flags|byte(port>>3)<<3)
}

// udp is one outbound UDP packet.
func (e enc) udp(x byte, port, server int) enc {
	return append(e, 0, x, byte(server&7)|byte(port&7)<<5, byte(port>>3)<<3)
}

// burst opens n new flows (1 to 256) from x to servers[server], from
// source port 2000+16*base on.
func (e enc) burst(x byte, n, server, base int, udp bool) enc {
	z := byte(server&7) | byte(base&15)<<4
	if udp {
		z |= 8
	}
	return append(e, 7, x, byte(n-1), z)
}

// reply answers the back-th last outbound packet (0: the last), from the
// next source port when other.
func (e enc) reply(back int, flags byte, other bool) enc {
	y := flags
	if other {
		y |= 8
	}
	return append(e, 9, byte(back), y, 0)
}

// wait steps time by smallSteps[step] + ms milliseconds + s seconds
// (s < 16).
func (e enc) wait(step, ms, s int) enc { return append(e, 12, byte(step), byte(ms), byte(s)) }

// advance lets hugeSteps[step] pass (1 ns less when early), with no
// packet.
func (e enc) advance(step int, early bool) enc {
	y := byte(0)
	if early {
		y = 1
	}
	return append(e, 14, byte(step), y, 0)
}

// resize changes the pool to the size the shape picks from x.
func (e enc) resize(x byte) enc { return append(e, 15, x, 0, 0) }

// Steps of smallSteps and hugeSteps.
const (
	s1ms  = 2
	s1s   = 4
	s15s  = 7
	h4min = 1
	h240s = 2
	h2h   = 4
)

// seeds are hand-made scenarios, one per thing the fuzzers must reach;
// FuzzEngineInvariants and FuzzEngineVsModel start from them, and the
// tests run them.
var seeds = [][]byte{
	// Exhaustion: 9 flows to one server on 8 ports, replies, a new
	// destination, time.
	scenario(shapeSmall, 0, timers(0, false), 0).burst(0, 9, 0, 0, false).reply(0, fSYNACK, false).reply(3, fACK, false).
		tcp(0, 100, 1, fSYN).advance(h4min, true).advance(h4min, false),
	// FIN and RST closes on their boundaries (B10, B11, B13).
	scenario(shapeSmall, 0, timers(0, false), 4).tcp(0, 0, 0, fSYN).reply(0, fSYNACK, false).tcp(0, 0, 0, fFINACK).
		tcp(0, 1, 0, fSYN).wait(s1s, 0, 0).tcp(0, 1, 0, fRST).wait(s15s, 0, 0).tcp(0, 1, 0, fACK).reply(0, fRSTACK, false).
		advance(h240s, true).tcp(0, 0, 0, fACK).advance(h240s, false).tcp(0, 0, 0, fACK),
	// UDP: one mapping for every port of a destination IP (B7), replies
	// from ports it sent to and from others (B8), idle expiry.
	scenario(shapeSmall, 1, timers(1, false), 0).udp(0, 0, 0).udp(0, 0, 1).udp(0, 0, 5).udp(0, 2, 0).udp(0, 1, 0).
		reply(0, fACK, false).reply(2, fACK, true).reply(4, fACK, false).advance(h4min, false).reply(0, fACK, false),
	// tcpResetOnIdle: an established flow and one that only sent, their
	// late packets (B14, C6, C7).
	scenario(shapeSmall, 0, timers(0, true), 0).tcp(0, 0, 0, fSYN).reply(0, fSYNACK, false).tcp(0, 0, 0, fACK).
		tcp(0, 1, 2, fSYN).advance(h4min, false).tcp(0, 0, 0, fACK).reply(2, fACK, false).tcp(0, 1, 2, fACK).
		advance(h4min, false).tcp(0, 0, 0, fACK),
	// A pool change with live flows: three instances, down to one (their
	// flows reclaimed, late packets dropped, B16), up to four.
	scenario(shapeSmall, 0, timers(0, false), 10).burst(0, 3, 0, 0, false).burst(1, 3, 0, 1, false).burst(2, 3, 0, 2, true).
		resize(0).reply(1, fACK, false).tcp(1, 16, 0, fACK).resize(3).burst(3, 4, 0, 3, false),
	// More than 64 flows to one destination on a 64-port instance:
	// exhausted, one released, the next flow takes its port (B9).
	scenario(shapeWide, 0, timers(0, false), 0).burst(0, 65, 0, 0, false).tcp(0, 3, 0, fRST).wait(s15s, 0, 0).
		tcp(0, 200, 0, fSYN).reply(0, fSYNACK, false),
	// 65 flows on a 128-port instance, the 4th released: the next flow
	// takes port 1027 (C3).
	scenario(shapeWide, 0, timers(0, false), 4).burst(0, 65, 0, 0, false).tcp(0, 3, 0, fRST).wait(s15s, 0, 0).
		tcp(0, 200, 0, fSYN).tcp(0, 201, 0, fSYN),
	// A pool of 50 grows to 51 while instance 0 has a lone flow on its
	// second port to a server: new flows to it take other ports (B6).
	scenario(shapeEdge, 0, timers(0, false), 4).tcp(0, 0, 0, fSYN).tcp(0, 1, 0, fSYN).tcp(0, 0, 0, fRST).wait(s15s, 0, 1).
		resize(3).tcp(0, 10, 0, fSYN).tcp(0, 11, 0, fSYN).tcp(0, 12, 0, fSYN).resize(1).tcp(0, 13, 0, fSYN),
	// Hundreds of instances (201, 256 ports each), bursts past half the
	// ports, a pool change into a smaller tier (328: 128 each, flows
	// reclaimed), late replies, then into a larger one (73).
	scenario(shapeMany, 0, timers(0, false), 1).burst(0, 200, 0, 0, false).burst(3, 40, 0, 0, false).burst(2, 20, 2, 0, true).
		resize(255).reply(0, fACK, false).reply(5, fACK, false).burst(0, 200, 0, 4, false).resize(0).burst(0, 200, 1, 8, false),
	// Instance 1 spans two frontend IPs with 8 ports on the first: its
	// 9th flow to a server goes out from the second (C3), replies come
	// back (B8).
	scenario(shapeSpan, 0, timers(0, false), 0).burst(0, 20, 0, 0, false).reply(0, fSYNACK, false).reply(12, fSYNACK, false).
		tcp(0, 2, 0, fRST).wait(s15s, 0, 1).tcp(0, 100, 0, fSYN),
}

// TestSeedsReach: the seed scenarios reach the code the fuzzers must
// explore from: more than 64 flows to one destination from one instance
// (several words of a destination's bitmap), hundreds of instances, new
// flows on an instance's second frontend IP, pool changes with live flows
// and flows reclaimed by them; and each runs the same on the engine and
// the model.
func TestSeedsReach(t *testing.T) {
	perDest := map[string]int{}
	var maxPerDest, maxPool, secondIP, changes, reclaims int
	for i, s := range seeds {
		sc := Decode(s)
		tw, err := snatmodel.NewTwin(sc.Config, 0)
		if err != nil {
			t.Fatal(err)
		}
		first := map[int]netip.Addr{}
		for _, in := range tw.Engine.Plan().Instances {
			if len(in.Ranges) > 0 {
				first[in.Index] = in.Ranges[0].IP
			}
		}
		tw.Observe = func(ev reference.Event) {
			k := fmt.Sprint(i, ev.Instance, ev.Proto, ev.Remote)
			switch ev.Kind {
			case reference.MappingCreated, reference.MappingReused:
				perDest[k]++
				maxPerDest = max(maxPerDest, perDest[k])
				if a, ok := first[ev.Instance]; ok && a != ev.SNAT.Addr() {
					secondIP++
				}
			case reference.Released:
				perDest[k]--
				if ev.Release == reference.ReleaseReclaimed {
					reclaims++
				}
			}
		}
		maxPool = max(maxPool, len(sc.Config.Backends))
		if err := differ(sc, 0); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
		// differ built its own twin; run this one for the counts.
		for _, op := range sc.Ops {
			switch op.Kind {
			case OpResize:
				if tw.Engine.Flows() > 0 {
					changes++
				}
				_ = tw.SetPool(op.Time, sc.Backends[:op.Pool], 0)
			case OpAdvance:
				_, _ = tw.Advance(op.Time)
			default:
				_, _, _ = tw.Process(sc.Resolve(op, tw.Engine.Lookup))
			}
		}
	}
	t.Logf("seeds: up to %d flows to one destination, pools up to %d, %d new flows on a second IP, %d pool changes, %d flows reclaimed",
		maxPerDest, maxPool, secondIP, changes, reclaims)
	if maxPerDest <= 64 || maxPool < 200 || secondIP == 0 || changes < 3 || reclaims == 0 {
		t.Errorf("the seeds do not reach what the fuzzers must explore from")
	}
}
