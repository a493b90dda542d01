// Package specs is natcheck's conformance suite: every behaviour (B1–B16)
// and convention (C1–C7; C8 and C9 are about replay, not a NAT) of the
// azure-lb profile of SEMANTICS.md written once, as [Check] values, and
// run against any NAT; and the items of the other profiles the same way
// ([LinuxChecks] L1–L11, [NATGWChecks] G1–G8, [RFCChecks] R1–R7;
// [ChecksFor] by name), which read the profile's numbers from the
// implementation ([Impl.Profile]: a linux device's conntrack sysctls) and,
// where the profile chooses at random, assert only what it promises.
// [Engine] puts the reference engine of any profile under test; run with
// the azure-lb checks it shows that profile's known differences as
// deviations, each with its reason.
//
// A NAT is seen only through [NAT]: send a packet on the inside or the
// outside at a time, observe what comes out (or nothing), let time pass.
// An [Impl] opens such a NAT for a configuration; [Reference] is the
// in-process reference engine in virtual time. An implementation in
// wall-clock time maps the checks' profile times onto its clock (see
// [NAT]).
//
// The same checks feed two front ends: the Ginkgo suite of this package
// (one Entry per check, spec text "B9: …", labels impl:reference, B9, …)
// and [Verify], which the CLI's "natcheck verify" calls to print a
// conformance [Matrix] (behaviour × implementation: conforms, deviates,
// fails), with the packets and times of every check that did not conform.
// Checks assert properties a real device must share (a port lies in the
// instance's allocation, which flows share a port, which flow fails at
// exhaustion, when a slot is reusable), through the Gomega matchers of this
// package; only C items, run on the reference alone, pin exact ports.
//
// [Mutants] are the negative control: reference engines that each break one
// item on purpose; the package's tests assert that the checks of that item
// fail against it, so the suite cannot silently become vacuous.
//
// The package imports reference for its vocabulary (packets, tuples,
// behaviour IDs, configurations and allocation plans) and for the reference
// adapter; checks themselves use only the NAT interface.
package specs
