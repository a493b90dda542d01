package external_test

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/natcheck/natcheck/device/external"
	"github.com/natcheck/natcheck/device/external/standin"
	"github.com/natcheck/natcheck/device/learn"
	"github.com/natcheck/natcheck/device/linuxnft"
	"github.com/natcheck/natcheck/device/livecheck"
	"github.com/natcheck/natcheck/device/pace"
	"github.com/natcheck/natcheck/device/sandbox/sandboxtest"
	"github.com/natcheck/natcheck/device/topology"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

var (
	oneFrontend = []netip.Addr{netip.MustParseAddr("203.0.113.1")}
	oneBackend  = []netip.Addr{netip.MustParseAddr("10.0.0.1")}
	gateway     = standin.Gateway
)

// linuxProfile is the linux profile of this kernel's conntrack at time
// scale 10.
func linuxProfile(t *testing.T) reference.Profile {
	t.Helper()
	ct, err := linuxnft.DeviceConntrack()
	if err != nil {
		t.Fatal(err)
	}
	ct.Established = 240 * time.Second
	ct.StreamAfter *= scale
	return reference.Linux(ct)
}

// scramble makes the stand-in behave as many firewalls do and Linux does
// not: in the nat namespace, before conntrack, every packet from the
// inside gets a new IPv4 ID (xor 0x5555) and every TCP segment from the
// inside a sequence number shifted by 2^31 (xor of the top bit, which is
// adding 2^31 modulo 2^32: one shift for every segment of a flow, as a
// device that randomises initial sequence numbers shifts a flow's);
// acknowledgement numbers going back in are shifted back. Checksums are
// updated by the kernel (nft payload write).
func scramble(t *testing.T, topo *topology.Topology) {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(topo.NAT.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	tbl := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "scramble"})
	pre := c.AddChain(&nftables.Chain{Name: "pre", Table: tbl, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw})
	post := c.AddChain(&nftables.Chain{Name: "post", Table: tbl, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityRef(200)})
	iface := func(key expr.MetaKey) []expr.Any {
		return []expr.Any{&expr.Meta{Key: key, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, uint32(topo.NATInside.Index))}}
	}
	tcp := []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}}}
	// xor loads a header field, xors it with x and writes it back, the
	// checksum at csum of the same header updated.
	xor := func(base expr.PayloadBase, off uint32, x []byte, csum uint32) []expr.Any {
		n := uint32(len(x))
		mask := make([]byte, n)
		for i := range mask {
			mask[i] = 0xff
		}
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: x},
			&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: base, Offset: off, Len: n, CsumType: expr.CsumTypeInet, CsumOffset: csum},
		}
	}
	join := func(parts ...[]expr.Any) []expr.Any {
		var out []expr.Any
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	c.AddRule(&nftables.Rule{Table: tbl, Chain: pre, Exprs: join(iface(expr.MetaKeyIIF), xor(expr.PayloadBaseNetworkHeader, 4, []byte{0x55, 0x55}, 10))})
	c.AddRule(&nftables.Rule{Table: tbl, Chain: pre, Exprs: join(iface(expr.MetaKeyIIF), tcp, xor(expr.PayloadBaseTransportHeader, 4, []byte{0x80, 0, 0, 0}, 16))})
	c.AddRule(&nftables.Rule{Table: tbl, Chain: post, Exprs: join(iface(expr.MetaKeyOIF), tcp, xor(expr.PayloadBaseTransportHeader, 8, []byte{0x80, 0, 0, 0}, 16))})
	if err := c.Flush(); err != nil {
		t.Fatalf("scramble: %v", err)
	}
}

// TestCalibration: Attach learns from its probes what the device keeps
// and how long it takes, against Linux NATs met only through two links:
//   - stock Linux keeps the IPv4 ID and the sequence numbers;
//   - one that rewrites the ID and shifts sequence numbers (scramble) is
//     calibrated so, and TCP checks through it conform: the generic
//     driver learns each flow's shift from its SYN, matches its later
//     segments by it and acknowledges what the server saw;
//   - the drop deadline is ten times the probes' 99th percentile latency,
//     at least 50 ms: a NAT whose outside link is shaped to 8 kbit/s
//     after a burst of about 1,000 bytes lets the first ~14 probes through
//     at once and holds the last ones ~65 ms each, so the median is under
//     a millisecond and the 99th percentile over 50 ms.
func TestCalibration(t *testing.T) {
	sandboxtest.Require(t, linuxnft.Preflight)
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), 6))
	profile := linuxProfile(t)
	stated := reference.Config{Frontends: oneFrontend, Backends: oneBackend}
	tol := pace.Tolerance()
	attach := func(t *testing.T, topo *topology.Topology) *external.Device {
		d, err := external.Attach(topo.In, topo.Out, external.Options{Stated: stated, Gateway: gateway, Scale: scale, Tolerance: tol})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Run("stock Linux", func(t *testing.T) {
		topo := standIn(t, stated, profile)
		cal := attach(t, topo).Calibration()
		if cal.Fields != (learn.Fields{IPID: true}) {
			t.Errorf("fields = %+v, want the IP ID kept and no sequence shift", cal.Fields)
		}
		if cal.Latency > 10*time.Millisecond || cal.Deadline != max(50*time.Millisecond, 10*cal.Latency) {
			t.Errorf("latency %v, deadline %v; want under 10 ms, and ten times it or the 50 ms floor", cal.Latency, cal.Deadline)
		}
	})

	t.Run("rewrites the IP ID and shifts sequence numbers", func(t *testing.T) {
		var devs []*external.Device
		for range 2 {
			topo := standIn(t, stated, profile)
			scramble(t, topo)
			d := attach(t, topo)
			if cal := d.Calibration(); cal.Fields != (learn.Fields{SeqShift: true}) {
				t.Fatalf("fields = %+v, want the IP ID not kept and sequence numbers shifted", cal.Fields)
			}
			devs = append(devs, d)
		}
		impl := external.Impl("linux-scrambled", profile, devs...)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// TCP timers (L5), RST (L6), inbound (L8) and pick-up (L9): every
		// segment after the SYN is matched by its shifted number, and
		// every ACK from the server must be in the device's window.
		m, err := livecheck.Verify(ctx, impl, specs.LinuxChecks(), []reference.Behavior{reference.L6, reference.L8, reference.L9}, livecheck.Options{Parallel: len(devs), Attempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		judged := 0
		for _, row := range m.Rows {
			for _, r := range row.Cells[0].Results {
				switch {
				case r.Status == specs.Conforms:
					judged++
				case r.Status == specs.NotChecked && (strings.HasPrefix(r.Message, "lacks the configuration") || r.Message == "lacks strict"):
				default:
					t.Errorf("%s: %s", r.Check.Text(), r.Report())
				}
			}
		}
		if judged < 5 {
			t.Errorf("%d checks of L6, L8 and L9 judged, want at least 5", judged)
		}
	})

	t.Run("latency p99 sets the drop deadline", func(t *testing.T) {
		topo := standIn(t, stated, profile)
		err := topo.NATHandle.QdiscAdd(&netlink.Tbf{
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: topo.NATOutside.Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
			// 1,000 bytes/s; a bucket of 1,000 bytes (one second of tokens,
			// in the kernel's 64 ns ticks); a queue of 10,000 bytes.
			Rate: 1000, Buffer: uint32(time.Second.Nanoseconds() >> 6), Limit: 10000,
		})
		if err != nil {
			t.Fatalf("tbf on %s: %v", topo.NATOutside.Name, err)
		}
		cal := attach(t, topo).Calibration()
		if cal.Latency < 50*time.Millisecond || cal.Latency > 500*time.Millisecond {
			t.Errorf("latency (99th percentile) %v, want the shaped probes' 50–500 ms, not the unshaped majority's", cal.Latency)
		}
		if cal.Deadline != 10*cal.Latency {
			t.Errorf("deadline %v, want ten times the latency %v", cal.Deadline, cal.Latency)
		}
	})
}

// TestARPAnsweredOnBothSides: natcheck stands for the hosts of both links.
// With the stand-in's neighbour entries flushed after Attach, a UDP
// packet out and its reply back come through only if natcheck answers the
// NAT's ARP requests for its upstream router (outside) and for the
// instance (inside); the NAT's neighbour table then holds natcheck's
// link-layer addresses for both, learnt (not permanent).
func TestARPAnsweredOnBothSides(t *testing.T) {
	sandboxtest.Require(t, linuxnft.Preflight)
	stated := reference.Config{Frontends: oneFrontend, Backends: oneBackend}
	topo := standIn(t, stated, linuxProfile(t))
	d, err := external.Attach(topo.In, topo.Out, external.Options{Stated: stated, Gateway: gateway, Scale: scale, Tolerance: pace.Tolerance()})
	if err != nil {
		t.Fatal(err)
	}
	standin.ForgetNeighbours(t, topo)
	impl := external.Impl("linux-standin", reference.Profile{}, d)
	ctx := context.Background()
	nat, err := impl.Open(ctx, stated)
	if err != nil {
		t.Fatal(err)
	}
	defer nat.Close()
	out := reference.Tuple{Proto: reference.UDP, Src: netip.AddrPortFrom(oneBackend[0], 5000), Dst: netip.MustParseAddrPort("198.51.100.7:53")}
	del, err := nat.Send(ctx, reference.Packet{Time: specs.Origin, Dir: reference.Outbound, Tuple: out})
	if err != nil || !del.Forwarded {
		t.Fatalf("outbound: %+v, %v; want it forwarded (the NAT asks for its router's address)", del, err)
	}
	back, err := nat.Send(ctx, reference.Packet{Time: specs.Origin.Add(time.Second), Dir: reference.Inbound, Tuple: reference.Tuple{Proto: reference.UDP, Src: out.Dst, Dst: del.Packet.Tuple.Src}})
	if err != nil || !back.Forwarded || back.Packet.Tuple.Dst != out.Src {
		t.Fatalf("reply: %+v, %v; want it forwarded to %v (the NAT asks for the instance's address)", back, err, out.Src)
	}
	want := map[string]net.HardwareAddr{"203.0.113.254": topo.Out.MAC, "10.0.0.1": topo.In.MAC}
	neigh, err := topo.NATHandle.NeighList(0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neigh {
		ip := n.IP.String()
		if mac, ok := want[ip]; ok && n.HardwareAddr.String() == mac.String() && n.State&(netlink.NUD_PERMANENT|netlink.NUD_NOARP|netlink.NUD_FAILED|netlink.NUD_INCOMPLETE) == 0 {
			delete(want, ip)
		}
	}
	if len(want) > 0 {
		t.Errorf("the NAT's neighbour table %v lacks natcheck's answers for %v", neigh, want)
	}
}
