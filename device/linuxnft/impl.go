package linuxnft

import (
	"context"
	"time"

	"github.com/natcheck/natcheck/device/pace"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// Caps is what the device can do: IP fragments, ICMP echoes and ICMP
// errors quoting a packet are sent for real, strict mode is
// nf_conntrack_tcp_loose=0, an outbound rule limited to one protocol is
// rules for that protocol only, 64,000 flows from one instance take a few
// seconds, and a pool change rewrites the rules.
const Caps = specs.CapFragments | specs.CapICMP | specs.CapICMPErrors | specs.CapStrict | specs.CapProtocolRule | specs.CapLargeAllocation | specs.CapPoolChange

// KnownAzureLB are the deviations of a Linux SNAT configured per instance
// from the allocation plan, judged against profile azure-lb: those
// SEMANTICS.md ("Known differences") predicts (B7, B9–B12, B15, C3, C5)
// and those this kernel shows beyond its list (B13, B14), each with the
// Linux item that explains what the checks see.
var KnownAzureLB = map[reference.Behavior]string{
	reference.B7: "L3: uniqueness is per full 5-tuple, so one SNAT port carries mappings to several ports of one UDP destination IP",
	reference.B9: "L6: a RST on a flow that never saw a reply frees its port at once, not 15 s later; " +
		"L1: a Linux SNAT rule maps onto one address range × one port range, so an instance whose blocks span two frontend IPs gets the first IP's only; " +
		"L4: past 128 ports the kernel's search for a free port is bounded and random, so it may refuse before every port is taken",
	reference.B10: "L5: a FIN moves the flow to FIN_WAIT (nf_conntrack_tcp_timeout_fin_wait, 120 s), and every later packet restarts the timer of the state it leaves the flow in",
	reference.B11: "L6: a RST on a flow that has seen a reply moves it to CLOSE (nf_conntrack_tcp_timeout_close, 10 s); on one that never saw a reply it frees the port at once",
	reference.B12: "L5/L7: the device's own conntrack timers (an established TCP flow lives nf_conntrack_tcp_timeout_established, a UDP flow nf_conntrack_udp_timeout or _stream), not the outbound rule's idle timeout",
	reference.B13: "L5/L6: a flow's release time is its conntrack timer's, so the B13 boundary the check probes (RST + 15 s, idle 4 minutes) is not where the device releases it",
	reference.B14: "L5: an established flow lives nf_conntrack_tcp_timeout_established (432,000 s), so it does not expire after 4 idle minutes and its later packets are still translated",
	reference.B15: "L10: ICMP echo, errors about a live flow and fragments are translated",
	reference.B16: "L1: a pool change rewrites the SNAT rules, but conntrack keeps translating the flows it already tracks, those on reclaimed ports too; and an instance whose ports come back as two ranges gets the first only (a rule is one address range × one port range)",
	reference.C3:  "L2: the inside source port is kept when free, otherwise a random free port",
	reference.C5:  "L9: a FIN or RST with no flow is invalid and dropped",
}

// Impl is the device as an implementation under test, judged against
// profile azure-lb (Known: KnownAzureLB), with the resolution of opt.
func Impl(opt Options) specs.Impl {
	opt = opt.withDefaults()
	return specs.Impl{
		Name:       Name,
		RealTime:   true,
		Caps:       Caps,
		Resolution: pace.Resolution(opt.Scale, opt.Tolerance),
		Known:      KnownAzureLB,
		Open: func(ctx context.Context, cfg reference.Config) (specs.NAT, error) {
			return Open(ctx, cfg, opt)
		},
	}
}

// Calibrate returns opt with the send tolerance this machine allows now
// (pace.Tolerance).
func Calibrate(opt Options) Options {
	opt.Tolerance = pace.Tolerance()
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
