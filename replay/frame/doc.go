// Package frame decodes a captured frame into what the SNAT engine needs to
// know of it, and rewrites frames in place as the NAT does.
//
// Decode fills a reusable Frame without allocating: link layer (Ethernet
// with 802.1Q/QinQ tags, Linux cooked SLL and SLL2, BSD loopback NULL and
// LOOP, raw IP), IPv4 with options and fragments, and the TCP, UDP or ICMP
// header. It records where the IPv4 and transport headers start, so that
// RewriteSource and RewriteDest change an address and port in place with
// RFC 1624 incremental checksum updates, leaving every other byte as
// captured. IPv6 and non-IP frames are recognised and reported, not
// decoded: the engine is IPv4 only.
//
// Frame.Packet turns a decoded frame into a reference.Packet. This package
// may import reference for the Packet type and its parts only, and
// gopacket/layers for link type numbers; it decodes headers by hand, as
// gopacket's layers are several times slower (see BenchmarkDecode).
package frame
