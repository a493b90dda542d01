package reference

import (
	"fmt"
	"time"
)

// bucket is the timing wheel's bucket: no hold may be shorter, or a
// deadline it sets could fall in a bucket already due and be found only a
// whole turn of the wheel later (B13).
const bucket = time.Duration(1) << wheelShift

// maxHold bounds an idle timeout plus a FIN or RST hold: every deadline
// the engine computes from a time it accepts stays within int64
// nanoseconds (see timeMargin).
const maxHold = time.Duration(timeMargin / 2)

// validate checks the numbers of the profile that the engine relies on,
// and returns a *ConfigError naming the first field it cannot honour.
func (p *Profile) validate() error {
	bad := func(field string, v any, format string, args ...any) error {
		return &ConfigError{Field: "profile " + field, Value: v, Reason: fmt.Sprintf(format, args...)}
	}
	if p.FirstPort == 0 {
		return bad("FirstPort", p.FirstPort, "want a first SNAT port from 1")
	}
	if last := int(p.FirstPort) + p.PortsPerIP - 1; p.PortsPerIP < 1 || last > 65535 {
		return bad("PortsPerIP", p.PortsPerIP, "want 1 to %d, so that the range from port %d ends by 65535", 65536-int(p.FirstPort), p.FirstPort)
	}
	if p.BlockSize < 1 || p.PortsPerIP%p.BlockSize != 0 {
		return bad("BlockSize", p.BlockSize, "want a positive divisor of the %d ports per IP", p.PortsPerIP)
	}
	if p.Quota == QuotaPerInstance {
		if len(p.Tiers) == 0 {
			return bad("Tiers", "[]", "want at least one row in the default allocation table")
		}
		prev := 0
		for i, t := range p.Tiers {
			field := fmt.Sprintf("Tiers[%d]", i)
			switch {
			case t.MaxPool <= prev:
				return bad(field, t, "want rows smallest pool first: a MaxPool above %d", prev)
			case t.Ports < p.BlockSize || t.Ports%p.BlockSize != 0:
				return bad(field, t, "want whole blocks of %d ports", p.BlockSize)
			case t.MaxPool*t.Ports > p.PortsPerIP:
				return bad(field, t, "want a pool of %d at %d ports each to fit one IP's %d ports", t.MaxPool, t.Ports, p.PortsPerIP)
			}
			prev = t.MaxPool
		}
		if p.MaxInstancePorts < p.BlockSize || p.MaxInstancePorts%p.BlockSize != 0 {
			return bad("MaxInstancePorts", p.MaxInstancePorts, "want whole blocks of %d ports", p.BlockSize)
		}
	}
	if p.Timers == TimersHold {
		for _, h := range []struct {
			field string
			d     time.Duration
		}{{"FINHold", p.FINHold}, {"RSTHold", p.RSTHold}, {"IdleMin", p.IdleMin}} {
			if h.d < bucket {
				return bad(h.field, h.d, "want at least %v, the timing wheel's bucket: a shorter hold could be released a whole turn of the wheel late", bucket)
			}
		}
		switch {
		case p.IdleStep <= 0:
			return bad("IdleStep", p.IdleStep, "want a positive step")
		case p.IdleMax < p.IdleMin:
			return bad("IdleMax", p.IdleMax, "want at least IdleMin, %v", p.IdleMin)
		case p.IdleDefault < p.IdleMin || p.IdleDefault > p.IdleMax || p.IdleDefault%p.IdleStep != 0:
			return bad("IdleDefault", p.IdleDefault, "want whole %v steps from %v to %v", p.IdleStep, p.IdleMin, p.IdleMax)
		}
		// The longest deadline the wheel holds: the idle timeout plus the
		// longer hold; the longer of the two is named.
		for _, h := range []struct {
			field string
			d     time.Duration
		}{{"FINHold", p.FINHold}, {"RSTHold", p.RSTHold}} {
			if p.IdleMax+h.d > maxHold {
				if h.d > p.IdleMax {
					return bad(h.field, h.d, "want at most %v less IdleMax (%v)", maxHold, p.IdleMax)
				}
				return bad("IdleMax", p.IdleMax, "want at most %v less %s (%v)", maxHold, h.field, h.d)
			}
		}
	}
	return nil
}
