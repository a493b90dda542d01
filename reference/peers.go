package reference

// peerSet holds the peer ports a UDP mapping has sent to beyond its first
// one (B7, B8: the mapping is per destination IP and admits replies from
// the ports it sent to). Most mappings send to one port, which the flow
// itself holds (flow.dstPort) at no extra cost; the others keep their
// extra ports here in chunks of five, chained, found from the flow ID by a
// flowIndex. The index stores a bijective 32-bit mix of the flow ID as its
// hash, so a hash match is an ID match and a chunk needs no owner field: a
// mapping that sent to 4 ports costs one 16-byte chunk and one index entry
// (8 bytes at a load of 3/8 to 3/4). A map[uint32][]uint16 cost about 120
// bytes for the same mapping. Chunks are reused through a free list, so a
// replay at steady state does not allocate here.
type peerSet struct {
	heads  flowIndex // mixID(flow ID) → index of the flow's first chunk
	chunks []peerChunk
	free   uint32 // index+1 of the first free chunk, 0 for none
}

// peersPerChunk fills a chunk to 16 bytes.
const peersPerChunk = 5

type peerChunk struct {
	next  uint32 // index+1 of the flow's next chunk (or, free, the next free chunk); 0 for none
	n     uint16
	ports [peersPerChunk]uint16
}

func newPeerSet() peerSet { return peerSet{heads: newFlowIndex(0)} }

// mixID is a bijection of uint32 (odd multiplications and xor-shifts are
// each invertible) that spreads consecutive flow IDs over the index.
func mixID(id uint32) uint32 {
	h := id * 0x9e3779b1
	h ^= h >> 16
	h *= 0x85ebca6b
	return h ^ h>>13
}

// head returns the index of flow id's first chunk.
func (s *peerSet) head(id uint32) (uint32, bool) {
	h := mixID(id)
	x := &s.heads
	for i := uint64(h) & x.mask; ; i = (i + 1) & x.mask {
		v := x.slots[i]
		if v == 0 {
			return 0, false
		}
		if uint32(v>>32) == h {
			return uint32(v) - 1, true
		}
	}
}

// contains reports whether flow id has sent to port.
func (s *peerSet) contains(id uint32, port uint16) bool {
	c, ok := s.head(id)
	for ok {
		ch := &s.chunks[c]
		for _, p := range ch.ports[:ch.n] {
			if p == port {
				return true
			}
		}
		c, ok = ch.next-1, ch.next != 0
	}
	return false
}

// add records that flow id has sent to port; it does nothing if it had.
func (s *peerSet) add(id uint32, port uint16) {
	c, ok := s.head(id)
	if !ok {
		c = s.newChunk()
		s.heads.insert(uint64(mixID(id)), c)
	} else {
		for {
			ch := &s.chunks[c]
			for _, p := range ch.ports[:ch.n] {
				if p == port {
					return
				}
			}
			if ch.next == 0 {
				break
			}
			c = ch.next - 1
		}
		// Equivalent mutant: "==" → "!=" chains a new chunk for each port
		// instead of each five: more memory, the same ports found.
		if s.chunks[c].n == peersPerChunk {
			nc := s.newChunk()
			s.chunks[c].next = nc + 1
			c = nc
		}
	}
	ch := &s.chunks[c]
	ch.ports[ch.n] = port
	ch.n++
}

// drop forgets flow id's ports and frees its chunks.
func (s *peerSet) drop(id uint32) {
	c, ok := s.head(id)
	if !ok {
		return
	}
	s.heads.remove(uint64(mixID(id)), c)
	for {
		ch := &s.chunks[c]
		next := ch.next
		*ch = peerChunk{next: s.free}
		s.free = c + 1
		if next == 0 {
			return
		}
		c = next - 1
	}
}

func (s *peerSet) newChunk() uint32 {
	if s.free != 0 {
		c := s.free - 1
		s.free = s.chunks[c].next
		s.chunks[c] = peerChunk{}
		return c
	}
	s.chunks = append(s.chunks, peerChunk{})
	return uint32(len(s.chunks) - 1)
}
