package linuxnft

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/natcheck/natcheck/device/sandbox"
	"github.com/natcheck/natcheck/device/topology"
	"github.com/natcheck/natcheck/reference"
)

// timerSysctls are the conntrack timeouts of SEMANTICS.md L5 and L7 (and
// ICMP), per network namespace, in whole seconds.
var timerSysctls = []string{
	"nf_conntrack_tcp_timeout_syn_sent",
	"nf_conntrack_tcp_timeout_syn_recv",
	"nf_conntrack_tcp_timeout_established",
	"nf_conntrack_tcp_timeout_fin_wait",
	"nf_conntrack_tcp_timeout_close_wait",
	"nf_conntrack_tcp_timeout_last_ack",
	"nf_conntrack_tcp_timeout_time_wait",
	"nf_conntrack_tcp_timeout_close",
	"nf_conntrack_tcp_timeout_max_retrans",
	"nf_conntrack_tcp_timeout_unacknowledged",
	"nf_conntrack_udp_timeout",
	"nf_conntrack_udp_timeout_stream",
	"nf_conntrack_icmp_timeout",
}

// Timers are a namespace's conntrack timeouts in seconds, by sysctl name
// (without the net/netfilter/ prefix).
type Timers map[string]int

// readTimers reads the timeouts in the calling thread's namespace.
func readTimers() (Timers, error) {
	t := Timers{}
	for _, k := range timerSysctls {
		v, err := topology.ReadSysctl("net/netfilter/" + k)
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("sysctl %s: %q: %w", k, v, err)
		}
		t[k] = n
	}
	return t, nil
}

// ScaleError is a time scale that does not divide every timer into whole
// seconds.
type ScaleError struct {
	Scale  int
	Sysctl string
	Value  int
	// Valid are the scales that would work.
	Valid []int
}

func (e *ScaleError) Error() string {
	return fmt.Sprintf("time scale %d: %s = %d s is not a whole number of seconds once divided (conntrack counts whole seconds); valid scales: %v", e.Scale, e.Sysctl, e.Value, e.Valid)
}

// scaled divides every timer by k.
func (t Timers) scaled(k int) (Timers, error) {
	out := Timers{}
	for _, name := range timerSysctls {
		v := t[name]
		if v%k != 0 {
			return nil, &ScaleError{Scale: k, Sysctl: name, Value: v, Valid: t.validScales()}
		}
		out[name] = v / k
	}
	return out, nil
}

// validScales are the k up to 100 that divide every timer.
func (t Timers) validScales() []int {
	var ks []int
	for k := 1; k <= 100; k++ {
		ok := true
		for _, v := range t {
			ok = ok && v%k == 0
		}
		if ok {
			ks = append(ks, k)
		}
	}
	return ks
}

// write sets the timers in the calling thread's namespace.
func (t Timers) write() error {
	kv := map[string]string{}
	for k, v := range t {
		kv["net/netfilter/"+k] = strconv.Itoa(v)
	}
	return topology.WriteSysctls(kv)
}

// CheckScale reports whether k divides every conntrack timer of a fresh
// namespace into whole seconds; the error is a *ScaleError listing the
// scales that do. Call it inside the sandbox.
func CheckScale(k int) error {
	ns, err := sandbox.NewNamespace("scale-check")
	if err != nil {
		return err
	}
	defer ns.Close()
	return ns.Do(func() error {
		t, err := readTimers()
		if err != nil {
			return err
		}
		_, err = t.scaled(k)
		return err
	})
}

// timersOf are the conntrack numbers of a linux profile as sysctl values in
// seconds (nf_conntrack_tcp_timeout_max_retrans, which the profile does
// not hold, keeps base's value).
func timersOf(ct reference.Conntrack, base Timers) Timers {
	t := Timers{}
	for k, v := range base {
		t[k] = v
	}
	for k, d := range map[string]time.Duration{
		"nf_conntrack_tcp_timeout_syn_sent": ct.SynSent, "nf_conntrack_tcp_timeout_syn_recv": ct.SynRecv,
		"nf_conntrack_tcp_timeout_established": ct.Established, "nf_conntrack_tcp_timeout_fin_wait": ct.FinWait,
		"nf_conntrack_tcp_timeout_close_wait": ct.CloseWait, "nf_conntrack_tcp_timeout_last_ack": ct.LastAck,
		"nf_conntrack_tcp_timeout_time_wait": ct.TimeWait, "nf_conntrack_tcp_timeout_close": ct.Close,
		"nf_conntrack_tcp_timeout_unacknowledged": ct.Unacknowledged, "nf_conntrack_udp_timeout": ct.UDP,
		"nf_conntrack_udp_timeout_stream": ct.UDPStream, "nf_conntrack_icmp_timeout": ct.ICMP,
	} {
		t[k] = int(d / time.Second)
	}
	return t
}

// DeviceConntrack reads the conntrack numbers of a fresh namespace of this
// kernel (its defaults): the linux profile the device runs. Call it inside
// the sandbox.
func DeviceConntrack() (reference.Conntrack, error) {
	ns, err := sandbox.NewNamespace("conntrack-defaults")
	if err != nil {
		return reference.Conntrack{}, err
	}
	defer ns.Close()
	var ct reference.Conntrack
	err = ns.Do(func() error {
		var err error
		ct, err = reference.ReadSysctlFS(os.DirFS("/proc/sys/net/netfilter"), "/proc/sys/net/netfilter")
		return err
	})
	return ct, err
}
