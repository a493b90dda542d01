// Package fuzz holds natcheck's Go native fuzz targets (in its tests) and
// the scenario language they share: a fuzz input decodes into a SNAT
// configuration and a sequence of operations (outbound and inbound packets,
// small and huge steps of time, pool changes) over small value ranges, so
// that flows collide, instances run out of ports and timers fire on their
// boundaries. A scenario can be written as a capture, so that a failing
// input is reproduced by `natcheck replay`.
//
// The targets: FuzzEngineInvariants (the engine's invariants after every
// operation, and determinism), FuzzEngineVsModel (every verdict against
// internal/snatmodel), FuzzTranslateRoundTrip (engine and byte rewriter
// give back the inside tuple with valid checksums) and FuzzReplayBytes
// (arbitrary bytes as a capture: an error or a report, never a panic).
// The capture reader and frame decoder also have their own targets beside
// them (replay/capture FuzzReader, replay/frame FuzzDecode).
//
// The other profiles (linux, azure-natgw, rfc) are run by
// internal/profilecheck, which decodes bytes into their own operations
// (their knobs, ICMP and fragments, inbound packets aimed at the endpoints
// the engine opened, steps landing on release times). Two targets each
// fuzz it: FuzzLinuxVsModel, FuzzNATGWVsModel and FuzzRFCVsModel compare
// every verdict with the profile's model (internal/linuxmodel, natgwmodel,
// rfcmodel), accepting any random choice the profile allows;
// FuzzLinuxInvariants, FuzzNATGWInvariants and FuzzRFCInvariants check the
// invariants every engine of the profile keeps whatever it chooses, and
// determinism. reference/'s own tests run both checks on seeded random
// inputs in every make test; a failure names the seed that replays it.
package fuzz
