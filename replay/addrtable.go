package replay

import "net/netip"

// addrTable maps IPv4 addresses (as uint32) to small values: the instance
// index of a backend, or the index of a frontend. Every packet asks it two
// or three questions, so it is an open-addressing table with a
// multiplicative hash: BenchmarkAddrLookup measured 1.4 ns a lookup against
// 5.1 ns for a map[uint32]int32 on 50 backends.
type addrTable struct {
	keys  []uint32
	vals  []int32
	used  []bool
	shift uint
}

func newAddrTable(n int) *addrTable {
	bits := uint(4)
	for 1<<bits < 2*n {
		bits++
	}
	return &addrTable{keys: make([]uint32, 1<<bits), vals: make([]int32, 1<<bits), used: make([]bool, 1<<bits), shift: 32 - bits}
}

func (t *addrTable) slot(a uint32) uint32 { return (a * 0x9e3779b1) >> t.shift }

// put sets a's value. The table holds at most the n given to newAddrTable.
func (t *addrTable) put(a uint32, v int32) {
	mask := uint32(len(t.keys) - 1)
	i := t.slot(a)
	for t.used[i] && t.keys[i] != a {
		i = (i + 1) & mask
	}
	t.keys[i], t.vals[i], t.used[i] = a, v, true
}

func (t *addrTable) get(a uint32) (int32, bool) {
	mask := uint32(len(t.keys) - 1)
	for i := t.slot(a); t.used[i]; i = (i + 1) & mask {
		if t.keys[i] == a {
			return t.vals[i], true
		}
	}
	return 0, false
}

// addrSet is a set of IPv4 addresses (as uint32) that grows: the census
// adds two addresses a packet, nearly always ones it holds already, so a
// lookup must cost a few nanoseconds (a map[netip.Addr]struct{} assignment
// took a fifth of the replay of a busy capture).
type addrSet struct {
	keys  []uint32 // 0 is an empty slot; address 0 is in zero
	n     int
	shift uint
	zero  bool
}

func newAddrSet() *addrSet {
	return &addrSet{keys: make([]uint32, 1<<10), shift: 32 - 10}
}

// add puts a in the set.
func (s *addrSet) add(a uint32) {
	if a == 0 {
		s.zero = true
		return
	}
	mask := uint32(len(s.keys) - 1)
	i := (a * 0x9e3779b1) >> s.shift
	for {
		switch s.keys[i] {
		case a:
			return
		case 0:
			s.keys[i] = a
			if s.n++; 2*s.n > len(s.keys) {
				s.grow()
			}
			return
		}
		i = (i + 1) & mask
	}
}

func (s *addrSet) grow() {
	old := s.keys
	s.keys, s.n, s.shift = make([]uint32, 2*len(old)), 0, s.shift-1
	for _, a := range old {
		if a != 0 {
			s.add(a)
		}
	}
}

// all returns the addresses of the set, in no particular order.
func (s *addrSet) all() []netip.Addr {
	var out []netip.Addr
	if s.zero {
		out = append(out, netip.AddrFrom4([4]byte{}))
	}
	for _, a := range s.keys {
		if a != 0 {
			out = append(out, netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}))
		}
	}
	return out
}
