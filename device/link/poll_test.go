package link

import (
	"testing"
	"time"
)

// TestPollTimeout: a deadline already passed polls without waiting (a
// negative timeout would wait forever: TestLinuxStandIn once hung 12
// minutes on one), and a wait shorter than a millisecond is not cut to a
// busy 0.
func TestPollTimeout(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int
	}{
		{-time.Second, 0}, {-time.Millisecond, 0}, {-1, 0}, {0, 0},
		{1, 1}, {time.Millisecond - 1, 1}, {time.Millisecond, 1},
		{time.Millisecond + 1, 2}, {50 * time.Millisecond, 50},
	} {
		if got := pollTimeout(c.d); got != c.want {
			t.Errorf("pollTimeout(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}
