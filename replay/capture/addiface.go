package capture

import (
	"fmt"

	"github.com/gopacket/gopacket/pcapgo"
)

// AddInterface adds an interface to the file being written, for packets
// of a link type first met after NewWriter, and returns its index.
func (w *Writer) AddInterface(i Interface) (int, error) {
	id, err := w.ng.AddInterface(pcapgo.NgInterface{Name: i.Name, LinkType: i.LinkType, SnapLength: i.SnapLen, TimestampResolution: 9})
	if err != nil {
		return 0, fmt.Errorf("add capture interface %q: %w", i.Name, err)
	}
	w.ifaces++
	return id, nil
}
