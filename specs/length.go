package specs

import (
	"context"
	"net/netip"
	"time"

	"github.com/natcheck/natcheck/reference"
)

// Length is how much profile time check c spends on the NATs it opens
// under impl's profile: the sum over its sessions of the time from Origin
// to the last packet sent or waited for, found by running c against the
// reference engine in that profile (virtual time: it takes a few
// milliseconds). A live device spends about that divided by its time
// scale on the wall clock; callers that run checks under a deadline start
// the longest first. A check the engine cannot run to its end (a
// capability or a configuration only the device has) is measured as far
// as it got.
func Length(impl Impl, c Check) time.Duration {
	eng := Engine(impl.profile())
	eng.Caps = AllCapabilities
	var total time.Duration
	open := eng.Open
	eng.Open = func(ctx context.Context, cfg reference.Config) (NAT, error) {
		n, err := open(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return &spanNAT{NAT: n, last: Origin, total: &total}, nil
	}
	Run(context.Background(), eng, c)
	return total
}

// spanNAT is a NAT that adds its span (Origin to the latest time it was
// given) to *total when it is closed.
type spanNAT struct {
	NAT
	last   time.Time
	total  *time.Duration
	closed bool
}

func (n *spanNAT) at(t time.Time) {
	if t.After(n.last) {
		n.last = t
	}
}

func (n *spanNAT) Send(ctx context.Context, p reference.Packet) (Delivery, error) {
	n.at(p.Time)
	return n.NAT.Send(ctx, p)
}

func (n *spanNAT) Wait(ctx context.Context, t time.Time) ([]reference.Packet, error) {
	n.at(t)
	return n.NAT.Wait(ctx, t)
}

func (n *spanNAT) SetPool(ctx context.Context, t time.Time, backends []netip.Addr, poolSize int) error {
	n.at(t)
	return n.NAT.SetPool(ctx, t, backends, poolSize)
}

func (n *spanNAT) Close() error {
	if !n.closed {
		n.closed = true
		*n.total += n.last.Sub(Origin)
	}
	return n.NAT.Close()
}
