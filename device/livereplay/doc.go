// Package livereplay replays captures through a live NAT, both ways: each
// outbound packet of the capture's instances is put on the NAT's inside
// link as recorded, what comes out on the outside is matched to it with
// no marker written into the packets (package device/learn), and each
// recorded reply is sent from the outside to the public endpoint learnt
// for its flow. Both links are captured. The same packets go, in the
// capture's own time, through the reference engine in the chosen
// profile, so that every flow gets a verdict: the device did what the
// profile says, or it did not, at which packet and how.
//
// Timing is the capture's, divided by the speed (the device's timers are
// divided by it too, as verify's time scale does), or as fast as the
// machine goes; an idle gap longer than every timer of the device is
// shortened, and the result says so.
//
// The result is a replay.Result, so that the offline replay's report,
// JSON and plot render it, with the flows' verdicts, the learnt mappings
// cross-checked against the kernel's conntrack events, and the device's
// drop counters beside it.
//
// The NAT is natcheck's built-in linux-nft, or a third-party device met
// only through two links (package device/external, Config.Device): then
// the matching uses the fields its calibration found it keeps, a packet
// is judged dropped after its calibrated deadline, natcheck answers its
// ARP requests on both links, and there is no conntrack or drop counter
// to check against.
//
// It imports device packages, reference and replay.
package livereplay
