package fuzz

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/natcheck/natcheck/internal/pcapgen"
	"github.com/natcheck/natcheck/internal/snatmodel"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay"
	"github.com/natcheck/natcheck/replay/frame"
)

func addSeeds(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
}

// failCapture writes a failing scenario as a capture and says how to
// replay it.
func failCapture(t *testing.T, sc Scenario, err error) {
	t.Helper()
	dir := os.Getenv("NATCHECK_FUZZ_OUT")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("fuzz-failure-%x.pcap", sc.Ops[0].Time.UnixNano()^int64(len(sc.Ops))))
	var buf bytes.Buffer
	note, werr := sc.WriteCapture(&buf)
	if werr == nil {
		werr = os.WriteFile(path, buf.Bytes(), 0o644)
	}
	if werr != nil {
		t.Fatalf("%v (and writing its capture failed: %v)", err, werr)
	}
	t.Fatalf("%v\nreproduce: natcheck replay %s %s\n%s", err, sc.Flags(), path, note)
}

func FuzzEngineInvariants(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := Decode(data)
		if len(sc.Ops) == 0 {
			return
		}
		if _, err := CheckInvariants(sc); err != nil {
			failCapture(t, sc, err)
		}
	})
}

// FuzzEngineVsModel runs a scenario through the engine and the model of
// internal/snatmodel side by side (snatmodel.Twin) and compares, after
// every operation, pool changes included: verdicts, packets sent, flow
// events, live flows, plans and configuration errors.
func FuzzEngineVsModel(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := Decode(data)
		if len(sc.Ops) == 0 {
			return
		}
		if err := differ(sc, 0); err != nil {
			failCapture(t, sc, err)
		}
	})
}

// FuzzTranslateRoundTrip: any outbound TCP or UDP packet, translated by the
// engine and rewritten in place, then its reply from the server to the
// SNAT endpoint, translated back and rewritten: the reply reaches the
// original inside endpoint, and every checksum is valid.
func FuzzTranslateRoundTrip(f *testing.F) {
	f.Add(uint32(0x0a000001), uint16(40000), uint32(0xc6336401), uint16(443), true, uint8(2), []byte("hello"))
	f.Add(uint32(0xac100005), uint16(53), uint32(0x08080808), uint16(53), false, uint8(0), []byte{})
	f.Add(uint32(0xc0a80101), uint16(0), uint32(0xcb007101), uint16(65535), true, uint8(0x11), make([]byte, 1400))
	f.Fuzz(func(t *testing.T, src uint32, sport uint16, dst uint32, dport uint16, tcp bool, flags uint8, payload []byte) {
		front := netip.MustParseAddr("203.0.113.1")
		in := netip.AddrPortFrom(addr(src), sport)
		srv := netip.AddrPortFrom(addr(dst), dport)
		if in.Addr() == srv.Addr() || in.Addr() == front || srv.Addr() == front || len(payload) > 1400 {
			return
		}
		proto := reference.UDP
		if tcp {
			proto = reference.TCP
		}
		fl := reference.TCPFlags(flags) &^ (reference.FIN | reference.RST) // keep the flow open for the reply
		e, err := reference.New(reference.Config{Frontends: []netip.Addr{front}, Backends: []netip.Addr{in.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		outb, err := pcapgen.Frame(buf, reference.Packet{Tuple: reference.Tuple{Proto: proto, Src: in, Dst: srv}, Flags: fl}, payload)
		if err != nil {
			return // not serializable (e.g. a length gopacket refuses)
		}
		var fr frame.Frame
		if err := frame.Decode(layers.LinkTypeEthernet, outb, &fr); err != nil {
			t.Fatalf("Decode(outbound): %v", err)
		}
		v, _, err := e.Process(fr.Packet(T0, reference.Outbound), nil)
		if err != nil || v.Action != reference.Translated {
			t.Fatalf("outbound %v: %v %v %v", fr.Tuple(), v.Action, v.Reason, err)
		}
		if err := frame.RewriteSource(outb, &fr, v.Tuple.Src); err != nil {
			t.Fatal(err)
		}
		checkSums(t, "outbound", outb)
		snat := v.Tuple.Src

		replyb, err := pcapgen.Frame(gopacket.NewSerializeBuffer(), reference.Packet{Tuple: reference.Tuple{Proto: proto, Src: srv, Dst: snat}, Flags: reference.ACK}, payload)
		if err != nil {
			t.Fatal(err)
		}
		if err := frame.Decode(layers.LinkTypeEthernet, replyb, &fr); err != nil {
			t.Fatalf("Decode(reply): %v", err)
		}
		v, _, err = e.Process(fr.Packet(T0, reference.Inbound), nil)
		if err != nil || v.Action != reference.Translated || v.Tuple.Dst != in {
			t.Fatalf("reply %v: %v to %v (%v), want translated to %v", fr.Tuple(), v.Action, v.Tuple.Dst, err, in)
		}
		if err := frame.RewriteDest(replyb, &fr, v.Tuple.Dst); err != nil {
			t.Fatal(err)
		}
		checkSums(t, "reply", replyb)
		var back frame.Frame
		if err := frame.Decode(layers.LinkTypeEthernet, replyb, &back); err != nil || back.Tuple().Dst != in || back.Tuple().Src != srv {
			t.Fatalf("reply after rewrite: %v %v, want %v -> %v", back.Tuple(), err, srv, in)
		}
	})
}

func addr(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}

// checkSums verifies the IPv4 header checksum and the TCP/UDP checksum of
// an Ethernet frame by full recomputation.
func checkSums(t *testing.T, what string, b []byte) {
	t.Helper()
	ip := b[14:]
	ihl := int(ip[0]&0xf) * 4
	if s := sum16(0, ip[:ihl]); s != 0xffff {
		t.Fatalf("%s: IPv4 header checksum does not verify (%04x)", what, s)
	}
	total := int(binary.BigEndian.Uint16(ip[2:]))
	l4 := ip[ihl:total]
	proto := ip[9]
	if proto == 17 && binary.BigEndian.Uint16(l4[6:]) == 0 {
		return // no UDP checksum
	}
	pseudo := sum16(0, ip[12:20])
	pseudo = sum16(uint32(pseudo)+uint32(proto)+uint32(len(l4)), nil)
	if s := sum16(uint32(pseudo), l4); s != 0xffff {
		t.Fatalf("%s: %d checksum does not verify (%04x)", what, proto, s)
	}
}

func sum16(s uint32, b []byte) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// FuzzReplayBytes replays arbitrary bytes as a capture file: the replay
// returns a report or an error naming the file, never panics, and reports
// no more packets than the input could hold.
func FuzzReplayBytes(f *testing.F) {
	for _, name := range []string{"ndpi__anyconnect-vpn.pcap", "zeek__openjdk-zeek.org-sll2.pcap", "pcapplusplus__many_interfaces-1.pcapng",
		"zeek__vlan-collisions-qinq.pcap", "zeek__redis-attr-null-loopback.pcap", "joincap__unexpected_eof_on_second_packet.pcap"} {
		b, err := os.ReadFile(filepath.Join("..", "captures", "public", name))
		if err != nil {
			f.Fatal(err)
		}
		if len(b) > 1024 { // short seeds keep each run, and each minimization, fast
			b = b[:1024]
		}
		f.Add(b)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "in.pcap")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		specs, _ := replay.ParseBackends("10.0.0.0/8,192.168.0.0/16,172.16.0.0/12")
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		res, err := replay.Run([]string{path}, replay.Config{Engine: reference.Config{Frontends: []netip.Addr{netip.MustParseAddr("203.0.113.1")}}, Backends: specs, Workers: 1})
		if res == nil {
			t.Fatalf("Run returned no result (err %v)", err)
		}
		runtime.ReadMemStats(&after)
		// Memory is bounded by the input: fixed tables and buffers, plus
		// what the packets themselves hold.
		if alloc, bound := after.TotalAlloc-before.TotalAlloc, uint64(32<<20+64*len(data)); alloc > bound {
			t.Fatalf("replay of %d bytes allocated %d bytes, over %d", len(data), alloc, bound)
		}
		if res.Counts.Packets > int64(len(data)/16+1) {
			t.Fatalf("%d packets from %d bytes", res.Counts.Packets, len(data))
		}
		if err != nil && !bytes.Contains([]byte(err.Error()), []byte("in.pcap")) && !bytes.Contains([]byte(err.Error()), []byte("no backend")) {
			t.Fatalf("error %q does not name the file", err)
		}
	})
}

// TestInvariantsCatchFaults is the fuzzers' negative control: the
// invariant checker, run on the model of internal/snatmodel with a fault
// that breaks a behaviour switched on, must report it on some scenario,
// and the differential against the engine must disagree there too. The
// engine and the faithful model pass every scenario, so what the checker
// reports is the fault.
func TestInvariantsCatchFaults(t *testing.T) {
	scs := mutantScenarios()
	for _, s := range seeds {
		scs = append(scs, Decode(s))
	}
	for i, sc := range scs {
		for _, sys := range []struct {
			name string
			open Opener
		}{{"engine", Engine}, {"model", mutantOf(0)}} {
			if _, err := CheckInvariantsOf(sc, sys.open); err != nil {
				t.Fatalf("scenario %d on the %s: %v", i, sys.name, err)
			}
		}
		if err := differ(sc, 0); err != nil {
			t.Fatalf("scenario %d: engine and model differ: %v", i, err)
		}
	}
	for _, f := range []snatmodel.Fault{
		snatmodel.TCPSameDestination, // B6
		snatmodel.BorrowPorts,        // B5
		snatmodel.FINRestart,         // B10
		snatmodel.RSTLengthensFIN,    // B11
		snatmodel.InboundNoRefresh,   // B12
		snatmodel.LateRelease,        // B13
		snatmodel.UDPFullTuple,       // B7
	} {
		caught, differs := false, false
		for _, sc := range scs {
			if _, err := CheckInvariantsOf(sc, mutantOf(f)); errors.Is(err, ErrInvariant) {
				caught = true
			}
			if differ(sc, f) != nil {
				differs = true
			}
		}
		if !caught {
			t.Errorf("fault %v: no scenario broke an invariant", f)
		}
		if !differs {
			t.Errorf("fault %v: the engine and the mutated model agree on every scenario", f)
		}
	}
}

// mutantOf opens the model with faults switched on.
func mutantOf(f snatmodel.Fault) Opener {
	return func(cfg reference.Config) (System, error) { return snatmodel.NewMutant(cfg, f) }
}

// differ runs sc on the engine and on the model with faults side by
// side, and returns the first difference (a *snatmodel.Mismatch), or nil.
func differ(sc Scenario, f snatmodel.Fault) error {
	tw, err := snatmodel.NewTwin(sc.Config, f)
	if err != nil {
		return err
	}
	for i, op := range sc.Ops {
		switch op.Kind {
		case OpResize:
			err = tw.SetPool(op.Time, sc.Backends[:op.Pool], 0)
		case OpAdvance:
			_, err = tw.Advance(op.Time)
		default:
			p := sc.Resolve(op, func(out reference.Tuple) (netip.AddrPort, bool) {
				a, ok, lerr := tw.Lookup(out)
				err = lerr
				return a, ok
			})
			if err == nil {
				_, _, err = tw.Process(p)
			}
		}
		if errors.Is(err, snatmodel.ErrMismatch) {
			return fmt.Errorf("op %d: %w", i, err)
		}
	}
	return nil
}

// mutantScenarios are short scenarios aimed at the faults above, built
// directly rather than decoded.
func mutantScenarios() []Scenario {
	at := func(d time.Duration) time.Time { return T0.Add(d) }
	out := func(d time.Duration, src, dst string, proto reference.Proto, fl reference.TCPFlags) Op {
		return Op{Kind: OpPacket, Time: at(d), Packet: reference.Packet{Time: at(d), Dir: reference.Outbound,
			Tuple: reference.Tuple{Proto: proto, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst)}, Flags: fl}}
	}
	in := func(d time.Duration, src, dst string, fl reference.TCPFlags) Op {
		return Op{Kind: OpPacket, Time: at(d), Packet: reference.Packet{Time: at(d), Dir: reference.Inbound,
			Tuple: reference.Tuple{Proto: reference.TCP, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst)}, Flags: fl}}
	}
	wait := func(d time.Duration) Op { return Op{Kind: OpAdvance, Time: at(d)} }
	backends := backendList(4)
	cfg := reference.Config{Frontends: frontends[:1], Backends: backends[:2], PortsPerInstance: 8}
	const srv = "198.51.100.1:443"
	var burst []Op
	for i := range 9 {
		burst = append(burst, out(0, fmt.Sprintf("10.0.0.1:%d", 1000+i), srv, reference.TCP, reference.SYN))
	}
	return []Scenario{
		{Config: cfg, Backends: backends, Ops: burst},
		{Config: cfg, Backends: backends, Ops: []Op{ // FIN, then later packets
			out(0, "10.0.0.1:1000", srv, reference.TCP, reference.SYN), out(time.Second, "10.0.0.1:1000", srv, reference.TCP, reference.FIN|reference.ACK),
			out(100*time.Second, "10.0.0.1:1000", srv, reference.TCP, reference.ACK), wait(242 * time.Second), wait(400 * time.Second)}},
		{Config: cfg, Backends: backends, Ops: []Op{ // FIN, then a late RST
			out(0, "10.0.0.1:1000", srv, reference.TCP, reference.SYN), out(time.Second, "10.0.0.1:1000", srv, reference.TCP, reference.FIN|reference.ACK),
			in(230*time.Second, srv, "203.0.113.1:1024", reference.RST), wait(242 * time.Second), wait(300 * time.Second)}},
		{Config: cfg, Backends: backends, Ops: []Op{ // inbound packets keep the flow alive
			out(0, "10.0.0.1:1000", srv, reference.TCP, reference.SYN), in(200*time.Second, srv, "203.0.113.1:1024", reference.SYN|reference.ACK),
			wait(241 * time.Second), wait(500 * time.Second)}},
		{Config: cfg, Backends: backends, Ops: []Op{ // a RST, then time lands exactly on its release
			out(0, "10.0.0.1:1000", srv, reference.TCP, reference.SYN), out(time.Second, "10.0.0.1:1000", srv, reference.TCP, reference.RST),
			wait(16 * time.Second), wait(17 * time.Second)}},
		{Config: cfg, Backends: backends, Ops: []Op{ // UDP to two ports of one server
			out(0, "10.0.0.1:5000", "198.51.100.1:53", reference.UDP, 0), out(0, "10.0.0.1:5000", "198.51.100.1:80", reference.UDP, 0)}},
	}
}

// TestScenarioCaptureReplays: a scenario written as a capture and replayed
// by natcheck's replay (with the configuration Flags names) gets the same
// verdicts as the scenario run on the engine directly, so a failing fuzz
// input can be studied with natcheck replay.
func TestScenarioCaptureReplays(t *testing.T) {
	var scs []Scenario
	for _, s := range seeds {
		scs = append(scs, Decode(s))
	}
	scs = append(scs, mutantScenarios()...)
	var compared, translated, dropped int64
	defer func() {
		if compared < 5 || translated == 0 || dropped == 0 {
			t.Errorf("compared %d scenarios (%d translated, %d dropped): too few to mean anything", compared, translated, dropped)
		}
	}()
	for i, sc := range scs {
		var want replay.Counts
		e, err := reference.New(sc.Config)
		if err != nil {
			t.Fatal(err)
		}
		resized := false
		for _, op := range sc.Ops {
			if op.Kind == OpResize {
				resized = true
				break
			}
			if op.Kind == OpAdvance {
				continue
			}
			v, _, err := e.Process(sc.Resolve(op, e.Lookup), nil)
			if err != nil {
				t.Fatal(err)
			}
			switch v.Action {
			case reference.Translated:
				want.Translated++
			case reference.Reset:
				want.Reset++
			default:
				want.Dropped++
			}
		}
		if resized { // a pool change cannot be expressed in a capture
			continue
		}
		path := filepath.Join(t.TempDir(), "scenario.pcap")
		var buf bytes.Buffer
		if _, err := sc.WriteCapture(&buf); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		var specs []netip.Prefix
		for _, b := range sc.Config.Backends {
			specs = append(specs, netip.PrefixFrom(b, 32))
		}
		cfg := sc.Config
		cfg.Backends = nil
		res, err := replay.Run([]string{path}, replay.Config{Engine: cfg, Backends: specs})
		if err != nil {
			t.Fatalf("scenario %d: replay: %v", i, err)
		}
		got := res.Counts
		compared, translated, dropped = compared+1, translated+want.Translated, dropped+want.Dropped
		if got.Translated != want.Translated || got.Dropped != want.Dropped || got.Reset != want.Reset || got.NotThroughNAT != 0 {
			t.Errorf("scenario %d (%s): replay %d translated, %d dropped, %d reset (%d not through the NAT); engine %d, %d, %d",
				i, sc.Flags(), got.Translated, got.Dropped, got.Reset, got.NotThroughNAT, want.Translated, want.Dropped, want.Reset)
		}
	}
}
