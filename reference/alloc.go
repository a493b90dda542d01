package reference

import (
	"cmp"
	"math/bits"
	"net/netip"
	"slices"
)

// blockRef names one block of BlockSize ports: frontend IP index and block
// number on that IP. Blocks order by IP, then by number: C3's order.
type blockRef struct {
	ip  uint16
	idx uint16
}

func cmpBlock(a, b blockRef) int {
	if c := cmp.Compare(a.ip, b.ip); c != 0 {
		return c
	}
	return cmp.Compare(a.idx, b.idx)
}

// allocator divides the frontend IPs' blocks among instances (B2–B5, C2,
// B16). Both protocols share one layout (B1).
type allocator struct {
	prof        *Profile
	perInstance int // the outbound rule's value; 0 for the default table
	nIP         int
	blocksPerIP int
	used        []uint64 // bit per block, IP-major: C3 order
	firstFree   int      // no free block below this global index
	inst        [][]blockRef
}

func newAllocator(p *Profile, nIP, pool, perInstance int) *allocator {
	a := &allocator{prof: p, perInstance: perInstance, nIP: nIP, blocksPerIP: p.PortsPerIP / p.BlockSize}
	// Equivalent mutant: "/64" → "*64" only makes the bitmap longer (its
	// extra words stay zero and lie past total, which take never reaches).
	a.used = make([]uint64, (nIP*a.blocksPerIP+63)/64)
	a.resize(pool)
	return a
}

func (a *allocator) total() int { return a.nIP * a.blocksPerIP }

// take returns the n lowest free blocks in C3 order, or nil when fewer than
// n are free.
func (a *allocator) take(n int) []blockRef {
	if n == 0 {
		return nil
	}
	out := make([]blockRef, 0, n)
	for g := a.firstFree; g < a.total() && len(out) < n; {
		w := a.used[g/64] | (1<<(g%64) - 1) // ignore bits below g
		if w == ^uint64(0) {
			g = (g/64 + 1) * 64
			continue
		}
		g = g/64*64 + bits.TrailingZeros64(^w)
		if g >= a.total() {
			break
		}
		out = append(out, blockRef{uint16(g / a.blocksPerIP), uint16(g % a.blocksPerIP)})
		g++
	}
	if len(out) < n {
		return nil
	}
	for _, b := range out {
		g := a.global(b)
		a.used[g/64] |= 1 << (g % 64)
	}
	a.firstFree = a.global(out[len(out)-1]) + 1
	return out
}

func (a *allocator) global(b blockRef) int { return int(b.ip)*a.blocksPerIP + int(b.idx) }

func (a *allocator) free(bs []blockRef) {
	for _, b := range bs {
		g := a.global(b)
		a.used[g/64] &^= 1 << (g % 64)
		a.firstFree = min(a.firstFree, g)
	}
}

// resize changes the pool to n instances and returns the blocks each
// existing instance lost (B16: the default table keeps the lower part of an
// instance's blocks when the pool crosses into a smaller tier; a manual
// allocation never shrinks; instances past n lose everything).
func (a *allocator) resize(n int) (lost [][]blockRef) {
	bs := a.prof.BlockSize
	target := instanceTarget(a.prof, n, a.nIP, a.perInstance) / bs
	if a.perInstance == 0 && n > a.prof.maxPool() {
		target = 0
	}
	lost = make([][]blockRef, len(a.inst))
	for i := n; i < len(a.inst); i++ {
		lost[i] = a.inst[i]
		a.free(a.inst[i])
	}
	// Equivalent mutant: "<" → "<=" reslices to the same length.
	if n < len(a.inst) {
		a.inst = a.inst[:n]
	}
	for i, blocks := range a.inst {
		// Equivalent mutant: ">" → ">=" at len == target frees nothing and
		// keeps the same blocks.
		if len(blocks) > target && a.perInstance == 0 {
			lost[i] = slices.Clone(blocks[target:])
			a.free(blocks[target:])
			a.inst[i] = blocks[:target:target]
		}
	}
	for i, blocks := range a.inst {
		// Equivalent mutants: "need > 0" → ">=" asks take for 0 blocks,
		// which returns none. "len(blocks) == 0" → "!=": under a manual
		// allocation an instance holds its total or nothing, and one with
		// nothing exists only when no capacity is left; capacity comes back
		// only by truncating the pool, which removes that instance first
		// (instances are added and removed at the end), so take would
		// return none either way.
		if need := target - len(blocks); need > 0 && (a.perInstance == 0 || len(blocks) == 0) {
			if more := a.take(need); more != nil {
				a.inst[i] = append(blocks, more...)
				slices.SortFunc(a.inst[i], cmpBlock)
			}
		}
	}
	for len(a.inst) < n {
		// A manual allocation past capacity leaves the instance with no
		// ports (B16); take returns nil then.
		a.inst = append(a.inst, a.take(target))
	}
	return lost
}

// PortRange is a run of consecutive SNAT ports on one frontend IP.
type PortRange struct {
	IP          netip.Addr
	First, Last uint16
}

// Len is the number of ports in r.
func (r PortRange) Len() int { return int(r.Last) - int(r.First) + 1 }

// InstancePlan is one backend instance's allocation.
type InstancePlan struct {
	Index int
	// Inside is the instance's address, or the zero Addr for an instance of
	// the pool that has none in the configuration.
	Inside netip.Addr
	// Ports is the instance's total: also the number of concurrent TCP
	// flows it can hold to one destination IP:port (B6) and of UDP
	// mappings toward one destination IP (B7).
	Ports  int
	Ranges []PortRange
}

// FrontendPlan is what one frontend IP has handed out.
type FrontendPlan struct {
	IP              netip.Addr
	Allocated, Free int
}

// Plan is an allocation: per instance its blocks and total, per frontend IP
// what is left (B1–B5, C1, C2).
type Plan struct {
	Profile  string
	PoolSize int
	// Manual is set when an outbound rule gives ports per instance (B4);
	// otherwise TierPorts is the default table's per-IP value (B3).
	Manual bool
	// Shared is set for a profile whose instances share one inventory
	// (G1, R3): then every instance's Ranges are the frontend IPs' whole
	// ranges and PerInstance is their total.
	Shared      bool
	TierPorts   int
	PerInstance int
	// MaxPool is the largest pool this allocation admits.
	MaxPool   int
	Instances []InstancePlan
	Frontends []FrontendPlan
}

// PlanFor validates cfg and returns its allocation plan without building an
// engine.
func PlanFor(cfg Config) (Plan, error) {
	c, err := cfg.normalize()
	if err != nil {
		return Plan{}, err
	}
	if c.Profile.Quota == QuotaShared {
		return sharedPlan(&c), nil
	}
	a := newAllocator(&c.Profile, len(c.Frontends), c.PoolSize, c.PortsPerInstance)
	return a.plan(c.Frontends, c.Backends), nil
}

// sharedInventory records what instance i may use of a shared inventory:
// every frontend IP's ports (G1), or those of the IP paired with it under
// paired pooling (R3: PortParity). Other instances may use them too.
func (e *Engine) sharedInventory(i int) {
	in := &e.insts[i]
	ips := make([]uint16, len(e.front4))
	for j := range ips {
		ips[j] = uint16(j)
	}
	if e.prof.PortChoice == PortParity {
		ips = ips[i%len(ips) : i%len(ips)+1]
	}
	in.ports = len(ips) * e.prof.PortsPerIP
	for p := range in.stat {
		for _, ip := range ips {
			in.stat[p].ip(ip).allocated = e.prof.PortsPerIP
		}
	}
}

// sharedPlan is the plan of a profile with one inventory shared by every
// instance (G1, R3): each instance may use every port of every frontend
// IP, and no frontend IP hands ports out in advance.
func sharedPlan(c *Config) Plan {
	p := &c.Profile
	last := uint16(int(p.FirstPort) + p.PortsPerIP - 1)
	pl := Plan{Profile: p.Name, PoolSize: c.PoolSize, Shared: true, PerInstance: len(c.Frontends) * p.PortsPerIP, MaxPool: c.PoolSize}
	var rs []PortRange
	for _, f := range c.Frontends {
		rs = append(rs, PortRange{IP: f, First: p.FirstPort, Last: last})
		pl.Frontends = append(pl.Frontends, FrontendPlan{IP: f, Free: p.PortsPerIP})
	}
	for i := range c.PoolSize {
		ip := InstancePlan{Index: i, Ports: pl.PerInstance, Ranges: rs}
		if i < len(c.Backends) {
			ip.Inside = c.Backends[i]
		}
		pl.Instances = append(pl.Instances, ip)
	}
	return pl
}

func (a *allocator) plan(frontends, backends []netip.Addr) Plan {
	p := a.prof
	n := len(a.inst)
	pl := Plan{Profile: p.Name, PoolSize: n, Manual: a.perInstance != 0,
		PerInstance: instanceTarget(p, n, a.nIP, a.perInstance)}
	if pl.Manual {
		pl.MaxPool = a.nIP * p.PortsPerIP / a.perInstance
	} else {
		pl.TierPorts = p.tierPorts(n)
		pl.MaxPool = p.maxPool()
	}
	alloc := make([]int, a.nIP)
	for i, blocks := range a.inst {
		ip := InstancePlan{Index: i, Ports: len(blocks) * p.BlockSize}
		if i < len(backends) {
			ip.Inside = backends[i]
		}
		for _, b := range blocks {
			alloc[b.ip] += p.BlockSize
			first := p.FirstPort + b.idx*uint16(p.BlockSize)
			last := first + uint16(p.BlockSize) - 1
			if k := len(ip.Ranges) - 1; k >= 0 && ip.Ranges[k].IP == frontends[b.ip] && ip.Ranges[k].Last+1 == first {
				ip.Ranges[k].Last = last
				continue
			}
			ip.Ranges = append(ip.Ranges, PortRange{IP: frontends[b.ip], First: first, Last: last})
		}
		pl.Instances = append(pl.Instances, ip)
	}
	for i, f := range frontends {
		pl.Frontends = append(pl.Frontends, FrontendPlan{IP: f, Allocated: alloc[i], Free: p.PortsPerIP - alloc[i]})
	}
	return pl
}
