// Package reference is natcheck's reference SNAT engine: an exact,
// deterministic model of outbound source NAT as a cloud load balancer
// documents it (profile azure-lb, behaviours B1–B16 and conventions C1–C9
// of SEMANTICS.md).
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
