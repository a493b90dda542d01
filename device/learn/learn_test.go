package learn

import (
	"hash/fnv"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/natcheck/natcheck/device/link"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/frame"
)

var (
	t0     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	inside = netip.MustParseAddrPort("10.0.0.1:4000")
	srv    = netip.MustParseAddrPort("198.51.100.1:443")
	public = netip.MustParseAddrPort("203.0.113.1:1500")
	macA   = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	macB   = net.HardwareAddr{2, 0, 0, 0, 0, 2}
)

// nat is a NAT written for the test: it rewrites an outbound segment's
// source to public, adds shift to its sequence number and sets its IPv4
// ID to newID (when not zero). It returns the decoded frame as the
// outside sees it.
func nat(t *testing.T, s link.Segment, shift uint32, newID uint16) *frame.Frame {
	t.Helper()
	s.Tuple.Src = public
	s.Seq += shift
	if newID != 0 {
		s.ID = newID
	}
	var f frame.Frame
	if err := frame.Decode(layers.LinkTypeEthernet, link.AppendFrame(nil, macA, macB, s), &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

func sent(id uint64, s link.Segment, at time.Duration) Sent {
	return Sent{ID: id, Dir: reference.Outbound, Tuple: s.Tuple, Flags: s.Flags, Seq: s.Seq, IPID: s.ID, Payload: Hash(s.Payload), At: t0.Add(at)}
}

func TestMatcher(t *testing.T) {
	tcp := reference.Tuple{Proto: reference.TCP, Src: inside, Dst: srv}
	syn := link.Segment{Tuple: tcp, Flags: reference.SYN, Seq: 1000, ID: 7}
	ack := link.Segment{Tuple: tcp, Flags: reference.ACK, Seq: 1001, Ack: 5, ID: 8}
	data := link.Segment{Tuple: tcp, Flags: reference.ACK | reference.PSH, Seq: 1001, Ack: 5, ID: 9, Payload: []byte("GET /")}
	for _, tc := range []struct {
		name   string
		fields Fields
		shift  uint32
		newID  func(uint16) uint16
	}{
		{"keeps IP ID and sequence numbers (Linux)", Fields{IPID: true}, 0, func(uint16) uint16 { return 0 }},
		{"rewrites IP ID, shifts sequence numbers", Fields{SeqShift: true}, 0x8000_0000, func(id uint16) uint16 { return id + 1000 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(tc.fields)
			s := sent(1, syn, 0)
			m.Add(s)
			got, ok := m.Observe(reference.Outbound, nat(t, syn, tc.shift, tc.newID(syn.ID)), Hash(nil), t0.Add(time.Millisecond))
			if !ok || got.Sent.ID != 1 || got.Out.Src != public || !got.New || got.Latency != time.Millisecond {
				t.Fatalf("Observe(SYN) = %+v, %v; want packet 1 from %v, new, 1 ms", got, ok, public)
			}
			if p, ok := m.Public(tcp); !ok || p != public {
				t.Errorf("Public(%v) = %v, %v; want %v", tcp, p, ok, public)
			}
			if in, ok := m.Inside(reference.Tuple{Proto: reference.TCP, Src: public, Dst: srv}); !ok || in != tcp {
				t.Errorf("Inside = %v, %v; want %v", in, ok, tcp)
			}
			if sh, ok := m.Shift(tcp); !ok || sh != tc.shift {
				t.Errorf("Shift = %#x, %v; want %#x", sh, ok, tc.shift)
			}
			// An ACK and a data segment in flight at once: told apart by
			// payload.
			m.Add(sent(2, ack, 2*time.Millisecond))
			m.Add(sent(3, data, 2*time.Millisecond))
			if got, ok := m.Observe(reference.Outbound, nat(t, data, tc.shift, tc.newID(data.ID)), Hash(data.Payload), t0.Add(3*time.Millisecond)); !ok || got.Sent.ID != 3 || got.New {
				t.Errorf("Observe(data) = %+v, %v; want packet 3, known mapping", got, ok)
			}
			// A frame with a sequence number off by one is no translation.
			off := ack
			off.Seq++
			if got, ok := m.Observe(reference.Outbound, nat(t, off, tc.shift, tc.newID(ack.ID)), Hash(nil), t0.Add(3*time.Millisecond)); ok {
				t.Errorf("Observe(ACK with seq+1) = %+v, want no match", got)
			}
			if got, ok := m.Observe(reference.Outbound, nat(t, ack, tc.shift, tc.newID(ack.ID)), Hash(nil), t0.Add(3*time.Millisecond)); !ok || got.Sent.ID != 2 {
				t.Errorf("Observe(ACK) = %+v, %v; want packet 2", got, ok)
			}
			if m.InFlight() != 0 {
				t.Errorf("InFlight() = %d, want 0", m.InFlight())
			}
		})
	}
}

// TestCollidesAndExpire: without the IP ID, two SYNs to one server share
// a key; the second is held back until the first is matched or expired.
func TestCollidesAndExpire(t *testing.T) {
	m := New(Fields{SeqShift: true})
	a := link.Segment{Tuple: reference.Tuple{Proto: reference.TCP, Src: inside, Dst: srv}, Flags: reference.SYN, Seq: 1, ID: 1}
	b := a
	b.Tuple.Src = netip.MustParseAddrPort("10.0.0.1:4001")
	b.ID = 2
	m.Add(sent(1, a, 0))
	if !m.Collides(sent(2, b, 0)) {
		t.Fatal("Collides(second SYN to the same server) = false, want true")
	}
	other := b
	other.Tuple.Dst = netip.MustParseAddrPort("198.51.100.2:443")
	if m.Collides(sent(3, other, 0)) {
		t.Error("Collides(SYN to another server) = true, want false")
	}
	m.Add(sent(3, other, 5*time.Millisecond))
	dropped := m.Expire(t0.Add(time.Millisecond), nil)
	if len(dropped) != 1 || dropped[0].ID != 1 {
		t.Fatalf("Expire(+1ms) = %+v, want packet 1", dropped)
	}
	if m.Collides(sent(2, b, 0)) || m.InFlight() != 1 {
		t.Errorf("after expiry: Collides = true or InFlight = %d, want false, 1", m.InFlight())
	}
	// Packet 1 comes out after all: a late match, not the NAT's own frame.
	if got, ok := m.Observe(reference.Outbound, nat(t, a, 7, 99), Hash(nil), t0.Add(time.Second)); !ok || !got.Late || got.Sent.ID != 1 {
		t.Errorf("Observe(expired SYN) = %+v, %v; want packet 1, late", got, ok)
	}
}

// TestInbound: a reply is matched only when it reaches the inside endpoint
// its mapping names.
func TestInbound(t *testing.T) {
	m := New(Fields{IPID: true})
	udp := reference.Tuple{Proto: reference.UDP, Src: inside, Dst: srv}
	out := link.Segment{Tuple: udp, ID: 1, Payload: []byte("q")}
	m.Add(sent(1, out, 0))
	if _, ok := m.Observe(reference.Outbound, nat(t, out, 0, 0), Hash(out.Payload), t0); !ok {
		t.Fatal("outbound UDP not matched")
	}
	reply := link.Segment{Tuple: reference.Tuple{Proto: reference.UDP, Src: srv, Dst: public}, ID: 9, Payload: []byte("a")}
	m.Add(Sent{ID: 2, Dir: reference.Inbound, Tuple: reply.Tuple, IPID: 9, Payload: Hash(reply.Payload), At: t0})
	for _, tc := range []struct {
		dst  netip.AddrPort
		want bool
	}{{netip.MustParseAddrPort("10.0.0.2:4000"), false}, {inside, true}} {
		s := reply
		s.Tuple.Dst = tc.dst
		var f frame.Frame
		if err := frame.Decode(layers.LinkTypeEthernet, link.AppendFrame(nil, macA, macB, s), &f); err != nil {
			t.Fatal(err)
		}
		if _, ok := m.Observe(reference.Inbound, &f, Hash(s.Payload), t0); ok != tc.want {
			t.Errorf("reply delivered to %v: matched %v, want %v", tc.dst, ok, tc.want)
		}
	}
}

// TestHashIsFNV1a: Hash is 64-bit FNV-1a, as hash/fnv computes it.
func TestHashIsFNV1a(t *testing.T) {
	for _, in := range []string{"", "a", "natcheck calibration 7", string(make([]byte, 1500))} {
		h := fnv.New64a()
		h.Write([]byte(in))
		if got, want := Hash([]byte(in)), h.Sum64(); got != want {
			t.Errorf("Hash(%q) = %#x, want %#x", in, got, want)
		}
	}
}

// TestPayloadKeyOfICMPErrors: an ICMP error and its translation share a
// payload key whichever side it comes from (the NAT rewrites the quote's
// mapped endpoint and checksums, not its protocol or remote endpoint),
// and an error quoting another remote port, protocol or remote address
// does not.
func TestPayloadKeyOfICMPErrors(t *testing.T) {
	router := netip.MustParseAddrPort("192.0.2.254:0")
	key := func(dir reference.Dir, src, dst netip.AddrPort, q reference.Tuple) uint64 {
		t.Helper()
		data := link.AppendFrame(nil, macA, macB, link.Segment{Tuple: reference.Tuple{Proto: reference.ICMP, Src: src, Dst: dst}, ICMPType: 3, ICMPCode: 3, Quote: &q})
		var f frame.Frame
		if err := frame.Decode(layers.LinkTypeEthernet, data, &f); err != nil || !f.Quoted {
			t.Fatalf("decode: %v (quoted %v)", err, f.Quoted)
		}
		return PayloadKey(dir, data, &f)
	}
	udp := func(src, dst netip.AddrPort) reference.Tuple {
		return reference.Tuple{Proto: reference.UDP, Src: src, Dst: dst}
	}
	in := netip.AddrPortFrom(inside.Addr(), 0)
	pub := netip.AddrPortFrom(public.Addr(), 0)
	// From the outside, about the packet the NAT sent; seen inside, about
	// the one the inside host sent.
	sent := key(reference.Inbound, router, pub, udp(public, srv))
	if got := key(reference.Inbound, router, in, udp(inside, srv)); got != sent {
		t.Errorf("inbound error: key %#x sent, %#x translated", sent, got)
	}
	for _, other := range []reference.Tuple{
		udp(public, netip.AddrPortFrom(srv.Addr(), srv.Port()+1)),
		udp(public, netip.MustParseAddrPort("198.51.100.2:443")),
		{Proto: reference.TCP, Src: public, Dst: srv},
	} {
		if key(reference.Inbound, router, pub, other) == sent {
			t.Errorf("inbound error quoting %v: same key as quoting %v", other, udp(public, srv))
		}
	}
	// From the inside, about a packet the inside host received: its
	// destination is the one the NAT maps.
	out := key(reference.Outbound, in, netip.AddrPortFrom(srv.Addr(), 0), udp(srv, inside))
	if got := key(reference.Outbound, pub, netip.AddrPortFrom(srv.Addr(), 0), udp(srv, public)); got != out {
		t.Errorf("outbound error: key %#x sent, %#x translated", out, got)
	}
	if key(reference.Outbound, in, netip.AddrPortFrom(srv.Addr(), 0), udp(netip.MustParseAddrPort("198.51.100.2:443"), inside)) == out {
		t.Error("outbound error quoting another remote: same key")
	}
}
