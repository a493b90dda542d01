package linuxnft

import (
	"context"
	"slices"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// Caps is what the device can do: IP fragments and ICMP are sent for
// real, strict mode is nf_conntrack_tcp_loose=0, an outbound rule limited
// to one protocol is rules for that protocol only, and 64,000 flows from
// one instance take a few seconds.
const Caps = specs.CapFragments | specs.CapICMP | specs.CapStrict | specs.CapProtocolRule | specs.CapLargeAllocation

// KnownAzureLB are the deviations SEMANTICS.md ("Known differences")
// predicts for a Linux SNAT configured per instance from the allocation
// plan, judged against profile azure-lb.
var KnownAzureLB = map[reference.Behavior]string{
	reference.B7:  "L3: uniqueness is per full 5-tuple, so one SNAT port carries mappings to several ports of one UDP destination IP",
	reference.B9:  "L4: Linux may refuse a new flow before the instance's ports are all used (bounded port search)",
	reference.B10: "L5: packets after a FIN restart the conntrack timer of the state they leave the flow in",
	reference.B11: "L6: a RST on a flow that never saw a reply frees the port at once; otherwise the flow is in CLOSE for nf_conntrack_tcp_timeout_close",
	reference.B12: "L5/L7: the device's own conntrack timers, not the outbound rule's idle timeout",
	reference.B15: "L10: ICMP echo and fragments are translated",
	reference.C3:  "L2: the inside source port is kept when free, otherwise a random free port",
	reference.C5:  "L9: a FIN or RST with no flow is invalid and dropped",
}

// jiffy bounds conntrack's timer granularity (HZ is at least 100).
const jiffy = 10 * time.Millisecond

// Impl is the device as an implementation under test, judged against
// profile azure-lb (Known: KnownAzureLB). Resolution is the smallest profile-time difference it
// can tell apart: K × (twice the send tolerance + a jiffy).
func Impl(opt Options) specs.Impl {
	opt = opt.withDefaults()
	return specs.Impl{
		Name:       Name,
		RealTime:   true,
		Caps:       Caps,
		Resolution: time.Duration(opt.Scale) * (2*opt.Tolerance + jiffy),
		Known:      KnownAzureLB,
		Open: func(ctx context.Context, cfg reference.Config) (specs.NAT, error) {
			return Open(ctx, cfg, opt)
		},
	}
}

// Calibrate measures how late this machine wakes a sleeping goroutine
// (the 99th percentile of 50 sleeps of 1 ms) and returns opt with a send
// tolerance of twice that, at least 2 ms.
func Calibrate(opt Options) Options {
	var late []time.Duration
	for range 50 {
		t0 := time.Now()
		time.Sleep(time.Millisecond)
		late = append(late, time.Since(t0)-time.Millisecond)
	}
	slices.Sort(late)
	opt.Tolerance = max(2*time.Millisecond, 2*late[len(late)*99/100])
	return opt.withDefaults()
}

// EstablishedCap is the ESTABLISHED timeout the device runs with when
// judged against the linux profile: the kernel's 432,000 s (5 days) would
// make one L5 check wait 12 hours at time scale 10, so the device sets
// nf_conntrack_tcp_timeout_established to at most this, and the profile
// it is judged against says so.
const EstablishedCap = 600 * time.Second

// LinuxImpl is the device judged against its own profile, linux, with the
// conntrack numbers ct (DeviceConntrack), ESTABLISHED capped at
// EstablishedCap: no known differences.
func LinuxImpl(opt Options, ct reference.Conntrack) specs.Impl {
	ct.Established = min(ct.Established, EstablishedCap)
	// The kernel's 2 s after which a replied UDP flow is a stream (L7) is
	// wall-clock time, not a sysctl: K times longer in profile time.
	ct.StreamAfter *= time.Duration(max(opt.Scale, 1))
	im := Impl(opt)
	im.Profile = reference.Linux(ct)
	im.Known = nil
	return im
}
