package reference

import "net/netip"

// Lookup returns the SNAT endpoint of the live flow that an outbound packet
// with tuple out would use, without changing anything: no timer fires and
// no idle timer restarts (call Advance first to look up as of a time). It
// is how a replay turns a recorded reply into what the server sent to the
// SNAT IP:port.
func (e *Engine) Lookup(out Tuple) (netip.AddrPort, bool) {
	if (out.Proto != TCP && out.Proto != UDP) || !out.Src.Addr().Is4() || !out.Dst.Addr().Is4() {
		return netip.AddrPort{}, false
	}
	k := packKey(v4(out.Src.Addr()), out.Src.Port(), v4(out.Dst.Addr()), destPort(out.Proto, out.Dst.Port()), out.Proto)
	id, ok := e.lookup(&e.out, hashKey(k), k, false)
	if !ok {
		return netip.AddrPort{}, false
	}
	return e.snat(&e.flows[id]), true
}
