package regress

import (
	"errors"
	"testing"
)

// TestTimerGoldensAreCompared: each release reason of a golden (FIN B10,
// RST B11, idle B12, reclaimed B16) and the ports in use at the end are
// compared, and a change is one line naming the row, the field, expected
// and got, and the item: each golden below is altered by one.
func TestTimerGoldensAreCompared(t *testing.T) {
	for _, c := range []struct {
		file  string
		alter func(r *InstanceOutcome)
		want  string
	}{
		{"scenario-azure-lb-fin-240s.json", func(r *InstanceOutcome) { r.Releases.FIN-- }, "instance 0 tcp 203.0.113.1: releases.fin: expected 0, got 1 (B10)"},
		{"scenario-azure-lb-rst-15s.json", func(r *InstanceOutcome) { r.Releases.RST++ }, "instance 0 tcp 203.0.113.1: releases.rst: expected 2, got 1 (B11)"},
		{"real-idle-keepalive.json", func(r *InstanceOutcome) { r.Releases.Idle-- }, "instance 0 tcp 203.0.113.1: releases.idle: expected 0, got 1 (B12)"},
		{"real-idle-keepalive.json", func(r *InstanceOutcome) { r.Releases.Reclaimed++ }, "instance 0 tcp 203.0.113.1: releases.reclaimed: expected 1, got 0 (B16)"},
		{"real-idle-keepalive.json", func(r *InstanceOutcome) { r.InUse++ }, "instance 0 tcp 203.0.113.1: in_use_at_end: expected 2, got 1 (C9)"},
	} {
		e := mustLoad(t, "../captures/expected/"+c.file)
		c.alter(&e.Outcome.Instances[0])
		diff, err := copyExpectation(t, e).Check()
		if !errors.Is(err, ErrMismatch) || len(diff) != 1 || diff[0].String() != c.want {
			t.Errorf("%s altered: Check = %v, %v; want the one line %q", c.file, diff, err, c.want)
		}
	}
}
