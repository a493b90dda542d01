package fault

import "testing"

func TestString(t *testing.T) {
	for _, tc := range []struct {
		s    Set
		want string
	}{
		{0, "none"},
		{TCPSameDestination, "tcp-same-destination"},
		{StrictAlways, "strict-always"},
		{UDPFullTuple | LateRelease, "udp-full-tuple+late-release"},
		{1 << 31, "unknown"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("Set(%#x).String() = %q, want %q", uint32(tc.s), got, tc.want)
		}
	}
}

func TestAllNamed(t *testing.T) {
	all := All()
	if len(all) != len(names) {
		t.Fatalf("All() has %d mutations, names has %d", len(all), len(names))
	}
	seen := map[string]bool{}
	for _, m := range all {
		n := m.String()
		if seen[n] || n == "" {
			t.Errorf("mutation %#x: name %q empty or repeated", uint32(m), n)
		}
		seen[n] = true
		if !m.Has(m) || Set(0).Has(m) {
			t.Errorf("Has is wrong for %v", m)
		}
	}
}
