// Package reference is natcheck's reference SNAT engine: an exact,
// deterministic model of outbound source NAT as a cloud load balancer
// documents it (profile azure-lb, behaviours B1–B16 and conventions C1–C9
// of SEMANTICS.md), and of the other profiles SEMANTICS.md numbers: a
// Linux SNAT (linux, L1–L11), Azure NAT Gateway (azure-natgw, G1–G8) and
// the IETF requirements (rfc, R1–R7).
//
// A [Profile] is numbers and a few strategies, chosen once by [New] and
// called by the packet path without asking which profile it runs
// (strategy.go): the mapping key, as masks of the destination in every
// key (B6/B7; R1; the full 5-tuple of L3, G3); a picker that chooses a new
// flow's SNAT endpoint (the lowest free port, C3; Linux's source port or a
// probed one, L2/L4; the gateway's seeded random choice under its cap and
// hold-downs, G2–G4; the same parity on the paired IP, R3); a lifecycle
// that moves release times and decides which packets open a flow (the
// FIN/RST/idle holds, B10–B12 and G4–G5; the kernel's connection-tracking
// state table, L5–L9; rfc's mapping and TCP timers, R4–R5) and what a
// packet with no flow gets (G6's RST, R2's inbound SYN); a filter for
// inbound packets from another endpoint than the flow's first (B8, R2).
// Hairpinning (R7), ICMP echo (L10, R6) and fragments (L10) are flags of
// the profile. Verdicts and events cite the profile's items.
//
// The engine is driven by packet timestamps (virtual time) and never reads
// the wall clock. Each call to [Engine.Process] takes one packet's
// direction, 5-tuple, TCP flags and timestamp and returns a [Verdict]
// (translated, dropped with a reason, or answered with a RST), appending any
// packets the NAT itself emits. [Engine.Advance] fires timers without a
// packet. Every decision that a document explains is reported as an [Event]
// carrying its behaviour ID, to an optional observer.
//
// The package imports no packet library: callers (package replay, the specs,
// the fuzzers) turn bytes into [Packet] values and back.
//
// Cost: an established flow's packet is a hash lookup and a few stores, with
// no allocation; timers cost O(1) amortized per packet (a timing wheel with
// lazy refresh); a live flow costs well under 128 bytes.
package reference
