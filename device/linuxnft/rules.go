package linuxnft

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/natcheck/natcheck/reference"
)

// tableName is the one nftables table the device installs.
const tableName = "natcheck"

// Counter names: each drop rule counts what it drops.
const (
	cntInvalid      = "invalid"           // ct state invalid (L11)
	cntUnsolicited  = "unsolicited"       // from outside, no flow, forwarded path (B8, L8)
	cntLocal        = "unsolicited-local" // from outside to a frontend IP, no flow (B8, L8)
	cntUntranslated = "untranslated"      // would leave with a non-frontend source
)

var counterNames = []string{cntInvalid, cntUnsolicited, cntLocal, cntUntranslated}

// ruleset is what install writes: the rules for one plan.
type ruleset struct {
	inIndex, outIndex uint32
	frontends         []netip.Addr
	plan              reference.Plan
	protocols         reference.Protocols
}

func cmpEq(reg uint32, data []byte) expr.Any {
	return &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: data}
}

func ifIndex(key expr.MetaKey, idx uint32) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, cmpEq(1, binary.NativeEndian.AppendUint32(nil, idx))}
}

func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func saddr(a netip.Addr) []expr.Any {
	a4 := a.As4()
	return []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}, cmpEq(1, a4[:])}
}

func l4proto(p reference.Proto) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmpEq(1, []byte{byte(p)})}
}

func countDrop(name string) []expr.Any {
	return []expr.Any{&expr.Objref{Type: 1 /* NFT_OBJECT_COUNTER */, Name: name}, &expr.Verdict{Kind: expr.VerdictDrop}}
}

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// snatTo maps to address a and, when ports, the port range lo–hi.
func snatTo(a netip.Addr, lo, hi uint16, ports bool) []expr.Any {
	a4 := a.As4()
	e := []expr.Any{&expr.Immediate{Register: 1, Data: a4[:]}}
	nat := &expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegAddrMax: 1}
	if ports {
		e = append(e,
			&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, lo)},
			&expr.Immediate{Register: 3, Data: binary.BigEndian.AppendUint16(nil, hi)})
		nat.RegProtoMin, nat.RegProtoMax, nat.Specified = 2, 3, true
	}
	return append(e, nat)
}

// install writes the ruleset into the namespace of conn in one batch.
func (rs ruleset) install(conn *nftables.Conn) error {
	t := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: tableName})
	for _, n := range counterNames {
		conn.AddObj(&nftables.CounterObj{Table: t, Name: n})
	}
	fset := &nftables.Set{Table: t, Name: "frontends", KeyType: nftables.TypeIPAddr}
	var elems []nftables.SetElement
	for _, f := range rs.frontends {
		a4 := f.As4()
		elems = append(elems, nftables.SetElement{Key: a4[:]})
	}
	if err := conn.AddSet(fset, elems); err != nil {
		return fmt.Errorf("nftables: set of frontend IPs: %w", err)
	}
	accept := policy(nftables.ChainPolicyAccept)
	filter := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return conn.AddChain(&nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeFilter, Hooknum: hook, Priority: prio, Policy: accept})
	}
	fwd := filter("forward", nftables.ChainHookForward, nftables.ChainPriorityFilter)
	in := filter("input", nftables.ChainHookInput, nftables.ChainPriorityFilter)
	guard := filter("guard", nftables.ChainHookPostrouting, nftables.ChainPriorityRef(300))
	nat := conn.AddChain(&nftables.Chain{Name: "snat", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})

	// Rules go in batches: one netlink message for thousands of rules is
	// too long for the socket (and its acknowledgements overflow it).
	const batch = 32
	pending := 0
	var flushErr error
	add := func(c *nftables.Chain, e []expr.Any) {
		conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: e})
		if pending++; pending == batch && flushErr == nil {
			flushErr = conn.Flush()
			pending = 0
		}
	}
	// L11: invalid packets are not tracked and would leave untranslated.
	add(fwd, cat(ctState(expr.CtStateBitINVALID), countDrop(cntInvalid)))
	add(fwd, cat(ifIndex(expr.MetaKeyIIF, rs.outIndex), ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}))
	add(fwd, cat(ifIndex(expr.MetaKeyIIF, rs.outIndex), countDrop(cntUnsolicited)))
	add(in, cat(ifIndex(expr.MetaKeyIIF, rs.outIndex), countDrop(cntLocal)))
	add(guard, cat(ifIndex(expr.MetaKeyOIF, rs.outIndex),
		[]expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: fset.Name, SetID: fset.ID, Invert: true}},
		countDrop(cntUntranslated)))

	rs.snatRules(nat, add)
	if flushErr == nil {
		flushErr = conn.Flush()
	}
	if flushErr != nil {
		return fmt.Errorf("nftables: install table %s: %w", tableName, flushErr)
	}
	return nil
}

// snatRules adds the plan's SNAT rules to chain nat: per instance and
// protocol, its first port range.
func (rs ruleset) snatRules(nat *nftables.Chain, add func(*nftables.Chain, []expr.Any)) {
	for _, inst := range rs.plan.Instances {
		if !inst.Inside.IsValid() || len(inst.Ranges) == 0 {
			continue // an instance with no address sends nothing; one with no ports gets no rule
		}
		r := inst.Ranges[0]
		for _, p := range []reference.Proto{reference.TCP, reference.UDP} {
			if (p == reference.TCP && rs.protocols == reference.UDPOnly) || (p == reference.UDP && rs.protocols == reference.TCPOnly) {
				continue
			}
			add(nat, cat(ifIndex(expr.MetaKeyOIF, rs.outIndex), saddr(inst.Inside), l4proto(p), snatTo(r.IP, r.First, r.Last, true)))
		}
		if rs.protocols == reference.AllProtocols {
			// L10: a stock Linux SNAT translates ICMP echo too.
			add(nat, cat(ifIndex(expr.MetaKeyOIF, rs.outIndex), saddr(inst.Inside), l4proto(reference.ICMP), snatTo(r.IP, 0, 0, false)))
		}
	}
}

// rewriteSNAT replaces the SNAT rules by the plan's, in batches (one
// netlink message for a pool's rules overflows the socket): a flow opened
// meanwhile may find no rule, and is dropped by the guard. The checks
// send nothing during a pool change.
func (rs ruleset) rewriteSNAT(conn *nftables.Conn) error {
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: tableName}
	nat := &nftables.Chain{Name: "snat", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}
	conn.FlushChain(nat)
	pending := 0
	var err error
	rs.snatRules(nat, func(c *nftables.Chain, e []expr.Any) {
		conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: e})
		if pending++; pending == 32 && err == nil {
			err, pending = conn.Flush(), 0
		}
	})
	if err == nil {
		err = conn.Flush()
	}
	if err != nil {
		return fmt.Errorf("nftables: rewrite SNAT rules: %w", err)
	}
	return nil
}

func policy(p nftables.ChainPolicy) *nftables.ChainPolicy { return &p }

// readCounters returns the packets each named counter has dropped.
func readCounters(conn *nftables.Conn) (map[string]uint64, error) {
	objs, err := conn.GetObjects(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: tableName})
	if err != nil {
		return nil, fmt.Errorf("nftables: read counters: %w", err)
	}
	out := map[string]uint64{}
	for _, o := range objs {
		if c, ok := o.(*nftables.CounterObj); ok {
			out[c.Name] = c.Packets
		}
	}
	return out, nil
}
