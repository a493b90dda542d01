package specs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// TestLength: a check's length is the sum of its sessions' spans, worked
// out by hand from the check's code: B14's silent expiry is one session
// to T + 5 min (T = 4 min + 2 ms); L5's SYN_SENT life check is two
// sessions, probed at T − ε and at T (ε = 1 ms on the engine), T the
// profile's syn_sent timeout.
func TestLength(t *testing.T) {
	ct := reference.DefaultConntrack()
	linux := specs.Engine(reference.Linux(ct))
	for _, tc := range []struct {
		impl  specs.Impl
		title string
		want  time.Duration
	}{
		{specs.Reference(), "B14: idle expiry is silent", 9*time.Minute + 2*time.Millisecond},
		{linux, "L5: a SYN with no answer (SYN_SENT)", 2*ct.SynSent - time.Millisecond},
	} {
		checks, err := specs.ChecksFor(tc.impl.Profile.Name)
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, c := range checks {
			if strings.HasPrefix(c.Text(), tc.title) {
				found = true
				if got := specs.Length(tc.impl, c); got != tc.want {
					t.Errorf("Length(%s) = %v, want %v", c.Text(), got, tc.want)
				}
			}
		}
		if !found {
			t.Errorf("no check %q", tc.title)
		}
	}
}
