package specs

import (
	"context"
	"testing"

	"github.com/natcheck/natcheck/reference"
)

// quoteKept forwards ICMP errors with their outer header translated but
// the quoted packet as it came in: the inside host gets an error about a
// packet it never sent (breaks R6, L10).
type quoteKept struct{ NAT }

func (n quoteKept) Send(ctx context.Context, p reference.Packet) (Delivery, error) {
	d, err := n.NAT.Send(ctx, p)
	if d.Forwarded && p.Embedded != nil {
		d.Packet.Embedded = p.Embedded
	}
	return d, err
}

// errorsDropped drops every ICMP error, as a NAT that translates ICMP echo
// only would (breaks R6, L10).
type errorsDropped struct{ NAT }

func (n errorsDropped) Send(ctx context.Context, p reference.Packet) (Delivery, error) {
	if p.Embedded != nil {
		p.Embedded, p.ICMPOther = nil, true
	}
	return n.NAT.Send(ctx, p)
}

// errorsRefresh makes every translated ICMP error refresh its flow, by
// sending a packet of the flow from inside at the error's time (breaks
// L10's RELATED errors, and R6's mapping timer through R4).
type errorsRefresh struct{ NAT }

func (n errorsRefresh) Send(ctx context.Context, p reference.Packet) (Delivery, error) {
	d, err := n.NAT.Send(ctx, p)
	if err == nil && d.Forwarded && p.Embedded != nil && p.Dir == reference.Inbound && p.Embedded.Proto == reference.UDP {
		q := d.Packet.Embedded
		_, err = n.NAT.Send(ctx, reference.Packet{Time: p.Time, Dir: reference.Outbound, Tuple: *q})
	}
	return d, err
}

// TestICMPErrorChecksCatchBrokenNATs: the ICMP error checks of rfc (R6)
// and linux (L10) fail on the profile's engine behind a wrapper that
// breaks one property of error translation, and the azure-lb check (B15)
// fails on an azure-lb engine that translates ICMP.
func TestICMPErrorChecksCatchBrokenNATs(t *testing.T) {
	wrapped := func(p reference.Profile, name string, w func(NAT) NAT) Impl {
		im := Engine(p)
		im.Name = "mutant:" + name
		open := im.Open
		im.Open = func(ctx context.Context, cfg reference.Config) (NAT, error) {
			n, err := open(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return w(n), nil
		}
		return im
	}
	icmpLB := referenceImpl("mutant:azure-lb-translates-icmp", func(p *reference.Profile) { p.ICMPEcho = true }, nil)
	type tcase struct {
		im Impl
		id reference.Behavior
	}
	var cases []tcase
	for _, p := range []reference.Profile{reference.RFC(), reference.Linux(reference.DefaultConntrack())} {
		id := reference.R6
		if p.Name == reference.NameLinux {
			id = reference.L10
		}
		cases = append(cases,
			tcase{wrapped(p, "quote-kept", func(n NAT) NAT { return quoteKept{n} }), id},
			tcase{wrapped(p, "errors-dropped", func(n NAT) NAT { return errorsDropped{n} }), id},
			tcase{wrapped(p, "errors-refresh", func(n NAT) NAT { return errorsRefresh{n} }), id})
	}
	cases = append(cases, tcase{icmpLB, reference.B15})
	for _, tc := range cases {
		c := icmpErrorChecks(tc.id)
		t.Run(tc.im.Profile.Name+"/"+tc.im.Name, func(t *testing.T) {
			mx, err := Verify(context.Background(), []Impl{tc.im}, []Check{c}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if st := mx.Rows[0].Cells[0].Status; st != Fails {
				t.Errorf("%s on %s: %v, want fails", c.Text(), tc.im.Name, st)
			}
			// The same check conforms on the unbroken engine.
			good := Engine(tc.im.Profile)
			if tc.id == reference.B15 {
				good = Reference()
			}
			mx, err = Verify(context.Background(), []Impl{good}, []Check{c}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if st := mx.Rows[0].Cells[0].Status; st != Conforms {
				t.Errorf("%s on %s: %v, want conforms", c.Text(), good.Name, st)
			}
		})
	}
}
