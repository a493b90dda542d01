package reference

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestShortHoldReleasesOnTime: a 500 ms RST hold is shorter than a bucket
// of the timing wheel (2^30 ns), so a deadline it sets can fall in a
// bucket already due: the engine must refuse such a profile, since it
// could not release the flow on time (B13).
func TestShortHoldReleasesOnTime(t *testing.T) {
	p := AzureLB()
	p.RSTHold = 500 * time.Millisecond
	c := oneIP("10.0.0.1")
	c.Profile = p
	e, err := New(c)
	if err != nil {
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != "profile RSTHold" {
			t.Fatalf("New with a 500 ms RST hold: %v, want a *ConfigError on profile RSTHold", err)
		}
		return
	}
	// Accepted: the flow must then be gone 500 ms after its RST.
	h := &harness{t: t, e: e}
	snat := h.mustOut(10*time.Second+100*time.Millisecond, TCP, "10.0.0.1:1000", "198.51.100.1:443", SYN)
	h.mustOut(10*time.Second+200*time.Millisecond, TCP, "10.0.0.1:1000", "198.51.100.1:443", RST)
	for _, at := range []time.Duration{time.Second, time.Minute, 10 * time.Minute} {
		if v := h.in(10*time.Second+200*time.Millisecond+at, TCP, "198.51.100.1:443", snat.String(), ACK); v.Action == Translated {
			t.Fatalf("a flow reset with a 500 ms hold still translates %v after its RST", at)
		}
	}
}

// TestProfileValidation: a profile whose numbers the engine cannot honour
// is refused with a *ConfigError naming the field, never a panic and never
// accepted to misbehave later.
func TestProfileValidation(t *testing.T) {
	for _, tc := range []struct {
		field string
		mod   func(*Profile)
	}{
		{"BlockSize", func(p *Profile) { p.BlockSize = 0 }},
		{"BlockSize", func(p *Profile) { p.BlockSize = -8 }},
		{"BlockSize", func(p *Profile) { p.BlockSize = 7 }}, // 64,000 is no whole number of 7-port blocks
		{"FirstPort", func(p *Profile) { p.FirstPort = 0 }},
		{"PortsPerIP", func(p *Profile) { p.FirstPort = 1600 }}, // 1600 + 64,000 - 1 = 65,599
		{"PortsPerIP", func(p *Profile) { p.PortsPerIP = 0 }},
		{"PortsPerIP", func(p *Profile) { p.FirstPort, p.PortsPerIP = 1, 65536 }},
		{"Tiers", func(p *Profile) { p.Tiers = nil }},
		{"Tiers[1]", func(p *Profile) { p.Tiers = []Tier{{100, 512}, {50, 1024}} }},
		{"Tiers[1]", func(p *Profile) { p.Tiers = []Tier{{50, 1024}, {50, 512}} }},
		{"Tiers[0]", func(p *Profile) { p.Tiers = []Tier{{0, 1024}} }},
		{"Tiers[0]", func(p *Profile) { p.Tiers = []Tier{{50, 1020}} }},  // not whole blocks
		{"Tiers[0]", func(p *Profile) { p.Tiers = []Tier{{100, 1024}} }}, // 100 × 1,024 > 64,000
		{"Tiers[0]", func(p *Profile) { p.Tiers = []Tier{{50, 0}} }},
		{"MaxInstancePorts", func(p *Profile) { p.MaxInstancePorts = 0 }},
		{"MaxInstancePorts", func(p *Profile) { p.MaxInstancePorts = 1020 }},
		{"RSTHold", func(p *Profile) { p.RSTHold = 500 * time.Millisecond }},
		{"RSTHold", func(p *Profile) { p.RSTHold = 1<<30 - 1 }},
		{"FINHold", func(p *Profile) { p.FINHold = 0 }},
		{"IdleMin", func(p *Profile) { p.IdleMin, p.IdleStep = time.Second/2, time.Second/2 }},
		{"IdleStep", func(p *Profile) { p.IdleStep = 0 }},
		{"IdleMax", func(p *Profile) { p.IdleMax = 3 * time.Minute }},
		{"IdleMax", func(p *Profile) { p.IdleMax = maxHold }},
		{"IdleDefault", func(p *Profile) { p.IdleDefault = 121 * time.Minute }},
		{"IdleDefault", func(p *Profile) { p.IdleDefault = 4*time.Minute + time.Second }},
		{"FINHold", func(p *Profile) { p.FINHold = maxHold }},
		{"", func(p *Profile) {}},                                          // azure-lb itself
		{"", func(p *Profile) { p.RSTHold = 1 << 30 }},                     // exactly one bucket
		{"", func(p *Profile) { p.FirstPort = 1025 }},                      // ends at 65,024
		{"", func(p *Profile) { p.FirstPort, p.PortsPerIP = 1536, 64000 }}, // ends at 65,535
		{"", func(p *Profile) { p.BlockSize = 4 }},                         // the blocks-of-4 mutant
		{"", func(p *Profile) {
			p.Tiers = []Tier{{51, 1024}, {101, 512}, {201, 256}, {401, 128}, {801, 64}, {1001, 32}}
		}}, // shifted
	} {
		name := tc.field
		if name == "" {
			name = "valid"
		}
		t.Run(name, func(t *testing.T) {
			p := AzureLB()
			tc.mod(&p)
			c := oneIP("10.0.0.1")
			c.Profile = p
			var err error
			func() {
				defer func() {
					if x := recover(); x != nil {
						err = fmt.Errorf("panic: %v", x)
					}
				}()
				_, err = New(c)
			}()
			var ce *ConfigError
			switch {
			case tc.field == "" && err != nil:
				t.Errorf("New(%+v) = %v, want accepted", p, err)
			case tc.field != "" && (!errors.As(err, &ce) || ce.Field != "profile "+tc.field || !errors.Is(err, ErrConfig)):
				t.Errorf("New(profile with a bad %s) = %v, want a *ConfigError on \"profile %s\"", tc.field, err, tc.field)
			case tc.field != "" && !strings.Contains(err.Error(), "want"):
				t.Errorf("New(profile with a bad %s) = %v: the error does not say what is allowed", tc.field, err)
			}
		})
	}
}

// TestProfileValidationBoundaries: each limit of validate on both sides
// of its boundary, and the error's numbers and field where they are the
// point: the highest PortsPerIP a FirstPort allows; MaxInstancePorts of
// exactly one block; an idle maximum plus the longer hold of exactly
// maxHold (accepted) or 1 ns more (refused, naming IdleMax); a hold equal
// to IdleMax names IdleMax, the field to lower first.
func TestProfileValidationBoundaries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(*Profile)
		field  string // "" when the profile is valid
		reason string // a part of the error's reason
	}{
		{"ports per IP from 1600", func(p *Profile) { p.FirstPort = 1600 }, "PortsPerIP", "want 1 to 63936, so that the range from port 1600 ends by 65535"},
		{"max instance ports one block", func(p *Profile) { p.MaxInstancePorts = p.BlockSize }, "", ""},
		{"idle max plus FIN hold at max hold", func(p *Profile) { p.IdleMax = maxHold - p.FINHold }, "", ""},
		{"idle max plus FIN hold 1 ns over", func(p *Profile) { p.IdleMax = maxHold - p.FINHold + 1 }, "IdleMax", "less FINHold"},
		{"FIN hold equal to idle max, too long", func(p *Profile) { p.IdleMax, p.FINHold = maxHold/2+1, maxHold/2+1 }, "IdleMax", "less FINHold"},
		{"FIN hold above idle max, too long", func(p *Profile) { p.IdleMax, p.FINHold = maxHold/2, maxHold/2+2 }, "FINHold", "less IdleMax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := AzureLB()
			tc.mod(&p)
			c := oneIP("10.0.0.1")
			c.Profile = p
			_, err := New(c)
			var ce *ConfigError
			switch {
			case tc.field == "":
				if err != nil {
					t.Errorf("New = %v, want accepted", err)
				}
			case !errors.As(err, &ce) || ce.Field != "profile "+tc.field:
				t.Errorf("New = %v, want a *ConfigError on \"profile %s\"", err, tc.field)
			case !strings.Contains(ce.Reason, tc.reason):
				t.Errorf("New = %v, want the reason to say %q", err, tc.reason)
			}
		})
	}
}
