// Package replay drives recorded captures through the reference SNAT
// engine, offline, in the capture's own time (one virtual clock for every
// engine, C9). It reads captures (package replay/capture), decodes each
// frame (replay/frame), decides which side of the NAT a packet belongs to,
// sends outbound packets through the NAT and turns each recorded reply into
// what the server would have sent to the SNAT IP:port of its flow, then
// writes what came out: the outside view as pcapng, the events as JSON
// lines, and a Result that the report, the plot and the CLI present.
//
// It imports reference for the engine's types, and gopacket only through
// its own sub-packages.
package replay
