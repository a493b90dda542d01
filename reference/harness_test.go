package reference

import (
	"net/netip"
	"testing"
	"time"
)

// t0 is the harness's time zero; every test time is an offset from it.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// harness drives one engine with times given as offsets from t0 and
// records its events and emitted packets.
type harness struct {
	t      *testing.T
	e      *Engine
	events []Event
	emit   []Packet
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t}
	cfg.Observer = func(ev Event) { h.events = append(h.events, ev) }
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.e = e
	return h
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func ip(s string) netip.Addr     { return netip.MustParseAddr(s) }

// oneIP is a config with one frontend and the given backends.
func oneIP(backends ...string) Config {
	c := Config{Frontends: []netip.Addr{ip("203.0.113.1")}}
	for _, b := range backends {
		c.Backends = append(c.Backends, ip(b))
	}
	return c
}

func (h *harness) pkt(at time.Duration, dir Dir, proto Proto, src, dst string, flags TCPFlags) Verdict {
	h.t.Helper()
	v, emit, err := h.e.Process(Packet{Time: t0.Add(at), Dir: dir, Tuple: Tuple{Proto: proto, Src: ap(src), Dst: ap(dst)}, Flags: flags}, h.emit[:0])
	if err != nil {
		h.t.Fatalf("Process at %v: %v", at, err)
	}
	h.emit = emit
	return v
}

func (h *harness) out(at time.Duration, proto Proto, src, dst string, flags TCPFlags) Verdict {
	h.t.Helper()
	return h.pkt(at, Outbound, proto, src, dst, flags)
}

func (h *harness) in(at time.Duration, proto Proto, src, dst string, flags TCPFlags) Verdict {
	h.t.Helper()
	return h.pkt(at, Inbound, proto, src, dst, flags)
}

// mustOut sends an outbound packet that must be translated and returns its
// SNAT endpoint.
func (h *harness) mustOut(at time.Duration, proto Proto, src, dst string, flags TCPFlags) netip.AddrPort {
	h.t.Helper()
	v := h.out(at, proto, src, dst, flags)
	if v.Action != Translated {
		h.t.Fatalf("at %v %s %s->%s: %v (%v, %v), want translated", at, proto, src, dst, v.Action, v.Reason, v.Behavior)
	}
	return v.Tuple.Src
}

func (h *harness) advance(at time.Duration) {
	h.t.Helper()
	emit, err := h.e.Advance(t0.Add(at), h.emit[:0])
	if err != nil {
		h.t.Fatalf("Advance(%v): %v", at, err)
	}
	h.emit = emit
}

func (h *harness) count(kind EventKind) int {
	n := 0
	for _, ev := range h.events {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

func (h *harness) releases() []Event {
	var r []Event
	for _, ev := range h.events {
		if ev.Kind == Released {
			r = append(r, ev)
		}
	}
	return r
}
