package replay

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestChooseBackends(t *testing.T) {
	c := newCensus()
	for _, p := range [][2]string{
		{"10.0.0.9", "198.51.100.1"}, {"10.0.0.2", "198.51.100.1"}, {"10.0.1.7", "10.0.0.9"},
		{"192.168.1.5", "192.168.1.1"}, {"198.51.100.1", "10.0.0.2"}, {"10.0.0.3", "224.0.0.251"}, {"10.0.0.2", "10.0.0.255"}, {"10.0.0.0", "10.0.0.9"},
	} {
		c.add(v4(netip.MustParseAddr(p[0])), v4(netip.MustParseAddr(p[1])))
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

// TestCensusAddressClasses: private4 and public4, on addresses as uint32,
// agree with netip's IsPrivate and isPublic on every /16 boundary, the
// addresses around it, and a million random addresses.
func TestCensusAddressClasses(t *testing.T) {
	check := func(a uint32) {
		addr := netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
		if got, want := private4(a), addr.IsPrivate(); got != want {
			t.Fatalf("private4(%v) = %v, want %v", addr, got, want)
		}
		if got, want := public4(a), isPublic(addr); got != want {
			t.Fatalf("public4(%v) = %v, want %v", addr, got, want)
		}
	}
	for hi := uint32(0); hi < 1<<16; hi++ {
		for _, lo := range []uint32{0, 1, 0xfffe, 0xffff} {
			check(hi<<16 | lo)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		check(r.Uint32())
	}
}

// TestAddrSet: an addrSet holds what was added, through its growth, and
// address 0.
func TestAddrSet(t *testing.T) {
	s := newAddrSet()
	want := map[uint32]bool{}
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 50_000 {
		a := r.Uint32() >> (i % 20) // many repeats among the small ones
		s.add(a)
		want[a] = true
	}
	s.add(0)
	want[0] = true
	got := s.all()
	if len(got) != len(want) {
		t.Fatalf("%d addresses, want %d", len(got), len(want))
	}
	for _, a := range got {
		if !want[v4(a)] {
			t.Fatalf("%v was never added", a)
		}
	}
}
