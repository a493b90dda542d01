package livereplay

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"

	"github.com/natcheck/natcheck/reference"
)

// ctEvent is one conntrack event of the device: a flow created or
// destroyed, by its original tuple, with its reply tuple's destination
// (the public endpoint SNAT gave it).
type ctEvent struct {
	at      time.Time
	destroy bool
	orig    reference.Tuple
	public  netip.AddrPort
}

// ctListener collects the device's conntrack events. The socket's receive
// buffer is 16 MB: with less, a burst of new flows overflows it and the
// kernel stops the listener.
type ctListener struct {
	conn   *conntrack.Conn
	ch     chan conntrack.Event
	errs   chan error
	mu     sync.Mutex
	events []ctEvent
	lost   error
	quit   chan struct{}
	done   chan struct{}
}

// listenConntrack subscribes to the new and destroy events of the
// network namespace of fd.
func listenConntrack(fd int) (*ctListener, error) {
	c, err := conntrack.Dial(&netlink.Config{NetNS: fd})
	if err != nil {
		return nil, fmt.Errorf("conntrack events: %w", err)
	}
	if err := c.SetReadBuffer(16 << 20); err != nil {
		c.Close()
		return nil, fmt.Errorf("conntrack events: receive buffer: %w", err)
	}
	l := &ctListener{conn: c, ch: make(chan conntrack.Event, 4096), quit: make(chan struct{}), done: make(chan struct{})}
	errs, err := c.Listen(l.ch, 1, []netfilter.NetlinkGroup{netfilter.GroupCTNew, netfilter.GroupCTDestroy})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("conntrack events: %w", err)
	}
	l.errs = errs
	go l.collect()
	return l, nil
}

func (l *ctListener) collect() {
	defer close(l.done)
	for {
		select {
		case ev := <-l.ch:
			l.add(ev)
		case err := <-l.errs:
			if err != nil {
				l.mu.Lock()
				if l.lost == nil {
					l.lost = err
				}
				l.mu.Unlock()
			}
		case <-l.quit:
			for {
				select {
				case ev := <-l.ch:
					l.add(ev)
				default:
					return
				}
			}
		}
	}
}

// add records one event.
func (l *ctListener) add(ev conntrack.Event) {
	if ev.Flow == nil || (ev.Type != conntrack.EventNew && ev.Type != conntrack.EventDestroy) {
		return
	}
	o, rp := ev.Flow.TupleOrig, ev.Flow.TupleReply
	e := ctEvent{at: time.Now(), destroy: ev.Type == conntrack.EventDestroy,
		orig:   reference.Tuple{Proto: reference.Proto(o.Proto.Protocol), Src: netip.AddrPortFrom(o.IP.SourceAddress, o.Proto.SourcePort), Dst: netip.AddrPortFrom(o.IP.DestinationAddress, o.Proto.DestinationPort)},
		public: netip.AddrPortFrom(rp.IP.DestinationAddress, rp.Proto.DestinationPort)}
	if e.orig.Proto == reference.ICMP {
		e.orig.Src = netip.AddrPortFrom(o.IP.SourceAddress, o.Proto.ICMPID)
		e.orig.Dst = netip.AddrPortFrom(o.IP.DestinationAddress, 0)
		e.public = netip.AddrPortFrom(rp.IP.DestinationAddress, rp.Proto.ICMPID)
	}
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// stop waits a moment for the last events, stops the listener and
// returns what it collected, and the error that lost some, if any.
func (l *ctListener) stop() ([]ctEvent, error) {
	time.Sleep(50 * time.Millisecond)
	close(l.quit)
	<-l.done
	l.conn.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.events, l.lost
}
