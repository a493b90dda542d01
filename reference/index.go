package reference

// flowIndex maps a packed key to a flow ID. It is an open-addressing table
// with linear probing that stores only 8 bytes a slot: the flow ID and the
// low 32 bits of the key's hash, which both filter mismatches (the key
// itself is compared in the flow table) and give each entry's home slot for
// backward-shift deletion. A map[key]uint32 would spend 24 bytes a slot
// (a 16-byte key) plus control bytes; this keeps a flow's two index entries
// near 16 bytes in all, which is what holds a flow under 128 bytes.
type flowIndex struct {
	slots []uint64 // 0 = empty; else hash<<32 | id+1
	mask  uint64
	n     int
}

// key is a packed flow key: two words hold an IPv4 5-tuple (or, for the
// inbound index, the frontend IP's index in place of an address).
type key struct{ a, b uint64 }

func hashKey(k key) uint64 {
	// A multiply-xorshift mix (as in wyhash/murmur finalizers): cheap and
	// good enough for keys an attacker does not choose.
	// Equivalent mutants: any change to the mix changes speed, never an
	// answer (entries are matched on the whole key in the flow table).
	h := (k.a ^ 0x9e3779b97f4a7c15) * 0xbf58476d1ce4e5b9
	h ^= h >> 31
	h ^= k.b * 0x94d049bb133111eb
	h ^= h >> 29
	h *= 0xff51afd7ed558ccd
	return h ^ h>>32
}

func newFlowIndex(capacity int) flowIndex {
	n := 16
	// Equivalent mutants: the initial size and the load factor below are
	// speed choices; the table grows before it is full either way.
	for n*3/4 < capacity {
		n *= 2
	}
	return flowIndex{slots: make([]uint64, n), mask: uint64(n - 1)}
}

// insert adds id under hash h. The caller has checked the key is absent.
func (x *flowIndex) insert(h uint64, id uint32) {
	// Equivalent mutants: see newFlowIndex (any threshold that grows the
	// table before it fills gives the same answers).
	if (x.n+1)*4 > len(x.slots)*3 {
		x.grow()
	}
	x.put(uint32(h), id)
	x.n++
}

func (x *flowIndex) put(h32 uint32, id uint32) {
	i := uint64(h32) & x.mask
	for x.slots[i] != 0 {
		i = (i + 1) & x.mask
	}
	x.slots[i] = uint64(h32)<<32 | uint64(id+1)
}

func (x *flowIndex) grow() {
	old := x.slots
	x.slots = make([]uint64, len(old)*2)
	x.mask = uint64(len(x.slots) - 1)
	for _, s := range old {
		if s != 0 {
			x.put(uint32(s>>32), uint32(s)-1)
		}
	}
}

// remove deletes the entry for id (stored under hash h) and shifts later
// entries of its probe run back, so lookups need no tombstones.
func (x *flowIndex) remove(h uint64, id uint32) {
	want := uint64(uint32(h))<<32 | uint64(id+1)
	i := uint64(uint32(h)) & x.mask
	for x.slots[i] != want {
		if x.slots[i] == 0 {
			return
		}
		i = (i + 1) & x.mask
	}
	x.n--
	for {
		x.slots[i] = 0
		j := i
		for {
			j = (j + 1) & x.mask
			s := x.slots[j]
			if s == 0 {
				return
			}
			home := (s >> 32) & x.mask
			// Move s back to i unless its home lies cyclically in (i, j].
			// Equivalent mutants: "j > i" → "j >= i", "j < i" → "j <= i":
			// j never equals i here (slot i was just emptied, so the scan
			// returns when it comes back to it).
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				x.slots[i] = s
				i = j
				break
			}
		}
	}
}
