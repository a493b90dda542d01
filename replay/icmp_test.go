package replay

import (
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/replay/frame"
)

// TestReplayICMPErrors replays a real Windows traceroute (echo requests
// with growing TTLs, and the routers' time-exceeded errors quoting them).
// Under linux (L10) and rfc (R6) every error reaches the NAT at the SNAT
// address quoting the echo as the NAT sent it, from the SNAT endpoint the
// echo left with, and is translated back: the outside view holds it with
// valid IPv4, quoted IPv4 and ICMP checksums. Under azure-lb (B15) none is
// translated, and neither is an echo.
func TestReplayICMPErrors(t *testing.T) {
	in := public + "chrissanders__icmp_traceroute.pcapng"
	backends, _ := ParseBackends("192.168.100.138")
	// The errors in the capture, counted from the frames themselves.
	var errorsIn int
	for _, fr := range decodeAll(t, in) {
		if fr.f.Proto == reference.ICMP && fr.f.ICMPType == 11 {
			if !fr.f.Quoted {
				t.Fatalf("%s packet %d: time exceeded without a readable quote", in, fr.n)
			}
			errorsIn++
		}
	}
	if errorsIn < 10 {
		t.Fatalf("%s: %d time-exceeded errors, want the traceroute's", in, errorsIn)
	}
	for _, p := range []reference.Profile{reference.Linux(reference.DefaultConntrack()), reference.RFC(), reference.AzureLB()} {
		t.Run(p.Name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.pcapng")
			cfg := Config{Engine: oneFrontend(0), Backends: backends, Output: out}
			cfg.Engine.Profile = p
			if _, err := Run([]string{in}, cfg); err != nil {
				t.Fatal(err)
			}
			snat := netip.MustParseAddr("203.0.113.1")
			var echoes []netip.AddrPort // SNAT endpoints echoes left with
			var errorsOut int
			for _, fr := range decodeAll(t, out) {
				f := &fr.f
				if f.Proto != reference.ICMP {
					continue
				}
				switch {
				case f.ICMPType == 8:
					echoes = append(echoes, netip.AddrPortFrom(f.Src, f.SrcPort))
				case f.ICMPType == 11:
					errorsOut++
					q := reference.Tuple{Proto: f.QuotedProto, Src: f.QuotedSrc, Dst: f.QuotedDst}
					if f.Dst != snat || !f.Quoted || q.Proto != reference.ICMP || q.Src.Addr() != snat || len(echoes) == 0 || q.Src != echoes[len(echoes)-1] {
						t.Errorf("output packet %d: time exceeded to %v quoting %v; want to %v quoting the last echo, from %v", fr.n, f.Dst, q, snat, echoes)
					}
					if !ipChecksumOK(fr.data[f.L3:f.L4]) || !ipChecksumOK(fr.data[f.QuotedL3:f.QuotedL4]) || !ipChecksumOK(fr.data[f.L4:f.End]) {
						t.Errorf("output packet %d: a bad IPv4, quoted IPv4 or ICMP checksum", fr.n)
					}
				}
			}
			want := errorsIn
			if p.Name == reference.NameAzureLB {
				want = 0
				if len(echoes) != 0 {
					t.Errorf("azure-lb translated %d echoes, want none (B15)", len(echoes))
				}
			}
			if errorsOut != want {
				t.Errorf("%d time-exceeded errors translated, want %d", errorsOut, want)
			}
		})
	}
}

type decoded struct {
	n    uint64
	data []byte
	f    frame.Frame
}

// decodeAll decodes every frame of the capture at path.
func decodeAll(t *testing.T, path string) []decoded {
	t.Helper()
	rd, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var out []decoded
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		d := decoded{n: uint64(rec.Number), data: append([]byte(nil), rec.Data...)}
		if err := frame.Decode(rec.LinkType, d.data, &d.f); err != nil {
			t.Fatalf("%s packet %d: %v", path, rec.Number, err)
		}
		out = append(out, d)
	}
}
