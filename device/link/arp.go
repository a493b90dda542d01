package link

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// ARP operations.
const (
	ARPRequest = 1
	ARPReply   = 2
)

// ARP is an Ethernet/IPv4 ARP message.
type ARP struct {
	Op                   uint16
	SenderMAC, TargetMAC net.HardwareAddr
	SenderIP, TargetIP   netip.Addr
}

// ParseARP decodes an Ethernet frame carrying an Ethernet/IPv4 ARP
// message; ok is false for any other frame.
func ParseARP(frame []byte) (a ARP, ok bool) {
	if len(frame) < ethLen+28 || binary.BigEndian.Uint16(frame[12:]) != 0x0806 {
		return a, false
	}
	p := frame[ethLen:]
	if binary.BigEndian.Uint16(p[0:]) != 1 || binary.BigEndian.Uint16(p[2:]) != 0x0800 || p[4] != 6 || p[5] != 4 {
		return a, false
	}
	a.Op = binary.BigEndian.Uint16(p[6:])
	a.SenderMAC = net.HardwareAddr(append([]byte(nil), p[8:14]...))
	a.SenderIP = netip.AddrFrom4([4]byte(p[14:18]))
	a.TargetMAC = net.HardwareAddr(append([]byte(nil), p[18:24]...))
	a.TargetIP = netip.AddrFrom4([4]byte(p[24:28]))
	return a, true
}

// AppendARP appends to b an Ethernet frame carrying a, from a.SenderMAC
// to dst, and returns the extended slice.
func AppendARP(b []byte, dst net.HardwareAddr, a ARP) []byte {
	start := len(b)
	b = append(b, make([]byte, ethLen+28)...)
	f := b[start:]
	copy(f[0:6], dst)
	copy(f[6:12], a.SenderMAC)
	binary.BigEndian.PutUint16(f[12:], 0x0806)
	p := f[ethLen:]
	binary.BigEndian.PutUint16(p[0:], 1)
	binary.BigEndian.PutUint16(p[2:], 0x0800)
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:], a.Op)
	copy(p[8:14], a.SenderMAC)
	s4, t4 := a.SenderIP.As4(), a.TargetIP.As4()
	copy(p[14:18], s4[:])
	copy(p[18:24], a.TargetMAC)
	copy(p[24:28], t4[:])
	return b
}

// Broadcast is the Ethernet broadcast address.
var Broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
