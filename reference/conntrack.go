package reference

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Conntrack is what the linux profile takes from a Linux network
// namespace's net.netfilter sysctls (SEMANTICS.md L5–L7, L9, L10): the
// connection-tracking timeouts and tcp_loose. The zero value is not
// useful; start from DefaultConntrack or ParseSysctl.
type Conntrack struct {
	// TCP timeouts by state (L5): nf_conntrack_tcp_timeout_*.
	SynSent, SynRecv, Established, FinWait, CloseWait, LastAck, TimeWait, Close time.Duration
	// Unacknowledged caps the timeout of a flow picked up mid-stream
	// that has seen no reply (nf_conntrack_tcp_timeout_unacknowledged).
	Unacknowledged time.Duration
	// UDP and UDPStream are nf_conntrack_udp_timeout and
	// nf_conntrack_udp_timeout_stream (L7).
	UDP, UDPStream time.Duration
	// ICMP is nf_conntrack_icmp_timeout (L10).
	ICMP time.Duration
	// StreamAfter is how long after its start a replied UDP flow must
	// still send to get the stream timeout (L7): the kernel's fixed 2 s
	// (2*HZ), not a sysctl. A device whose timers run K times faster than
	// profile time (a live check with a time scale) has it K times longer
	// in profile time.
	StreamAfter time.Duration
	// Loose is nf_conntrack_tcp_loose: a TCP packet other than a SYN may
	// open a flow (L9).
	Loose bool
}

// DefaultConntrack returns the kernel's defaults, the bracketed numbers
// of SEMANTICS.md L5–L7 (as read on this project's kernel 6.18).
func DefaultConntrack() Conntrack {
	return Conntrack{
		SynSent: 120 * time.Second, SynRecv: 60 * time.Second, Established: 432000 * time.Second,
		FinWait: 120 * time.Second, CloseWait: 60 * time.Second, LastAck: 30 * time.Second,
		TimeWait: 120 * time.Second, Close: 10 * time.Second, Unacknowledged: 300 * time.Second,
		UDP: 30 * time.Second, UDPStream: 120 * time.Second, ICMP: 30 * time.Second,
		StreamAfter: 2 * time.Second, Loose: true,
	}
}

// sysctlFields names the sysctls Conntrack holds, without their
// "net.netfilter." prefix.
func (c *Conntrack) sysctlFields() map[string]any {
	return map[string]any{
		"nf_conntrack_tcp_timeout_syn_sent":       &c.SynSent,
		"nf_conntrack_tcp_timeout_syn_recv":       &c.SynRecv,
		"nf_conntrack_tcp_timeout_established":    &c.Established,
		"nf_conntrack_tcp_timeout_fin_wait":       &c.FinWait,
		"nf_conntrack_tcp_timeout_close_wait":     &c.CloseWait,
		"nf_conntrack_tcp_timeout_last_ack":       &c.LastAck,
		"nf_conntrack_tcp_timeout_time_wait":      &c.TimeWait,
		"nf_conntrack_tcp_timeout_close":          &c.Close,
		"nf_conntrack_tcp_timeout_unacknowledged": &c.Unacknowledged,
		"nf_conntrack_udp_timeout":                &c.UDP,
		"nf_conntrack_udp_timeout_stream":         &c.UDPStream,
		"nf_conntrack_icmp_timeout":               &c.ICMP,
		"nf_conntrack_tcp_loose":                  &c.Loose,
	}
}

// SysctlError is a sysctl snapshot that cannot be read: where (the source
// and line) and why.
type SysctlError struct {
	Source string
	Line   int
	Reason string
}

func (e *SysctlError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("sysctl %s line %d: %s", e.Source, e.Line, e.Reason)
	}
	return fmt.Sprintf("sysctl %s: %s", e.Source, e.Reason)
}

func (c *Conntrack) set(name, value string) error {
	f, ok := c.sysctlFields()[name]
	if !ok {
		return nil // other sysctls of the snapshot do not matter here
	}
	n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 32)
	if err != nil {
		return fmt.Errorf("%s = %q: want a whole number", name, value)
	}
	switch f := f.(type) {
	case *time.Duration:
		*f = time.Duration(n) * time.Second
	case *bool:
		*f = n != 0
	}
	return nil
}

// ParseSysctl reads the output of `sysctl net.netfilter` (lines
// "net.netfilter.nf_conntrack_udp_timeout = 30"; `sysctl -a` output and
// "key: value" forms are accepted too) starting from the kernel defaults:
// a sysctl the snapshot lacks keeps its default. source names the input
// in errors. Lines that are not sysctls of netfilter are passed over.
func ParseSysctl(r io.Reader, source string) (Conntrack, error) {
	c := DefaultConntrack()
	sc := bufio.NewScanner(r)
	seen := 0
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			k, v, ok = strings.Cut(line, ":")
		}
		if !ok {
			return c, &SysctlError{Source: source, Line: n, Reason: fmt.Sprintf("%q is not \"key = value\"", line)}
		}
		k = strings.TrimSpace(k)
		name, ok := strings.CutPrefix(k, "net.netfilter.")
		if !ok {
			continue
		}
		if _, known := c.sysctlFields()[name]; known {
			seen++ // equivalent mutant: "--" (only seen == 0 matters)
		}
		if err := c.set(name, v); err != nil {
			return c, &SysctlError{Source: source, Line: n, Reason: err.Error()}
		}
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("sysctl %s: %w", source, err)
	}
	if seen == 0 {
		return c, &SysctlError{Source: source, Reason: "no net.netfilter.nf_conntrack_* timeout in it (want the output of `sysctl net.netfilter`)"}
	}
	return c, nil
}

// ReadSysctlFS reads the conntrack sysctls from a directory laid out as
// /proc/sys/net/netfilter (one file per sysctl, e.g.
// os.DirFS("/proc/sys/net/netfilter")), starting from the kernel
// defaults. A missing file keeps its default; at least one must exist.
func ReadSysctlFS(fsys fs.FS, source string) (Conntrack, error) {
	c := DefaultConntrack()
	seen := 0
	for name := range c.sysctlFields() {
		b, err := fs.ReadFile(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return c, fmt.Errorf("sysctl %s: %w", source, err)
		}
		seen++ // equivalent mutant: "--" (only seen == 0 matters)
		if err := c.set(name, string(b)); err != nil {
			return c, &SysctlError{Source: source + "/" + name, Reason: err.Error()}
		}
	}
	if seen == 0 {
		return c, &SysctlError{Source: source, Reason: "no nf_conntrack_* file in it (want /proc/sys/net/netfilter)"}
	}
	return c, nil
}

// String lists the values as `sysctl net.netfilter` prints them, in
// name order.
func (c Conntrack) String() string {
	var b strings.Builder
	fields := c.sysctlFields()
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		switch f := fields[n].(type) {
		case *time.Duration:
			fmt.Fprintf(&b, "net.netfilter.%s = %d\n", n, int64(*f/time.Second))
		case *bool:
			v := 0
			if *f {
				v = 1
			}
			fmt.Fprintf(&b, "net.netfilter.%s = %d\n", n, v)
		}
	}
	return b.String()
}
