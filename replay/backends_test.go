package replay

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestChooseBackends(t *testing.T) {
	c := newCensus()
	for _, p := range [][2]string{
		{"10.0.0.9", "198.51.100.1"}, {"10.0.0.2", "198.51.100.1"}, {"10.0.1.7", "10.0.0.9"},
		{"192.168.1.5", "192.168.1.1"}, {"198.51.100.1", "10.0.0.2"}, {"10.0.0.3", "224.0.0.251"}, {"10.0.0.2", "10.0.0.255"}, {"10.0.0.0", "10.0.0.9"},
	} {
		c.add(netip.MustParseAddr(p[0]), netip.MustParseAddr(p[1]))
	}
	for _, tc := range []struct {
		flags string
		want  string
	}{
		{"", "[10.0.0.2 10.0.0.9]"},                                       // detection: private to public only
		{"10.0.1.7,10.0.0.0/24", "[10.0.1.7 10.0.0.2 10.0.0.3 10.0.0.9]"}, // order given; prefix ascending
		{"10.0.0.9,10.0.0.0/24", "[10.0.0.9 10.0.0.2 10.0.0.3]"},          // no duplicates
		{"10.9.9.9", "[10.9.9.9]"},                                        // an address stands for itself
	} {
		specs, err := ParseBackends(tc.flags)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := chooseBackends(specs, c)
		if fmt.Sprint(got) != tc.want {
			t.Errorf("chooseBackends(%q) = %v, want %s", tc.flags, got, tc.want)
		}
	}
	for _, bad := range []string{"10.0.0.1/33", "2001:db8::/64", "banana"} {
		if _, err := ParseBackends(bad); err == nil {
			t.Errorf("ParseBackends(%q) = nil error", bad)
		}
	}
}
