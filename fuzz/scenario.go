package fuzz

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/natcheck/natcheck/internal/pcapgen"
	"github.com/natcheck/natcheck/reference"
)

// OpKind is what one operation of a scenario does.
type OpKind uint8

// Operation kinds.
const (
	// OpPacket sends Op.Packet through the NAT.
	OpPacket OpKind = iota
	// OpAdvance lets time pass to Op.Time with no packet.
	OpAdvance
	// OpResize changes the pool to Op.Pool instances (B16).
	OpResize
)

// Op is one operation at Time.
type Op struct {
	Kind   OpKind
	Time   time.Time
	Packet reference.Packet
	Pool   int
}

// Scenario is a configuration and the operations to run on it.
type Scenario struct {
	Config reference.Config
	// Backends is every instance address a resize may bring in; Config
	// starts with a prefix of it.
	Backends []netip.Addr
	Ops      []Op
}

// T0 is the time of a scenario's first operation.
var T0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	frontends = []netip.Addr{netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")}
	backends  = []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"),
		netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.4")}
	// servers: two ports on one IP, so TCP (per IP:port) and UDP (per IP)
	// reuse differ, and three more IPs.
	servers = []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:443"), netip.MustParseAddrPort("198.51.100.1:80"),
		netip.MustParseAddrPort("198.51.100.2:443"), netip.MustParseAddrPort("198.51.100.3:53"),
		netip.MustParseAddrPort("198.51.100.4:443"), netip.MustParseAddrPort("198.51.100.1:53")}
	flagTable = []reference.TCPFlags{reference.SYN, reference.SYN, reference.ACK, reference.SYN | reference.ACK,
		reference.PSH | reference.ACK, reference.FIN | reference.ACK, reference.RST, reference.RST | reference.ACK}
	smallSteps = []time.Duration{0, time.Nanosecond, time.Millisecond, 100 * time.Millisecond, time.Second, 5 * time.Second, 14 * time.Second, 15 * time.Second}
	hugeSteps  = []time.Duration{time.Minute, 4 * time.Minute, 240 * time.Second, 5 * time.Minute, 2 * time.Hour, 30 * 24 * time.Hour}
)

// Decode turns fuzz bytes into a scenario. Every input decodes: the first
// three bytes choose the configuration, then every 4 bytes are one
// operation. Values are kept small so that flows collide.
func Decode(data []byte) Scenario {
	b := func(i int) byte {
		if i < len(data) {
			return data[i]
		}
		return 0
	}
	pool := 1 + int(b(2))%3
	cfg := reference.Config{
		Frontends:        frontends[:1+int(b(0))%2],
		Backends:         append([]netip.Addr(nil), backends[:pool]...),
		PortsPerInstance: []int{8, 16, 0, 8}[int(b(0)>>1)%4],
		IdleTimeout:      []time.Duration{4 * time.Minute, 5 * time.Minute, 120 * time.Minute, 4 * time.Minute}[int(b(1))%4],
		TCPResetOnIdle:   b(1)>>2&1 == 1,
		Strict:           b(1)>>3&7 == 0,
		Protocols:        []reference.Protocols{reference.AllProtocols, reference.AllProtocols, reference.AllProtocols, reference.TCPOnly}[int(b(1)>>6)],
	}
	sc := Scenario{Config: cfg, Backends: backends}
	now := T0
	ports := 3 * 16
	for i := 3; i < len(data); i += 4 {
		k, x, y, z := b(i)%16, b(i+1), b(i+2), b(i+3)
		switch {
		case k < 8: // outbound
			proto := reference.TCP
			if y>>3&3 == 0 {
				proto = reference.UDP
			}
			if z>>3 == 31 {
				proto = reference.ICMP
			}
			src := netip.AddrPortFrom(backends[int(x)%len(backends)], 1000+uint16(x>>2)%8)
			sc.Ops = append(sc.Ops, Op{Kind: OpPacket, Time: now, Packet: reference.Packet{Time: now, Dir: reference.Outbound,
				Tuple: reference.Tuple{Proto: proto, Src: src, Dst: servers[int(y)%len(servers)]}, Flags: flagTable[int(z)%len(flagTable)], Fragment: z>>3 == 30}})
		case k < 12: // inbound, to a SNAT port near the ones in use
			proto := reference.TCP
			if y>>6 == 0 {
				proto = reference.UDP
			}
			dst := netip.AddrPortFrom(frontends[int(y)%2], 1024+uint16(int(y>>1)%ports))
			sc.Ops = append(sc.Ops, Op{Kind: OpPacket, Time: now, Packet: reference.Packet{Time: now, Dir: reference.Inbound,
				Tuple: reference.Tuple{Proto: proto, Src: servers[int(x)%len(servers)], Dst: dst}, Flags: flagTable[int(z)%len(flagTable)]}})
		case k < 14:
			now = now.Add(smallSteps[int(x)%len(smallSteps)] + time.Duration(y)*time.Millisecond)
			continue
		case k == 14:
			now = now.Add(hugeSteps[int(x)%len(hugeSteps)] - time.Duration(y%2)*time.Nanosecond)
			sc.Ops = append(sc.Ops, Op{Kind: OpAdvance, Time: now})
		default:
			sc.Ops = append(sc.Ops, Op{Kind: OpResize, Time: now, Pool: 1 + int(x)%len(backends)})
		}
		if z&1 == 1 { // most operations are followed by a little time
			now = now.Add(smallSteps[int(z>>1)%len(smallSteps)])
		}
	}
	return sc
}

// Flags returns the natcheck replay flags that configure the engine as the
// scenario does.
func (sc Scenario) Flags() string {
	c := sc.Config
	var fr, bk []string
	for _, a := range c.Frontends {
		fr = append(fr, a.String())
	}
	for _, a := range c.Backends {
		bk = append(bk, a.String())
	}
	s := fmt.Sprintf("--frontend %s --backends %s --ports-per-instance %d --protocol %s",
		strings.Join(fr, ","), strings.Join(bk, ","), c.PortsPerInstance, c.Protocols)
	if c.IdleTimeout != 0 {
		s += " --idle-timeout " + c.IdleTimeout.String()
	}
	if c.TCPResetOnIdle {
		s += " --tcp-reset-on-idle"
	}
	if c.Strict {
		s += " --strict"
	}
	return s
}

// WriteCapture writes the scenario's packets as a pcap file (Ethernet,
// IPv4, valid checksums): outbound packets as the backends sent them,
// inbound ones as recorded on the outside, to the SNAT IP:port. `natcheck
// replay` with Flags() replays it through the same configuration; time
// steps are the gaps between timestamps. Pool changes (OpResize) cannot
// be expressed in a capture and are listed in the returned note.
func (sc Scenario) WriteCapture(w io.Writer) (note string, err error) {
	var packets []reference.Packet
	var resizes []string
	for i, op := range sc.Ops {
		switch op.Kind {
		case OpResize:
			resizes = append(resizes, fmt.Sprintf("op %d at +%v: pool of %d", i, op.Time.Sub(T0), op.Pool))
		case OpPacket:
			packets = append(packets, op.Packet)
		}
	}
	if err := pcapgen.WritePCAP(w, packets, []byte("natcheck")); err != nil {
		return "", fmt.Errorf("write scenario capture: %w", err)
	}
	if len(resizes) > 0 {
		note = "pool changes not in the capture: " + strings.Join(resizes, "; ")
	}
	return note, nil
}
