package reference

import (
	"fmt"
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

// BenchmarkEstablished measures packets of live flows, alternating
// directions, over 100,000 flows.
func BenchmarkEstablished(b *testing.B) {
	const flows = 100_000
	e, outs, ins := openFlows(b, benchConfig(0), flows)
	var emit []Packet
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		j := i % flows
		p := &outs[j]
		if i&1 == 1 {
			p = &ins[j]
		}
		p.Time = t0.Add(time.Duration(i) * 100) // 10 M packets per virtual second
		v, em, _ := e.Process(*p, emit[:0])
		emit = em
		if v.Action != Translated {
			b.Fatalf("packet %d: %v %v", i, v.Action, v.Reason)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pkts/s")
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

// BenchmarkMemoryPerFlow measures the heap an engine holds per live flow
// at 1,000,000 flows.
func BenchmarkMemoryPerFlow(b *testing.B) {
	const flows = 1_000_000
	var perFlow float64
	for range b.N {
		before := heapInUse()
		e, err := New(benchConfig(0))
		if err != nil {
			b.Fatal(err)
		}
		for i := range flows {
			if v, _, _ := e.Process(Packet{Time: t0, Tuple: benchFlow(i), Flags: SYN}, nil); v.Action != Translated {
				b.Fatalf("flow %d: %v %v", i, v.Action, v.Reason)
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
		t.Errorf("Process on an established flow: %v allocs/op, want 0", allocs)
	}
}
