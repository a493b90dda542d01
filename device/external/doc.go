// Package external drives a NAT that natcheck does not run — a third-party
// device, met only through two Ethernet interfaces, one on its inside
// link and one on its outside link — as a specs.NAT, so that the checks of
// package specs judge it.
//
// natcheck stands for every host on both links: the instances on the
// inside (the stated configuration's backends), the servers and the
// upstream router on the outside. It answers the device's ARP requests
// for those addresses and finds the device's own link-layer addresses by
// ARP (its inside address, Options.Gateway; its first public address). It
// writes no marker into the packets: what comes out of the device is
// matched to what went in by package device/learn, whose fields (does the
// device keep the IPv4 ID, does it shift TCP sequence numbers) and whose
// drop deadline (from the latency measured) Attach calibrates with a few
// probe packets.
//
// A device's configuration is its own: the user states it (frontends are
// its public addresses, backends the inside addresses natcheck may use,
// the allocation), and a check whose configuration is not the stated one
// — the same plan for the instances it uses, the same outbound rule — is
// not checked. A check's server addresses are given fresh addresses on
// the wire for each session, so that flows the device still holds from an
// earlier check never meet a later one; its frontend and backend addresses
// are the stated ones.
//
// It imports device/learn, device/link, device/pace, reference, specs and
// replay/frame.
package external
