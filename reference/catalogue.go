package reference

// About is what natcheck says of one behaviour: the catalogue entry that
// `natcheck explain`, the verify matrix and docs/behaviours.md all print.
// The texts are natcheck's own summary of SEMANTICS.md, kept here as the
// one source.
type About struct {
	ID Behavior
	// Profile is the profile the item belongs to (ID.Profile()).
	Profile string
	// Convention is set for C items: a choice the engine had to make where
	// no source says, never reported as documented.
	Convention bool
	// Title is a few words, for tables.
	Title string
	// Text says what a conforming NAT does, with the numbers that are the
	// profile's defaults.
	Text string
}

// About returns b's catalogue entry; ok is false for NoBehavior and any
// value past the last ID.
func (b Behavior) About() (About, bool) {
	if b == NoBehavior || b >= behaviorEnd {
		return About{}, false
	}
	c := catalogue[b]
	return About{ID: b, Profile: b.Profile(), Convention: !b.Documented(), Title: c.title, Text: c.text}, true
}

// Title returns b's title ("exhaustion" for B9), or "" for NoBehavior.
func (b Behavior) Title() string {
	if b == NoBehavior || b >= behaviorEnd {
		return ""
	}
	return catalogue[b].title
}

// Catalogue returns every entry, in the order of Behaviors().
func Catalogue() []About {
	out := make([]About, 0, behaviorEnd-1)
	for _, b := range Behaviors() {
		a, _ := b.About()
		out = append(out, a)
	}
	return out
}

// catalogue holds each ID's title and text, indexed by ID.
var catalogue = [behaviorEnd]struct{ title, text string }{
	// azure-lb: documented behaviours.
	B1: {
		title: "64,000 SNAT ports per frontend IP",
		text:  "Every frontend public IP brings 64,000 SNAT ports for TCP and, separately, 64,000 for UDP; the two inventories are laid out the same way.",
	},
	B2: {
		title: "ports in blocks of 8",
		text:  "Instances receive ports in blocks of 8. A ports-per-instance value that is not a multiple of 8 is refused with an error that says so.",
	},
	B3: {
		title: "default allocation table",
		text:  "Without an outbound rule, each instance gets, per frontend IP, a number of ports set by the pool size: 1,024 for 1–50 instances, 512 for 51–100, 256 for 101–200, 128 for 201–400, 64 for 401–800, 32 for 801–1,000. Its total is that number times the frontend IPs, capped at 1,024. A pool of more than 1,000 instances has no default allocation and is refused.",
	},
	B4: {
		title: "outbound rule: manual ports per instance",
		text:  "An outbound rule sets each instance's total: 8 to 64,000 ports (0 means the default table). A rule is refused when instances × ports per instance exceeds frontend IPs × 64,000; the largest value that fits is IPs × 64,000 / instances, rounded down to a multiple of 8 (6,400 for 10 instances on one IP).",
	},
	B5: {
		title: "an instance's ports are its own",
		text:  "A SNAT port (frontend IP, port, protocol) belongs to one instance. No other instance ever uses it, not even one that has run out of ports.",
	},
	B6: {
		title: "TCP port reuse per destination",
		text:  "One SNAT port can carry many TCP flows of its instance at once, provided no two go to the same destination IP and port. So N simultaneous connections to one destination IP:port take N ports, while connections to N different destinations can share one.",
	},
	B7: {
		title: "UDP port-restricted cone",
		text:  "A UDP mapping belongs to (inside IP, inside port, destination IP) and serves every port of that destination IP. A SNAT port holds at most one UDP mapping per destination IP, and may hold others toward other destination IPs.",
	},
	B8: {
		title: "inbound only for live flows",
		text:  "A packet arriving from outside is translated back only when it belongs to a live flow: for TCP, the exact reverse of the flow's 5-tuple; for UDP, a source IP and port the mapping has sent to. Everything else is dropped as unsolicited.",
	},
	B9: {
		title: "exhaustion",
		text:  "When an instance has no port left that B6/B7 allow for a new flow, the flow's first packet is dropped and an exhaustion event is recorded, even if other instances or frontend IPs have free ports. Existing flows go on. New flows succeed again as soon as a suitable port is freed.",
	},
	B10: {
		title: "FIN: released 240 s later",
		text:  "The first segment with FIN, from either side, starts a 240-second timer at whose end the flow is released. Until then the flow's packets are still translated, and they do not restart that timer.",
	},
	B11: {
		title: "RST: released 15 s later",
		text:  "A RST from either side sets the release to 15 seconds after it, unless a FIN already set an earlier release. A RST after a FIN can only bring the release forward; a FIN after a RST, or a later RST, does not move it.",
	},
	B12: {
		title: "idle timeout",
		text:  "A TCP or UDP flow that carries no packet in either direction for the idle timeout is released. The default is 4 minutes; an outbound rule may set 4 to 120 whole minutes, and other values are refused. Every translated packet, in either direction, restarts the timer (a dropped one does not). Once a FIN or RST has set a release time, the idle timer no longer counts.",
	},
	B13: {
		title: "release boundaries",
		text:  "A flow released at time T still translates a packet stamped just before T, and its slot is free for a new flow from T on. Checks probe both sides: T − 1 ms and T.",
	},
	B14: {
		title: "silent expiry; tcpResetOnIdle",
		text:  "A flow expires without a packet being sent. With tcpResetOnIdle on, an established TCP flow that idles out gets a RST sent to both ends at that moment, and its later packets are answered with a RST rather than dropped.",
	},
	B15: {
		title: "TCP and UDP only",
		text:  "Only TCP and UDP are translated: outbound ICMP and IP fragments are dropped and counted. An outbound rule may carry TCP only, UDP only, or both.",
	},
	B16: {
		title: "pool growth and shrink",
		text:  "Under the default table, when the pool grows past a tier boundary (so each instance is owed fewer ports) each instance keeps the lower half of its blocks, and flows on the ports taken back are dropped without notice. A shrinking pool only adds ports. Manual allocations never shrink: an instance beyond what the rule can hold gets no ports (all its new flows fail) and a configuration event is recorded.",
	},

	// azure-lb: the engine's conventions.
	C1: {
		title: "ports 1024–65023",
		text:  "The 64,000 SNAT ports of a frontend IP are numbered 1024 to 65023.",
	},
	C2: {
		title: "placement in configuration order",
		text:  "Instances, in configuration order, take consecutive 8-aligned blocks, filling frontend IP #1 before #2; one instance may straddle two IPs.",
	},
	C3: {
		title: "lowest free port",
		text:  "A new flow takes, among its instance's blocks, the first frontend IP in configuration order and on it the lowest port that B6/B7 allow. The same input always gives the same ports.",
	},
	C4: {
		title: "a released slot is reusable at once",
		text:  "Once a slot (SNAT IP, port, destination IP, destination port) is released, a new flow may take it immediately.",
	},
	C5: {
		title: "mid-stream pick-up",
		text:  "A TCP packet from inside with no live flow opens one whatever its flags, as captures often begin mid-connection, and the event marks it as a pick-up. In strict mode only a SYN opens a flow and anything else is dropped.",
	},
	C6: {
		title: "established means both directions",
		text:  "For B14, a flow is established once it has translated at least one packet each way.",
	},
	C7: {
		title: "released flows remembered for one idle timeout",
		text:  "A released flow is remembered for one idle timeout after its release, so that B14 can answer its late packets with a RST (on whichever side they were recorded) and B16 can drop them. After that, a late packet is handled as if the flow had never existed.",
	},
	C8: {
		title: "replay: replies without a flow",
		text:  "In a replay, a recorded reply whose flow started before the capture, or was refused, has no SNAT endpoint: it is dropped as unsolicited (B8) and counted separately as a reply without a flow.",
	},
	C9: {
		title: "replay: one virtual clock",
		text:  "A replay runs on one virtual clock: every timer fires at its exact time however many engines or CPUs share the work, the outside view is written in time order, and every flow still open at the end is judged at the capture's last timestamp. The same input and flags give byte-identical outputs everywhere.",
	},

	// linux: a stock nftables/iptables SNAT.
	L1: {
		title: "inventory: address range × port range",
		text:  "The inventory is the rule's address range times its port range, TCP and UDP apart. There is no per-host quota unless the rules create one; natcheck's built-in device writes one rule per backend and protocol onto that backend's blocks of the allocation plan, so that B5 holds on it.",
	},
	L2: {
		title: "port kept, else any free port",
		text:  "The inside source port is kept when it lies in the range and the translated tuple is unique; otherwise some free port of the range is taken (hashed, then random). As this cannot be predicted, checks only assert that the port is in the range.",
	},
	L3: {
		title: "unique per full 5-tuple",
		text:  "Uniqueness is per full 5-tuple for TCP and UDP alike, so flows to different ports of one destination IP may share a SNAT port.",
	},
	L4: {
		title: "exhaustion after bounded probing",
		text:  "A new flow is dropped when no unique tuple is found. For ranges over 128 ports the kernel tries a bounded number of ports and may refuse while some are free (measured: first refusal at 91–96 % of a 1,024-port range toward one destination). A device conforms when it never refuses below half occupancy and always refuses at full occupancy; the report gives the occupancy at the first refusal.",
	},
	L5: {
		title: "TCP timers by connection state",
		text:  "TCP timers follow the connection-tracking state, and each packet restarts the timer of the state it leaves the flow in (unlike B10). Defaults, from the nf_conntrack sysctls: SYN_SENT 120 s, SYN_RECV 60 s, ESTABLISHED 432,000 s, FIN_WAIT 120 s, CLOSE_WAIT 60 s, LAST_ACK 30 s, TIME_WAIT 120 s, CLOSE 10 s, unacknowledged data 300 s. Read the device's own values; never assume them.",
	},
	L6: {
		title: "RST: CLOSE, or deleted at once",
		text:  "A RST on a flow that has seen a reply moves it to CLOSE, and it is still translated until that timer ends; on a flow that never saw a reply the entry is deleted and the port freed at once. A new SYN on a tuple in TIME_WAIT or CLOSE reopens it immediately.",
	},
	L7: {
		title: "UDP: 30 s, or 120 s once a stream",
		text:  "A UDP flow times out after udp_timeout (30 s) until a reply is seen; the longer udp_timeout_stream (120 s) applies only once a reply has been seen and a packet comes more than 2 s after the flow began.",
	},
	L8: {
		title: "inbound on the exact reverse tuple",
		text:  "Inbound packets are translated back only on the exact reverse 5-tuple (address- and port-dependent filtering); the built-in device drops the rest.",
	},
	L9: {
		title: "pick-up with tcp_loose",
		text:  "With tcp_loose on (the default) a pure ACK with no flow opens one, while a FIN or RST with no flow is invalid and dropped. With tcp_loose off only a SYN opens a flow, as in strict mode.",
	},
	L10: {
		title: "ICMP echo and fragments translated",
		text:  "ICMP echo is translated, its identifier serving as the port. An ICMP error quoting a packet of a live flow is translated with it, as conntrack's RELATED (outer address and quoted endpoint both; the flow's timer does not move); one quoting no flow is dropped. Fragments are reassembled for tracking, translated, and sent on with their original sizes and IP IDs.",
	},
	L11: {
		title: "invalid packets never leak",
		text:  "Packets conntrack cannot track (out of window, or mid-stream with tcp_loose off) must be dropped: no packet may leave on the outside with an inside address. Without a rule that drops invalid packets, Linux lets them through (measured).",
	},

	// azure-natgw: Azure NAT Gateway.
	G1: {
		title: "64,512 ports per IP, shared on demand",
		text:  "Each public IP (1 to 16 of them) offers 64,512 ports, 1024–65535, TCP and UDP apart, shared on demand by every instance of the subnet with no per-instance quota.",
	},
	G2: {
		title: "random IP and port",
		text:  "A new flow takes a public IP and port at random among those G3 allows; the engine's randomness is seeded, so a run can be repeated exactly.",
	},
	G3: {
		title: "reuse across destinations",
		text:  "A port may carry flows to different destinations at once, never two live flows to the same destination IP:port; at most 50,000 concurrent flows per (public IP, destination IP, destination port).",
	},
	G4: {
		title: "hold-down before reuse",
		text:  "After a flow closes, its (public IP, port, destination IP:port) is held back from that destination: 65 s after a TCP FIN, 16 s after a TCP RST, 65 s after a UDP idle release. A TCP flow half-open for 30 s without an answer is closed. Other destinations may use the port at once.",
	},
	G5: {
		title: "idle timeouts",
		text:  "TCP idles out after 4 to 120 whole minutes (4 by default); UDP after a fixed 4 minutes. Traffic either way restarts the timer, and expiry sends nothing.",
	},
	G6: {
		title: "RST for unknown TCP",
		text:  "A TCP packet from either side for a flow that does not exist (expired, closed or never opened) is answered with a RST to its sender only.",
	},
	G7: {
		title: "inbound only for live flows",
		text:  "Only replies of live flows come back in; for UDP, only from the destination IP:port the flow sent to. Unsolicited inbound traffic is dropped.",
	},
	G8: {
		title: "TCP and UDP only",
		text:  "Only TCP and UDP pass; ICMP and fragments are dropped.",
	},

	// rfc: the IETF behavioural requirements.
	R1: {
		title: "endpoint-independent mapping",
		text:  "An inside IP:port keeps one public IP:port for every destination while its mapping lives (REQ-1 of RFC 4787 and RFC 5382).",
	},
	R2: {
		title: "configurable filtering",
		text:  "Filtering is endpoint-independent, address-dependent, or address-and-port-dependent (the default); inbound traffic the filter rejects is dropped.",
	},
	R3: {
		title: "port parity, range; paired pooling",
		text:  "Port parity and range are kept where possible, and IP pooling is paired: an inside IP uses one public IP for all its mappings.",
	},
	R4: {
		title: "UDP mapping timer 5 min",
		text:  "A UDP mapping lasts 5 minutes (never under 2), refreshed by outbound traffic and, when so configured (the default), by inbound traffic.",
	},
	R5: {
		title: "TCP timers: 124 min, 4 min transitory",
		text:  "An established TCP session idles out after at least 124 minutes; transitory states (SYN only, FIN seen both ways, after a RST) after 4 minutes. A RST is translated and the session kept for those 4 minutes.",
	},
	R6: {
		title: "ICMP: 60 s queries, errors translated",
		text:  "ICMP query mappings last 60 s, and ICMP errors about a mapped flow are translated back to it (outer destination and quoted source; the quoted remote must pass the mapping's filter, the error moves no timer); an error about no mapping is dropped.",
	},
	R7: {
		title: "hairpinning",
		text:  "A packet from inside to one of the NAT's public IP:ports reaches the inside endpoint mapped there, with the public source address.",
	},
}
