package replay

import (
	"math/rand/v2"
	"testing"
)

func TestAddrTableAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 50, 1000} {
		tab, want := newAddrTable(n), map[uint32]int32{}
		for len(want) < n {
			a := r.Uint32() & 0x0a00ffff // clustered, like real backends
			want[a] = int32(len(want))
			tab.put(a, want[a])
		}
		for a, v := range want {
			if got, ok := tab.get(a); !ok || got != v {
				t.Errorf("n=%d: get(%08x) = %d, %v; want %d", n, a, got, ok, v)
			}
		}
		for range 1000 {
			a := r.Uint32()
			_, inMap := want[a]
			if _, ok := tab.get(a); ok != inMap {
				t.Errorf("n=%d: get(%08x) found=%v, want %v", n, a, ok, inMap)
			}
		}
	}
}

// BenchmarkAddrLookup compares addrTable with a Go map on 50 backends,
// looking up a mix of backends and servers, as the replay does.
func BenchmarkAddrLookup(b *testing.B) {
	tab, m := newAddrTable(50), map[uint32]int32{}
	for i := range 50 {
		a := uint32(0x0a000001 + i)
		tab.put(a, int32(i))
		m[a] = int32(i)
	}
	keys := make([]uint32, 1024)
	for i := range keys {
		keys[i] = uint32(0x0a000001 + i%100) // half backends, half not
	}
	b.Run("table", func(b *testing.B) {
		n := 0
		for i := 0; i < b.N; i++ {
			if _, ok := tab.get(keys[i&1023]); ok {
				n++
			}
		}
		_ = n
	})
	b.Run("map", func(b *testing.B) {
		n := 0
		for i := 0; i < b.N; i++ {
			if _, ok := m[keys[i&1023]]; ok {
				n++
			}
		}
		_ = n
	})
}
