package external

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/natcheck/natcheck/device/learn"
	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/device/pace"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/frame"
	"github.com/natcheck/natcheck/specs"
)

// Options describe a third-party device and how to drive it.
type Options struct {
	// Stated is the device's configuration as its owner states it:
	// Frontends are its public addresses, Backends the inside addresses
	// natcheck may send from (each an instance), and the allocation and
	// outbound rule as configured.
	Stated reference.Config
	// Gateway is the device's own address on the inside link.
	Gateway netip.Addr
	// Servers are the addresses natcheck may use as remote hosts, handed
	// out afresh to each session's servers (empty: 198.51.100.1–254 and
	// 192.0.2.1–254). Reserved is the first one: the calibration's.
	Servers []netip.Addr
	// Scale K: the device's timers are K times shorter than the
	// profile's (a test stand-in whose owner divided them; 1 for a real
	// device).
	Scale int
	// Tolerance is how late a packet may leave against its schedule
	// (pace.Clock); zero means pace.MinTolerance.
	Tolerance time.Duration
}

// Calibration is what Attach measured of the device.
type Calibration struct {
	// Fields are what the device keeps of a packet (learn.Fields).
	Fields learn.Fields
	// Latency is the 99th percentile of the probes' time through the
	// device; Deadline, how long a packet is waited for before it is
	// judged dropped: ten times that, at least 50 ms (a packet that comes
	// out later after all makes the check a harness error).
	Latency, Deadline time.Duration
	// InsideMAC and OutsideMAC are the device's link-layer addresses.
	InsideMAC, OutsideMAC net.HardwareAddr
}

// Device is one third-party device attached through two endpoints. Its
// sessions (one check's NAT) take it one at a time.
type Device struct {
	opt     Options
	in, out *link.Endpoint
	cal     Calibration
	plan    reference.Plan
	// own are the device's addresses (never answered for by ARP).
	own   map[netip.Addr]bool
	next  int // the next server address to hand out
	ipID  uint16
	buf   []byte
	dec   frame.Frame
	arpTx []byte
}

// ErrNoAnswer is matched by the error of Attach when the device does not
// answer ARP for its inside or public address, or lets no probe through.
var ErrNoAnswer = errors.New("the device does not answer")

// Attach calibrates the device reached through in (its inside link) and
// out (its outside link): it finds its link-layer addresses and sends a
// few probes from the first stated backend to the reserved server, to
// learn which fields it keeps and how long it takes.
func Attach(in, out *link.Endpoint, opt Options) (*Device, error) {
	if len(opt.Stated.Frontends) == 0 || len(opt.Stated.Backends) == 0 {
		return nil, fmt.Errorf("external: the stated configuration needs a public address and a backend: %w", reference.ErrConfig)
	}
	if len(opt.Servers) == 0 {
		for _, n := range []string{"198.51.100", "192.0.2"} {
			for i := 1; i <= 254; i++ {
				opt.Servers = append(opt.Servers, netip.MustParseAddr(fmt.Sprintf("%s.%d", n, i)))
			}
		}
	}
	opt.Scale = max(opt.Scale, 1)
	if opt.Tolerance <= 0 {
		opt.Tolerance = pace.MinTolerance
	}
	plan, err := planOf(opt.Stated)
	if err != nil {
		return nil, fmt.Errorf("external: the stated configuration: %w", err)
	}
	d := &Device{opt: opt, in: in, out: out, plan: plan, next: 1, own: map[netip.Addr]bool{opt.Gateway: true}}
	for _, f := range opt.Stated.Frontends {
		d.own[f] = true
	}
	if d.cal.InsideMAC, err = d.resolve(in, opt.Stated.Backends[0], opt.Gateway); err != nil {
		return nil, err
	}
	if d.cal.OutsideMAC, err = d.resolve(out, opt.Servers[0], opt.Stated.Frontends[0]); err != nil {
		return nil, err
	}
	if err := d.calibrate(); err != nil {
		return nil, err
	}
	return d, nil
}

// Calibration is what Attach measured.
func (d *Device) Calibration() Calibration { return d.cal }

// resolve finds the link-layer address of target on e's link by ARP,
// asking as from.
func (d *Device) resolve(e *link.Endpoint, from, target netip.Addr) (net.HardwareAddr, error) {
	req := link.AppendARP(nil, link.Broadcast, link.ARP{Op: link.ARPRequest, SenderMAC: e.MAC, SenderIP: from, TargetMAC: make(net.HardwareAddr, 6), TargetIP: target})
	for range 3 {
		if _, err := e.Send(req); err != nil {
			return nil, fmt.Errorf("external: %w", err)
		}
		for end := time.Now().Add(time.Second); time.Now().Before(end); {
			if _, err := e.WaitReadable(time.Until(end)); err != nil {
				return nil, fmt.Errorf("external: %w", err)
			}
			for {
				data, _, ok, err := e.Recv()
				if err != nil {
					return nil, fmt.Errorf("external: %w", err)
				}
				if !ok {
					break
				}
				if a, isARP := link.ParseARP(data); isARP {
					if a.Op == link.ARPReply && a.SenderIP == target {
						return a.SenderMAC, nil
					}
					d.answerARP(e, a)
				}
			}
		}
	}
	return nil, fmt.Errorf("external: no ARP answer for %v on %s: %w", target, e.Name, ErrNoAnswer)
}

// answerARP answers a request of the device for any address but its own:
// natcheck stands for every other host on both links.
func (d *Device) answerARP(e *link.Endpoint, a link.ARP) {
	if a.Op != link.ARPRequest || d.own[a.TargetIP] || !d.own[a.SenderIP] {
		return
	}
	d.arpTx = link.AppendARP(d.arpTx[:0], a.SenderMAC, link.ARP{Op: link.ARPReply, SenderMAC: e.MAC, SenderIP: a.TargetIP, TargetMAC: a.SenderMAC, TargetIP: a.SenderIP})
	_, _ = e.Send(d.arpTx) // a lost answer is asked again
}

// calibrate sends UDP probes and one TCP SYN (closed with a RST) from the
// first backend to the reserved server, all from one source port (one
// mapping each), and records what the device keeps and how long it takes.
func (d *Device) calibrate() error {
	src := netip.AddrPortFrom(d.opt.Stated.Backends[0], 65000)
	dst := netip.AddrPortFrom(d.opt.Servers[0], 9)
	var lat []time.Duration
	keepsID := true
	for i := range 20 {
		d.ipID++
		seg := link.Segment{Tuple: reference.Tuple{Proto: reference.UDP, Src: src, Dst: dst}, ID: d.ipID, Payload: []byte(fmt.Sprintf("natcheck calibration %d", i))}
		f, got, err := d.probe(seg)
		if err != nil {
			return err
		}
		lat = append(lat, got)
		keepsID = keepsID && f.ID == seg.ID
	}
	d.ipID++
	syn := link.Segment{Tuple: reference.Tuple{Proto: reference.TCP, Src: src, Dst: dst}, Flags: reference.SYN, Seq: 0x1234_5678, ID: d.ipID}
	f, got, err := d.probe(syn)
	if err != nil {
		return err
	}
	lat = append(lat, got)
	d.cal.Fields = learn.Fields{IPID: keepsID, SeqShift: f.Seq != syn.Seq}
	d.ipID++
	rst := link.Segment{Tuple: syn.Tuple, Flags: reference.RST, Seq: syn.Seq + 1, ID: d.ipID}
	if _, err := d.in.Send(link.AppendFrame(nil, d.in.MAC, d.cal.InsideMAC, rst)); err != nil {
		return fmt.Errorf("external: %w", err)
	}
	slices.Sort(lat)
	d.cal.Latency = lat[len(lat)*99/100]
	d.cal.Deadline = max(50*time.Millisecond, 10*d.cal.Latency)
	return nil
}

// probe sends seg from the inside and waits up to a second for it on the
// outside: the frame as it came out and the time it took.
func (d *Device) probe(seg link.Segment) (frame.Frame, time.Duration, error) {
	sent, err := d.in.Send(link.AppendFrame(nil, d.in.MAC, d.cal.InsideMAC, seg))
	if err != nil {
		return frame.Frame{}, 0, fmt.Errorf("external: %w", err)
	}
	if sent.IsZero() {
		sent = time.Now()
	}
	want := learn.Hash(seg.Payload)
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		if _, err := d.out.WaitReadable(time.Until(end)); err != nil {
			return frame.Frame{}, 0, fmt.Errorf("external: %w", err)
		}
		for {
			data, ts, ok, err := d.out.Recv()
			if err != nil {
				return frame.Frame{}, 0, fmt.Errorf("external: %w", err)
			}
			if !ok {
				break
			}
			if a, isARP := link.ParseARP(data); isARP {
				d.answerARP(d.out, a)
				continue
			}
			if frame.Decode(layers.LinkTypeEthernet, data, &d.dec) != nil || d.dec.Network != frame.IPv4 {
				continue
			}
			if d.dec.Proto == seg.Tuple.Proto && netip.AddrPortFrom(d.dec.Dst, d.dec.DstPort) == seg.Tuple.Dst && learn.PayloadKey(reference.Outbound, data, &d.dec) == want && d.dec.Flags == seg.Flags {
				return d.dec, ts.Sub(sent), nil
			}
		}
	}
	return frame.Frame{}, 0, fmt.Errorf("external: calibration probe %v did not come out of the device within 1 s: %w", seg.Tuple, ErrNoAnswer)
}

// Impl is the device, with more of its like (identical stand-ins, so
// that checks can run side by side), as an implementation under test
// named name, judged against profile (the zero Profile: azure-lb). A
// session waits for a free device.
func Impl(name string, profile reference.Profile, devs ...*Device) specs.Impl {
	free := make(chan *Device, len(devs))
	res := time.Duration(0)
	for _, d := range devs {
		free <- d
		res = max(res, pace.Resolution(d.opt.Scale, d.opt.Tolerance+d.cal.Latency))
	}
	return specs.Impl{
		Name:       name,
		RealTime:   true,
		OneAtATime: true,
		Caps:       specs.CapFragments | specs.CapICMP | specs.CapICMPErrors | specs.CapLargeAllocation,
		Resolution: res,
		Profile:    profile,
		Open: func(ctx context.Context, cfg reference.Config) (specs.NAT, error) {
			var d *Device
			select {
			case d = <-free:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			s, err := d.open(cfg, func() { free <- d })
			if err != nil {
				free <- d
				return nil, err
			}
			return s, nil
		},
	}
}

// planOf is the allocation plan of cfg, the profile's own rules aside: a
// device's configuration is stated in the outbound rule's terms
// (frontends, backends, ports per instance or the default table).
func planOf(cfg reference.Config) (reference.Plan, error) {
	cfg.Profile = reference.Profile{}
	return reference.PlanFor(cfg)
}

// Links returns the endpoints on the device's inside and outside links.
func (d *Device) Links() (in, out *link.Endpoint) { return d.in, d.out }

// AnswerARP answers frame, which came in on e (one of the device's
// links), when it is an ARP request of the device for an address natcheck
// stands for, and reports whether frame was ARP: a program that reads the
// links itself (a live replay) keeps the device's neighbours resolved.
func (d *Device) AnswerARP(e *link.Endpoint, frame []byte) bool {
	a, ok := link.ParseARP(frame)
	if ok {
		d.answerARP(e, a)
	}
	return ok
}
