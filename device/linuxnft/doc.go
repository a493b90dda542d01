// Package linuxnft is natcheck's built-in live device: Linux nftables SNAT
// in a network namespace of the sandbox, configured from an allocation
// plan, driven with real frames and judged by the same checks as the
// reference engine (it implements specs.NAT; [Impl] opens it).
//
// For each configuration it builds a fresh topology (package
// device/topology), gives the nat namespace the frontend IPs, and installs
// one table, natcheck: per backend instance and protocol one rule
// "ip saddr B meta l4proto P snat to F:first-last" onto that instance's
// SNAT ports (so an instance's ports are its own, B5), ICMP echo mapped to
// the instance's frontend IP, "ct state invalid drop" (without it Linux
// sends invalid packets out with their inside address, L11), a drop of
// unsolicited packets from the outside in the forward and input hooks,
// and a last guard that drops anything leaving on the outside with a
// source that is not a frontend IP. Each drop rule has a named counter.
//
// Timers are the device's own: the nf_conntrack sysctls of a fresh
// namespace (L5, L7), divided by the time scale K so that profile time
// runs K times faster than the wall clock (conntrack counts whole seconds,
// so every timer must divide by K). tcp_loose follows the configuration's
// strict mode (L9). An instance whose allocation spans several ranges
// gets a rule for its first range only: nftables' snat takes one address
// and one port range per rule.
//
// Sends are timed on the wall clock: profile time t is the wall time
// start + (t − Origin)/K; a frame's real departure is the kernel's
// timestamp of it, and the Packet of a Delivery carries that realised
// time. The built-in device knows which frame came out for which packet
// because veth delivery is synchronous (the translated frame is queued on
// the far side when send returns); a frame that comes out later than its
// packet was judged is reported as a harness error, never as a verdict.
//
// It may touch only the namespaces of its own topologies.
package linuxnft
