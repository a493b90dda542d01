package regress

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/natcheck/natcheck/replay/capture"
)

// deviceCorpus returns the bundled expectations with a device recording.
func deviceCorpus(t *testing.T) []*Expectation {
	t.Helper()
	var out []*Expectation
	for _, p := range corpus(t) {
		if e := mustLoad(t, p); e.Device != nil {
			out = append(out, e)
		}
	}
	if len(out) < 8 {
		t.Fatalf("found %d expectations with a device recording, want the bundled ones", len(out))
	}
	return out
}

// TestDeviceRecordingsJudged: every bundled recording of linux-nft is
// compared with the replay's outside view of its capture (natcheck diff),
// and every difference found is listed with the items that predict it:
// none for the real captures under the linux profile (the device kept
// every inside port, L2, as the engine does: identical), each of the
// known ones for azure-lb with tcpResetOnIdle (B14 against L5) and for
// linux-tcp-rst's exact boundary.
func TestDeviceRecordingsJudged(t *testing.T) {
	wantDiffs := map[string]int{"device-linux-nft-real-idle-keepalive-reset-azure-lb.json": 14, "device-linux-nft-scenario-linux-tcp-rst-linux.json": 3}
	for _, e := range deviceCorpus(t) {
		got, err := e.run()
		if err != nil {
			t.Fatal(err)
		}
		dev, err := e.compareDevice(got.outside)
		got.remove()
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(e.path)
		if len(dev) != wantDiffs[name] {
			t.Errorf("%s: %d differences between the replay's outside view and the device's, want %d: %v", name, len(dev), wantDiffs[name], dev)
		}
		for _, d := range e.Device.Differences {
			if strings.TrimSpace(d.PredictedBy) == "" {
				t.Errorf("%s: difference %q has no predicted_by", name, d.line())
			}
		}
		if d := e.checkDevice(dev); len(d) != 0 {
			t.Errorf("%s: %v", name, d)
		}
	}
}

// TestUnpredictedDeviceDifferenceFails: a difference whose predicted_by
// is blank makes Check fail, naming the input packet and the packets of
// both views.
func TestUnpredictedDeviceDifferenceFails(t *testing.T) {
	e := mustLoad(t, "../captures/expected/device-linux-nft-scenario-linux-tcp-rst-linux.json")
	e2 := copyExpectation(t, e)
	e2.Device.Differences[0].PredictedBy = " "
	diff, err := e2.Check()
	if !errors.Is(err, ErrMismatch) || len(diff) != 1 {
		t.Fatalf("Check = %v, %v; want ErrMismatch with one difference", diff, err)
	}
	want := "device view (" + e2.Device.Recording + "): expected a difference some item predicts (predicted_by), got only in A: B has no packet of this shape at this time (refused, dropped or sent by one NAT only); replay's packet 29, predicted by nothing"
	if diff[0].String() != want {
		t.Errorf("difference:\n got %s\nwant %s", diff[0], want)
	}
}

// TestDeviceDifferenceGoneFails: checked without tcpResetOnIdle, the
// keep-alive's replay sends no RST and releases nothing the device keeps:
// the 14 expected differences are gone, and each is reported with the
// item that predicted it.
func TestDeviceDifferenceGoneFails(t *testing.T) {
	e := copyExpectation(t, mustLoad(t, "../captures/expected/device-linux-nft-real-idle-keepalive-reset-azure-lb.json"))
	e.Setup.TCPResetOnIdle = false
	diff, err := e.Check()
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("Check = %v, want ErrMismatch", err)
	}
	gone := 0
	for _, d := range diff {
		if strings.HasPrefix(d.Field, fieldDevice) {
			if d.Got != "no such difference" || d.Behavior == "" {
				t.Errorf("device line %q: want an expected difference gone, with its item", d)
			}
			gone++
		}
	}
	if gone != 14 {
		t.Errorf("%d device differences reported gone, want 14: %v", gone, diff)
	}
	t.Log(diff[len(diff)-1])
}

// TestAlteredRecordingFails: a recording with one outside packet taken
// out (a device that dropped it) is a difference, with the replay's packet
// shown; a recording of another capture differs everywhere.
func TestAlteredRecordingFails(t *testing.T) {
	e := copyExpectation(t, mustLoad(t, "../captures/expected/device-linux-nft-real-http-curl-linux.json"))
	if diff, err := e.Check(); err != nil {
		t.Fatalf("unaltered: %v %v", err, diff)
	}
	cut := filepath.Join(t.TempDir(), "cut.pcapng")
	dropped := withoutOutsidePacket(t, e.Device.Recording, cut, 5)
	e.Device.Recording = cut
	diff, err := e.Check()
	if !errors.Is(err, ErrMismatch) || len(diff) != 1 {
		t.Fatalf("one outside packet taken out: Check = %v, %v; want one difference", diff, err)
	}
	if d := diff[0]; !strings.Contains(d.Got, "only in A") || !strings.Contains(d.Got, "replay's packet 5") {
		t.Errorf("difference %q: want the replay's packet 5 only in A (the recording's packet %d was taken out)", d, dropped)
	}
	e.Device.Recording, _ = filepath.Abs("../captures/device/real-dns-udp.linux-nft.pcapng")
	if diff, err := e.Check(); !errors.Is(err, ErrMismatch) || len(diff) < 36 {
		t.Errorf("another capture's recording: Check = %d differences, %v; want one for each packet at least", len(diff), err)
	}
	e.Device.Recording = filepath.Join(t.TempDir(), "missing.pcapng")
	if _, err := e.Check(); !errors.Is(err, ErrExpectation) || !strings.Contains(err.Error(), "missing.pcapng") {
		t.Errorf("missing recording: Check = %v, want ErrExpectation naming it", err)
	}
}

// withoutOutsidePacket copies the recording src to dst without the n-th
// packet of its outside interface, and returns that packet's number.
func withoutOutsidePacket(t *testing.T, src, dst string, n int) int {
	t.Helper()
	rd, err := capture.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	w, err := capture.Create(dst, capture.Interface{Name: "inside", LinkType: layers.LinkTypeEthernet}, capture.Interface{Name: "outside", LinkType: layers.LinkTypeEthernet})
	if err != nil {
		t.Fatal(err)
	}
	seen, dropped := 0, 0
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Interface == 1 {
			if seen++; seen == n {
				dropped = rec.Number
				continue
			}
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dropped
}

// TestUpdateKeepsPredictedBy: --update records the device's differences
// as natcheck diff finds them, keeping the hand-written predicted_by of
// each that is the same and leaving a new one without (so regress fails
// on it until someone names what predicts it).
func TestUpdateKeepsPredictedBy(t *testing.T) {
	e := copyExpectation(t, mustLoad(t, "../captures/expected/device-linux-nft-real-idle-keepalive-reset-azure-lb.json"))
	want := e.Device.Differences[3].PredictedBy
	e.Device.Differences = e.Device.Differences[1:] // the first is new to the file now
	if err := e.Update(); err != nil {
		t.Fatal(err)
	}
	u := mustLoad(t, e.path)
	if len(u.Device.Differences) != 14 || u.Device.Differences[0].PredictedBy != "" || u.Device.Differences[3].PredictedBy != want {
		t.Fatalf("after update: %d differences, first predicted by %q, fourth by %q; want 14, \"\", %q",
			len(u.Device.Differences), u.Device.Differences[0].PredictedBy, u.Device.Differences[3].PredictedBy, want)
	}
	if _, err := u.Check(); !errors.Is(err, ErrMismatch) {
		t.Errorf("after update with an unpredicted difference: Check = %v, want ErrMismatch", err)
	}
}

// TestCorpusUnder5MB: the committed corpus (captures/: the public,
// generated, real and device captures and the expectation files) stays
// under 5 MB in all.
func TestCorpusUnder5MB(t *testing.T) {
	var total int64
	err := filepath.WalkDir("../captures", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		st, err := d.Info()
		total += st.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if total >= 5<<20 {
		t.Errorf("captures/ holds %d bytes, want under 5 MB (%d)", total, 5<<20)
	}
	t.Logf("captures/: %d bytes", total)
}
