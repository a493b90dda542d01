package replay

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// TestSamplesMatchAFullRead checks the plot's samples, whose figures the
// worker updates at each event that changes an instance's ports in use (a
// mapping created, a flow released) rather than reading every instance at
// each sample, against an oracle that reads every instance: an engine of
// its own, fed the same packets, advanced to each sample's time and read
// in full there (a sample at T holds the packets up to T and the timers
// due by T). It fails when either kind is left out. The packets open TCP flows and UDP mappings, close TCP flows with FIN (B10)
// and RST (B11), let mappings idle out (B12) across gaps of minutes, and
// run instances out of ports (B9): ports in use go up and down between
// samples, on one worker and on each of two.
func TestSamplesMatchAFullRead(t *testing.T) {
	const instances = 24
	var backends []netip.Addr
	for i := range instances {
		backends = append(backends, netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}))
	}
	ec := reference.Config{Frontends: []netip.Addr{netip.MustParseAddr("203.0.113.1")}, Backends: backends, PortsPerInstance: 8}
	ps := sampleTestPackets(backends)
	for _, nw := range []int{1, 2} {
		for idx := range nw {
			w, err := newWorker(ec, idx, nw, instances, false, false, false)
			if err != nil {
				t.Fatal(err)
			}
			oracle, err := reference.New(ec)
			if err != nil {
				t.Fatal(err)
			}
			var mine []reference.Packet
			for _, p := range ps {
				if err := w.clock(p.Time); err != nil {
					t.Fatal(err)
				}
				if inst := int(p.Tuple.Src.Addr().As4()[3]) - 1; w.owns(inst) {
					if _, _, err := w.e.Process(p, nil); err != nil {
						t.Fatal(err)
					}
					mine = append(mine, p)
				}
			}
			if err := w.finish(ps[len(ps)-1].Time, false); err != nil {
				t.Fatal(err)
			}
			if len(w.samples) < 100 {
				t.Fatalf("workers %d/%d: %d samples, want at least 100", idx, nw, len(w.samples))
			}
			ups, downs, next := 0, 0, 0
			var last [2]int
			for k, s := range w.samples {
				for ; next < len(mine) && !mine[next].Time.After(s.Time); next++ {
					if _, _, err := oracle.Process(mine[next], nil); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := oracle.Advance(s.Time, nil); err != nil {
					t.Fatal(err)
				}
				var total [2]int
				for j, got := range s.InUse {
					tcp, udp := oracle.InUse(idx + j*nw)
					if want := [2]int32{int32(tcp), int32(udp)}; got != want {
						t.Fatalf("worker %d of %d, sample %d at %v: instance %d in use %v, a full read gives %v",
							idx, nw, k, s.Time.Sub(ps[0].Time), idx+j*nw, got, want)
					}
					total[0], total[1] = total[0]+tcp, total[1]+udp
				}
				for p := range total {
					if total[p] > last[p] {
						ups++
					} else if total[p] < last[p] {
						downs++
					}
				}
				last = total
			}
			if ups < 5 || downs < 5 {
				t.Fatalf("worker %d of %d: ports in use rose %d and fell %d times between samples: the packets test too little", idx, nw, ups, downs)
			}
		}
	}
}

// sampleTestPackets draws, in time order, outbound packets of the given
// backends: new TCP flows (SYN) and UDP mappings, packets of live ones,
// FINs and RSTs that end TCP flows, with gaps of milliseconds and, now
// and then, of minutes (idle timeouts, and a grid that coarsens first).
func sampleTestPackets(backends []netip.Addr) []reference.Packet {
	r := rand.New(rand.NewPCG(4, 11))
	type flow struct {
		tu   reference.Tuple
		live bool
	}
	var flows []flow
	var ps []reference.Packet
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for range 6000 {
		switch x := r.IntN(1000); {
		case x == 0:
			at = at.Add(time.Duration(3+r.IntN(5)) * time.Minute)
		case x < 20:
			at = at.Add(time.Duration(r.IntN(20)) * time.Second)
		default:
			at = at.Add(time.Duration(r.IntN(40)) * time.Millisecond)
		}
		p := reference.Packet{Time: at, Dir: reference.Outbound}
		switch x := r.IntN(10); {
		case x < 4 || len(flows) == 0:
			proto := reference.TCP
			if r.IntN(3) == 0 {
				proto = reference.UDP
			}
			src := netip.AddrPortFrom(backends[r.IntN(len(backends))], uint16(1024+r.IntN(60000)))
			dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + r.IntN(4))}), uint16(443+r.IntN(3)))
			p.Tuple = reference.Tuple{Proto: proto, Src: src, Dst: dst}
			if proto == reference.TCP {
				p.Flags = reference.SYN
			}
			flows = append(flows, flow{tu: p.Tuple, live: true})
		default:
			f := &flows[r.IntN(len(flows))]
			p.Tuple = f.tu
			if f.tu.Proto == reference.TCP {
				p.Flags = reference.ACK
				switch y := r.IntN(10); {
				case y == 0 && f.live:
					p.Flags |= reference.FIN
					f.live = false
				case y == 1 && f.live:
					p.Flags = reference.RST
					f.live = false
				}
			}
		}
		ps = append(ps, p)
	}
	return ps
}
