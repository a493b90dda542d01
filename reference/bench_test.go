package reference

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// benchConfig is a pool of 50 instances (1,024 ports each) on one IP.
func benchConfig(idle time.Duration) Config {
	c := Config{Frontends: []netip.Addr{ip("203.0.113.1")}, IdleTimeout: idle}
	for i := range 50 {
		c.Backends = append(c.Backends, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i + 1)}))
	}
	return c
}

// benchFlow is flow i of a benchmark: instance i%50, a distinct server.
func benchFlow(i int) Tuple {
	return Tuple{Proto: TCP,
		Src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i%50 + 1)}), uint16(1024+i/50%60000)),
		Dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18 + byte(i>>24&1), byte(i >> 16), byte(i >> 8)}), uint16(i)|1)}
}

// openFlows creates n flows at t0 and returns the engine and the outbound
// and inbound packets of each.
func openFlows(tb testing.TB, cfg Config, n int) (*Engine, []Packet, []Packet) {
	tb.Helper()
	e, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	outs, ins := make([]Packet, n), make([]Packet, n)
	for i := range n {
		tu := benchFlow(i)
		v, _, err := e.Process(Packet{Time: t0, Dir: Outbound, Tuple: tu, Flags: SYN}, nil)
		if err != nil || v.Action != Translated {
			tb.Fatalf("flow %d: %v %v", i, v.Action, err)
		}
		outs[i] = Packet{Dir: Outbound, Tuple: tu, Flags: ACK}
		ins[i] = Packet{Dir: Inbound, Tuple: Tuple{Proto: TCP, Src: tu.Dst, Dst: v.Tuple.Src}, Flags: ACK}
	}
	return e, outs, ins
}

// established is the setup of one BenchmarkEstablished case: an engine
// with the flows open and the packets to send, in order (their times are
// set as they are sent).
type established struct {
	e    *Engine
	pkts []Packet
	sent int // packets sent so far, which sets the next packet's time
}

// openEstablished opens n flows and lays out their packets: in slab order
// (flow i%n, outbound on even packets and inbound on odd ones, so each
// flow sees one direction per pass: the best case, every flow-table read
// next to the last one), or a fixed-seed random permutation of every flow
// in both directions (the realistic worst case: each lookup a cache miss).
// The packets are laid out in the order they are sent, so the benchmark's
// own input streams as a capture's would.
func openEstablished(tb testing.TB, n int, random bool) *established {
	tb.Helper()
	e, outs, ins := openFlows(tb, benchConfig(0), n)
	order := make([]int, 2*n)
	if random {
		order = rand.New(rand.NewPCG(1, 2)).Perm(2 * n)
	} else {
		for i := range order {
			order[i] = i%n<<1 | i&1
		}
	}
	pkts := make([]Packet, 2*n)
	for i, o := range order {
		pkts[i] = outs[o>>1]
		if o&1 == 1 {
			pkts[i] = ins[o>>1]
		}
	}
	return &established{e: e, pkts: pkts}
}

// BenchmarkEstablished measures packets of live flows (TCP ACKs, no flow
// created or released). Each case names its input class:
//
//   - best-case/order=slab/flows=100k/dir=one: flows in the order they
//     were created, each seeing one direction per pass (flow index and
//     flow table read in sequence: the figure quoted before issue 8);
//   - order=slab/flows=1M/dir=one: the same over 1,000,000 flows;
//   - order=random/flows=100k/dir=both: every flow in both directions, in
//     a fixed-seed random order, as packets of many concurrent flows
//     arrive at a busy NAT;
//   - worst-case/order=random/flows=1M/dir=both: the same over 1,000,000
//     flows, whose index and table (about 77 MB) are far beyond the CPU's
//     caches: the realistic worst case.
//
// Packets are 100 ns apart in packet time (10 M packets per virtual
// second).
func BenchmarkEstablished(b *testing.B) {
	for _, c := range []struct {
		name   string
		flows  int
		random bool
		warm   int
	}{
		{"best-case/order=slab/flows=100k/dir=one", 100_000, false, 0},
		{"order=slab/flows=1M/dir=one", 1_000_000, false, 0},
		{"order=random/flows=100k/dir=both", 100_000, true, 0},
		{"worst-case/order=random/flows=1M/dir=both", 1_000_000, true, 0},
		{"order=random/flows=100k/dir=both/warm=16", 100_000, true, 16},
		{"worst-case/order=random/flows=1M/dir=both/warm=16", 1_000_000, true, 16},
	} {
		var st *established // set up once, kept over the runs of growing b.N
		b.Run(c.name, func(b *testing.B) {
			if st == nil {
				st = openEstablished(b, c.flows, c.random)
			}
			benchEstablished(b, st, c.warm)
		})
	}
}

// benchEstablished sends b.N packets of st; with warm > 0, each run of
// warm packets is first given to Engine.Warm, as a replay that batches does.
func benchEstablished(b *testing.B, st *established, warm int) {
	var emit []Packet
	n := len(st.pkts)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		k := st.sent + i
		if warm > 0 && i%warm == 0 {
			for j := k; j < k+warm; j++ {
				st.e.Warm(&st.pkts[j%n])
			}
		}
		p := &st.pkts[k%n]
		p.Time = t0.Add(time.Duration(k) * 100)
		v, em, _ := st.e.Process(*p, emit[:0])
		emit = em
		if v.Action != Translated {
			b.Fatalf("packet %d: %v %v", k, v.Action, v.Reason)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pkts/s")
	st.sent += b.N
}

// BenchmarkNewFlow measures a flow's whole life: its SYN creates it, a RST
// ends it, and the timer releases it 15 s of packet time later. A new flow
// starts every 100 µs, so about 150,000 flows are live.
func BenchmarkNewFlow(b *testing.B) {
	e, err := New(benchConfig(0))
	if err != nil {
		b.Fatal(err)
	}
	var emit []Packet
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		tu := benchFlow(i)
		at := t0.Add(time.Duration(i) * 100 * time.Microsecond)
		v, em, _ := e.Process(Packet{Time: at, Tuple: tu, Flags: SYN}, emit[:0])
		if v.Action != Translated {
			b.Fatalf("flow %d: %v %v", i, v.Action, v.Reason)
		}
		_, emit, _ = e.Process(Packet{Time: at, Tuple: tu, Flags: RST}, em[:0])
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "flows/s")
	b.ReportMetric(float64(e.Flows()), "live-flows")
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// memFlow is flow i of a BenchmarkMemoryPerFlow case: its first packet
// and the further outbound packets it sends (a UDP mapping's other peer
// ports).
type memFlow func(i int) (first Packet, more []uint16)

// udpFlow is UDP flow i: instance i%50 to server 198.18.0.0/15 + i%131072,
// port 1000. No instance has two mappings toward one server (131072 is 22
// mod 50, and 22k mod 50 differs for k = 0…7), so no destination is
// contended and the figure is the flow's own cost.
func udpFlow(i int) Tuple {
	tu := benchFlow(i)
	j := i % 131072
	tu.Proto = UDP
	tu.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18 + byte(j>>16), byte(j >> 8), byte(j)}), 1000)
	return tu
}

// BenchmarkMemoryPerFlow measures the heap an engine holds per live flow
// at 1,000,000 flows, for every kind of flow: a TCP connection, a UDP
// mapping that has sent to one peer port, and one that has sent to 4 ports
// of its destination (B7: one mapping per destination IP, which must
// remember every port it sent to for B8).
func BenchmarkMemoryPerFlow(b *testing.B) {
	const flows = 1_000_000
	udpPorts := func(n int) memFlow {
		more := make([]uint16, n-1)
		for k := range more {
			more[k] = uint16(1001 + k)
		}
		return func(i int) (Packet, []uint16) { return Packet{Time: t0, Tuple: udpFlow(i)}, more }
	}
	for _, c := range []struct {
		name string
		flow memFlow
	}{
		{"kind=tcp", func(i int) (Packet, []uint16) { return Packet{Time: t0, Tuple: benchFlow(i), Flags: SYN}, nil }},
		{"kind=udp/peer-ports=1", udpPorts(1)},
		{"kind=udp/peer-ports=4", udpPorts(4)},
	} {
		b.Run(c.name, func(b *testing.B) {
			var perFlow float64
			for range b.N {
				before := heapInUse()
				e, err := New(benchConfig(0))
				if err != nil {
					b.Fatal(err)
				}
				for i := range flows {
					p, more := c.flow(i)
					if v, _, _ := e.Process(p, nil); v.Action != Translated || !v.NewFlow {
						b.Fatalf("flow %d: %v %v", i, v.Action, v.Reason)
					}
					for _, port := range more {
						p.Tuple.Dst = netip.AddrPortFrom(p.Tuple.Dst.Addr(), port)
						if v, _, _ := e.Process(p, nil); v.Action != Translated || v.NewFlow {
							b.Fatalf("flow %d to port %d: %v %v new %v", i, port, v.Action, v.Reason, v.NewFlow)
						}
					}
				}
				after := heapInUse()
				if e.Flows() != flows {
					b.Fatalf("%d live flows, want %d", e.Flows(), flows)
				}
				perFlow = float64(after-before) / flows
				runtime.KeepAlive(e)
			}
			b.ReportMetric(perFlow, "B/flow")
		})
	}
}

// BenchmarkIdle120Min simulates 100,000 flows opened in the first minute,
// each sending a packet every 10 minutes for an hour, then idling out under
// a 120-minute idle timeout; time advances in 1 s steps throughout. The
// metric is wall seconds per simulation.
func BenchmarkIdle120Min(b *testing.B) {
	const flows = 100_000
	for range b.N {
		e, outs, _ := openFlows(b, benchConfig(120*time.Minute), flows)
		start := time.Now()
		var emit []Packet
		var err error
		for s := 1; s <= 3*3600+60; s++ {
			at := t0.Add(time.Duration(s) * time.Second)
			if s <= 3600 && s%600 == 0 {
				for j := range outs {
					outs[j].Time = at
					if _, emit, err = e.Process(outs[j], emit[:0]); err != nil {
						b.Fatal(err)
					}
				}
			}
			if emit, err = e.Advance(at, emit[:0]); err != nil {
				b.Fatal(err)
			}
			if s == 3600+7200-1 && e.Flows() != flows {
				b.Fatalf("at 179:59 %d flows live, want %d", e.Flows(), flows)
			}
		}
		if e.Flows() != 0 {
			b.Fatalf("%d flows live after the idle timeout", e.Flows())
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/sim")
	}
}

// TestEstablishedPathDoesNotAllocate: packets of established flows, TCP
// both ways and UDP mappings sending to and answered from 4 peer ports,
// allocate nothing.
func TestEstablishedPathDoesNotAllocate(t *testing.T) {
	e, outs, ins := openFlows(t, benchConfig(0), 1000)
	emit := make([]Packet, 0, 4)
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		p := outs[i%1000]
		if i&1 == 1 {
			p = ins[i%1000]
		}
		p.Time = t0.Add(time.Duration(i) * time.Microsecond)
		v, em, _ := e.Process(p, emit[:0])
		emit = em
		if v.Action != Translated {
			panic(fmt.Sprintf("packet %d: %v", i, v.Action))
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("Process on an established TCP flow: %v allocs/op, want 0", allocs)
	}

	// 1,000 UDP mappings, each having sent to ports 1000-1003.
	snat := make([]netip.AddrPort, 1000)
	at := t0.Add(time.Second)
	for j := range snat {
		tu := udpFlow(j)
		for port := range uint16(4) {
			tu.Dst = netip.AddrPortFrom(tu.Dst.Addr(), 1000+port)
			v, _, err := e.Process(Packet{Time: at, Tuple: tu}, nil)
			if err != nil || v.Action != Translated {
				t.Fatalf("UDP flow %d port %d: %v %v", j, 1000+port, v.Action, err)
			}
			snat[j] = v.Tuple.Src
		}
	}
	i = 0
	allocs = testing.AllocsPerRun(10000, func() {
		j := i / 8 % 1000
		tu := udpFlow(j)
		tu.Dst = netip.AddrPortFrom(tu.Dst.Addr(), 1000+uint16(i%4))
		p := Packet{Time: at.Add(time.Duration(i) * time.Microsecond), Tuple: tu}
		if i&4 != 0 {
			p.Dir, p.Tuple = Inbound, Tuple{Proto: UDP, Src: tu.Dst, Dst: snat[j]}
		}
		v, em, _ := e.Process(p, emit[:0])
		emit = em
		if v.Action != Translated {
			panic(fmt.Sprintf("UDP packet %d: %v %v", i, v.Action, v.Reason))
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("Process on an established UDP mapping with 4 peer ports: %v allocs/op, want 0", allocs)
	}
}
