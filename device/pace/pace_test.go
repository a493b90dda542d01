package pace_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/natcheck/natcheck/device/pace"
	"github.com/natcheck/natcheck/specs"
)

// TestSentJudgesTheKernelTimestamp: the profile time a packet is judged
// at comes from the kernel's timestamp of the frame as it left, not from
// its schedule. At scale 10 with a 5 ms tolerance, a packet scheduled for
// profile time +60 s that left exactly 5 ms late is realised at +60.05 s
// (a timer boundary is judged there), one 5 ms + 1 ns late is a harness
// error (ErrLate) when it opens an instant, and holds the clock back by
// its lateness when it is part of a burst; one that left early is
// realised at its schedule.
func TestSentJudgesTheKernelTimestamp(t *testing.T) {
	const tol = 5 * time.Millisecond
	at := specs.Origin.Add(60 * time.Second)
	for _, tc := range []struct {
		name     string
		late     time.Duration
		opens    bool
		wantErr  bool
		realised time.Duration // after at
		held     time.Duration // how much later the next instant's wall time is
	}{
		{"on time", 0, true, false, 0, 0},
		{"early (the kernel sent it before its wall time)", -time.Millisecond, true, false, 0, 0},
		{"late by the tolerance", tol, true, false, 10 * tol, 0},
		{"late by the tolerance + 1 ns", tol + time.Nanosecond, true, true, 0, 0},
		{"late by the tolerance + 1 ns, in a burst", tol + time.Nanosecond, false, false, 0, tol + time.Nanosecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := pace.NewClock("test", 10, tol)
			if err := c.Until(context.Background(), specs.Origin, false); err != nil {
				t.Fatal(err)
			}
			wall := c.Wall(at)
			next := c.Wall(at.Add(time.Second))
			got, err := c.Sent("p", at, tc.opens, wall.Add(tc.late))
			if tc.wantErr {
				if !errors.Is(err, pace.ErrLate) {
					t.Fatalf("Sent(%v late) = %v, %v; want ErrLate", tc.late, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Sent(%v late): %v", tc.late, err)
			}
			if want := at.Add(tc.realised); !got.Equal(want) {
				t.Errorf("Sent(%v late) realised at +%v, want +%v", tc.late, got.Sub(specs.Origin), want.Sub(specs.Origin))
			}
			if d := c.Wall(at.Add(time.Second)).Sub(next); d != tc.held {
				t.Errorf("the next instant moved by %v, want %v", d, tc.held)
			}
		})
	}
}
