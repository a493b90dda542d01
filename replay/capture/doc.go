// Package capture reads and writes packet capture files as a stream of
// records.
//
// A Reader takes classic pcap (either byte order, micro- or nanosecond
// timestamps) and pcapng (any number of sections and interfaces, each with
// its own link type and timestamp resolution), told apart by the magic
// number at the start of the file, never by its name. It reads one record at
// a time into a reused buffer, so memory does not grow with the file, and
// says for every record its number, time, link type, interface and byte
// offset in the file. Damaged input yields an *Error naming the file, the
// packet number and the offset, and wrapping one of the sentinel errors
// (ErrTruncated, ErrBadMagic, ErrBadHeader, ErrUnknownLinkType,
// ErrBadRecord); every record before the fault is returned first.
//
// Reorder puts the records of a merged capture back in time order within a
// window, holding the window's records. Ordered does the same from a first
// pass's Order (OrderScanner), holding nothing for a file in order and,
// for one with late records, only where those within one reach ahead are,
// found by a look-ahead cursor over the same file. OpenScan maps a classic
// pcap file into memory, so that reading copies nothing. Writer writes
// pcapng with nanosecond timestamps and optional per-packet comments.
//
// pcapng is parsed by the pure-Go parts of gopacket (pcapgo); classic pcap
// records are parsed here, straight from the read buffer, as that is the
// hot path of natcheck replay (see Reader.readPCAP), and are checked against
// pcapgo by the tests. This package never uses libpcap. It knows nothing of the
// frames inside the records (see replay/frame) nor of the NAT engine
// (reference): it may import only the standard library and gopacket's
// layers and pcapgo packages.
package capture
