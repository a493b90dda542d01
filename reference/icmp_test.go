package reference

import (
	"testing"
	"time"
)

// TestICMPErrors drives the engine's ICMP error path (R6, L10, B15)
// directly, case by case: what each profile does with an error that
// quotes a packet of a live flow, and with the ways an error can fail to
// belong to one.
func TestICMPErrors(t *testing.T) {
	router := ap("192.0.2.254:0")
	inside, remote := ap("10.0.0.1:5000"), ap("198.51.100.1:53")
	icmpErr := func(dir Dir, src, dst string, q Tuple) Packet {
		return Packet{Time: t0.Add(time.Second), Dir: dir, Tuple: Tuple{Proto: ICMP, Src: ap(src), Dst: ap(dst)}, Embedded: &q}
	}
	for _, tc := range []struct {
		name    string
		profile Profile
		// err builds the error from the flow's SNAT endpoint.
		err      func(snat Tuple) Packet
		want     Verdict
		wantQuot *Tuple // the quoted tuple as it leaves, for a translated error
	}{
		{"linux: a router's error about a live flow goes to the inside endpoint", Linux(DefaultConntrack()),
			func(s Tuple) Packet {
				return icmpErr(Inbound, router.String(), s.Src.Addr().String()+":0", s)
			},
			Verdict{Action: Translated, Behavior: L10, Instance: 0, Tuple: Tuple{Proto: ICMP, Src: router, Dst: ap("10.0.0.1:0")}},
			&Tuple{Proto: UDP, Src: inside, Dst: remote}},
		{"linux: an inside host's error about a packet it got leaves from the SNAT endpoint", Linux(DefaultConntrack()),
			func(s Tuple) Packet {
				return icmpErr(Outbound, "10.0.0.1:0", "198.51.100.1:0", Tuple{Proto: UDP, Src: remote, Dst: inside})
			},
			Verdict{Action: Translated, Behavior: L10, Instance: 0, Tuple: Tuple{Proto: ICMP, Src: ap("203.0.113.1:0"), Dst: ap("198.51.100.1:0")}},
			nil}, // checked below: the quoted destination is the SNAT endpoint
		{"linux: another destination port is no flow", Linux(DefaultConntrack()),
			func(s Tuple) Packet {
				q := s
				q.Dst = ap("198.51.100.1:54")
				return icmpErr(Inbound, router.String(), s.Src.Addr().String()+":0", q)
			},
			Verdict{Action: Dropped, Reason: DropUnsolicited, Behavior: L10, Instance: -1}, nil},
		{"linux: an error to another address than the quoted source", Linux(DefaultConntrack()),
			func(s Tuple) Packet { return icmpErr(Inbound, router.String(), "203.0.113.9:0", s) },
			Verdict{Action: Dropped, Reason: DropUnsolicited, Behavior: L10, Instance: -1}, nil},
		{"linux: an inside host's error about another host's packet", Linux(DefaultConntrack()),
			func(s Tuple) Packet {
				return icmpErr(Outbound, "10.0.0.2:0", "198.51.100.1:0", Tuple{Proto: UDP, Src: remote, Dst: inside})
			},
			Verdict{Action: Dropped, Reason: DropUnsolicited, Behavior: L10, Instance: -1}, nil},
		{"linux: a quoted protocol no flow can have", Linux(DefaultConntrack()),
			func(s Tuple) Packet {
				q := s
				q.Proto = 47
				return icmpErr(Inbound, router.String(), s.Src.Addr().String()+":0", q)
			},
			Verdict{Action: Dropped, Reason: DropUnsupported, Behavior: L10, Instance: -1}, nil},
		{"linux: a quoted IPv6 packet", Linux(DefaultConntrack()),
			func(s Tuple) Packet {
				q := s
				q.Dst = ap("[2001:db8::1]:53")
				return icmpErr(Inbound, router.String(), s.Src.Addr().String()+":0", q)
			},
			Verdict{Action: Dropped, Reason: DropUnsupported, Behavior: L10, Instance: -1}, nil},
		{"linux: a quote on a packet that is not ICMP", Linux(DefaultConntrack()),
			func(s Tuple) Packet {
				p := icmpErr(Inbound, "198.51.100.1:53", s.Src.String(), s)
				p.Tuple.Proto = UDP
				return p
			},
			Verdict{Action: Dropped, Reason: DropUnsupported, Behavior: L10, Instance: -1}, nil},
		{"rfc: a quoted remote the filter does not admit", RFC(),
			func(s Tuple) Packet {
				q := s
				q.Dst = ap("198.51.100.1:54")
				return icmpErr(Inbound, router.String(), s.Src.Addr().String()+":0", q)
			},
			Verdict{Action: Dropped, Reason: DropUnsolicited, Behavior: R6, Instance: 0}, nil},
		{"rfc: a router's error about a live mapping", RFC(),
			func(s Tuple) Packet {
				return icmpErr(Inbound, router.String(), s.Src.Addr().String()+":0", s)
			},
			Verdict{Action: Translated, Behavior: R6, Instance: 0, Tuple: Tuple{Proto: ICMP, Src: router, Dst: ap("10.0.0.1:0")}},
			&Tuple{Proto: UDP, Src: inside, Dst: remote}},
		{"azure-lb: dropped as ICMP (B15)", AzureLB(),
			func(s Tuple) Packet {
				return icmpErr(Inbound, router.String(), s.Src.Addr().String()+":0", s)
			},
			Verdict{Action: Dropped, Reason: DropUnsupported, Behavior: B15, Instance: -1}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneIP("10.0.0.1", "10.0.0.2")
			cfg.Profile = tc.profile
			e, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			v, _, err := e.Process(Packet{Time: t0, Dir: Outbound, Tuple: Tuple{Proto: UDP, Src: inside, Dst: remote}}, nil)
			if err != nil || v.Action != Translated {
				t.Fatalf("the flow: %v, %v", v, err)
			}
			p := tc.err(v.Tuple)
			got, _, err := e.Process(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			quoted := got.Embedded
			got.Embedded = nil
			if got != tc.want {
				t.Errorf("Process(%v quoting %v) = %v, want %v", p.Tuple, p.Embedded, got, tc.want)
			}
			switch {
			case tc.want.Action != Translated:
				if quoted != nil {
					t.Errorf("a dropped error quotes %v", quoted)
				}
			case tc.wantQuot != nil:
				if quoted == nil || *quoted != *tc.wantQuot {
					t.Errorf("quoted %v, want %v", quoted, tc.wantQuot)
				}
			default:
				if want := (Tuple{Proto: UDP, Src: remote, Dst: v.Tuple.Src}); quoted == nil || *quoted != want {
					t.Errorf("quoted %v, want %v", quoted, want)
				}
			}
		})
	}
}

// TestICMPErrorMovesNoTimer: an error about a flow leaves its release time
// where its last packet put it (RFC 5382 REQ-10; conntrack's RELATED
// packets), under linux and rfc; and ProcessReply takes an error recorded
// inside (quoting the inside endpoint's own packet) as the NAT got it.
func TestICMPErrorMovesNoTimer(t *testing.T) {
	for _, p := range []Profile{Linux(DefaultConntrack()), RFC()} {
		t.Run(p.Name, func(t *testing.T) {
			cfg := oneIP("10.0.0.1")
			cfg.Profile = p
			e, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			inside, remote := ap("10.0.0.1:5000"), ap("198.51.100.1:53")
			v, _, _ := e.Process(Packet{Time: t0, Dir: Outbound, Tuple: Tuple{Proto: UDP, Src: inside, Dst: remote}}, nil)
			T := p.Conntrack.UDP
			if p.Name == NameRFC {
				T = p.RFC.UDP
			}
			// Recorded inside: router → inside host, quoting inside → remote.
			reply := Packet{Time: t0.Add(T - time.Millisecond), Tuple: Tuple{Proto: ICMP, Src: ap("192.0.2.254:0"), Dst: ap("10.0.0.1:0")},
				Embedded: &Tuple{Proto: UDP, Src: inside, Dst: remote}}
			got, snat, _, err := e.ProcessReply(reply, nil)
			if err != nil || got.Action != Translated || snat != v.Tuple.Src || got.Embedded == nil || got.Embedded.Src != inside {
				t.Fatalf("ProcessReply(error at T-1ms) = %v, SNAT %v, %v; want translated from SNAT endpoint %v", got, snat, err, v.Tuple.Src)
			}
			reply.Time = t0.Add(T)
			// Dropped as unsolicited, naming no instance: the error names no
			// live flow (the flow's instance would be a guess).
			if got, snat, _, _ := e.ProcessReply(reply, nil); got.Action != Dropped || got.Reason != DropUnsolicited || got.Instance != -1 || snat.IsValid() {
				t.Errorf("ProcessReply(error at T) = %v (reason %v, instance %d), SNAT %v; want dropped as unsolicited, instance -1: the error at T-1ms moved no timer",
					got, got.Reason, got.Instance, snat)
			}
		})
	}
}
