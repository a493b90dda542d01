package linuxnft_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/natcheck/natcheck/device/linuxnft"
	"github.com/natcheck/natcheck/device/sandbox/sandboxtest"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

func TestForwardsAndTranslatesBack(t *testing.T) {
	sandboxtest.Require(t, linuxnft.Preflight)
	cfg := oneBackend(8)
	cfg.Backends = append(cfg.Backends, netip.MustParseAddr("10.0.0.2"))
	n, err := linuxnft.Open(context.Background(), cfg, linuxnft.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	in := netip.MustParseAddrPort("10.0.0.2:1000")
	srv := netip.MustParseAddrPort("198.51.100.1:443")
	p := reference.Packet{Time: specs.Origin, Dir: reference.Outbound, Tuple: reference.Tuple{Proto: reference.TCP, Src: in, Dst: srv}, Flags: reference.SYN}
	d, err := n.Send(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("delivery %+v", d)
	if !d.Forwarded {
		t.Fatalf("SYN not forwarded: %+v", d)
	}
	snat := d.Packet.Tuple.Src
	r := n.Plan().Instances[1].Ranges[0]
	if snat.Addr() != r.IP || snat.Port() < r.First || snat.Port() > r.Last {
		t.Errorf("SNAT endpoint %v outside instance 2's range %v", snat, r)
	}
	back := reference.Packet{Time: specs.Origin.Add(time.Millisecond), Dir: reference.Inbound, Tuple: reference.Tuple{Proto: reference.TCP, Src: srv, Dst: snat}, Flags: reference.SYN | reference.ACK}
	d, err = n.Send(context.Background(), back)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Forwarded || d.Packet.Tuple.Dst != in {
		t.Fatalf("SYN|ACK not translated back to %v: %+v", in, d)
	}
	c, err := n.Counters()
	t.Logf("counters %v %v", c, err)
}

// oneBackend is one frontend IP (203.0.113.1) and one backend (10.0.0.1)
// with ports ports.
func oneBackend(ports int) reference.Config {
	return reference.Config{Frontends: []netip.Addr{netip.MustParseAddr("203.0.113.1")}, Backends: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, PortsPerInstance: ports}
}
