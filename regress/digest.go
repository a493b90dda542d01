package regress

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
	"github.com/natcheck/natcheck/replay/frame"
)

// Digest stands for an output file in an expectation: the SHA-256 of its
// bytes, its number of records (lines of the events file, packets of the
// outside view), and a 32-bit fingerprint per record, so that a change
// can be traced to its first differing record without keeping the file.
// An output of more than maxFingerprints records gets one fingerprint per
// run of PerFingerprint records (the fingerprint of theirs).
type Digest struct {
	SHA256         string `json:"sha256"`
	Records        int64  `json:"records"`
	PerFingerprint int64  `json:"records_per_fingerprint"`
	// Fingerprints are 8 hex digits each, fingerprintsPerLine to a string
	// separated by spaces (a JSON line of reasonable length).
	Fingerprints []string `json:"fingerprints"`
}

// maxFingerprints bounds the fingerprints of one digest: 4,096 take 36 KB
// of JSON.
const (
	maxFingerprints     = 4096
	fingerprintsPerLine = 8
)

// Equal reports whether d and o are the same digest, fingerprints
// included; two nil digests are equal.
func (d *Digest) Equal(o *Digest) bool {
	if d == nil || o == nil {
		return d == o
	}
	return d.SHA256 == o.SHA256 && d.Records == o.Records && d.PerFingerprint == o.PerFingerprint && slices.Equal(d.Fingerprints, o.Fingerprints)
}

// short is the digest in a line: "sha256 1a2b3c4d5e6f…, 412 records".
func (d *Digest) short() string {
	if d == nil {
		return "(none)"
	}
	h := d.SHA256
	if len(h) > 16 {
		h = h[:16] + "…"
	}
	return fmt.Sprintf("sha256 %s, %d records", h, d.Records)
}

// fingerprints returns the fingerprints as numbers, or nil if they cannot
// be read (a hand-edited file).
func (d *Digest) fingerprints() []uint32 {
	if d == nil {
		return nil
	}
	var out []uint32
	for _, line := range d.Fingerprints {
		for _, f := range strings.Fields(line) {
			b, err := hex.DecodeString(f)
			if err != nil || len(b) != 4 {
				return nil
			}
			out = append(out, binary.BigEndian.Uint32(b))
		}
	}
	return out
}

// digester builds a Digest from the file's bytes and its records.
type digester struct {
	all  []uint32 // one per record
	file []byte
}

func (g *digester) record(parts ...[]byte) {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	g.all = append(g.all, binary.BigEndian.Uint32(h.Sum(nil)))
}

func (g *digester) digest() *Digest {
	sum := sha256.Sum256(g.file)
	n := int64(len(g.all))
	per := max((n+maxFingerprints-1)/maxFingerprints, 1)
	d := &Digest{SHA256: hex.EncodeToString(sum[:]), Records: n, PerFingerprint: per, Fingerprints: []string{}}
	var line []string
	for i := int64(0); i < n; i += per {
		fp := g.all[i]
		if per > 1 {
			fp = blockFingerprint(g.all[i:min(i+per, n)])
		}
		line = append(line, fmt.Sprintf("%08x", fp))
		if len(line) == fingerprintsPerLine {
			d.Fingerprints = append(d.Fingerprints, strings.Join(line, " "))
			line = line[:0]
		}
	}
	if len(line) > 0 {
		d.Fingerprints = append(d.Fingerprints, strings.Join(line, " "))
	}
	return d
}

func blockFingerprint(fps []uint32) uint32 {
	h := sha256.New()
	var b [4]byte
	for _, f := range fps {
		binary.BigEndian.PutUint32(b[:], f)
		h.Write(b[:])
	}
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// digestLines digests a file of lines (the events file): a record per
// line, without its newline.
func digestLines(path string) (*Digest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	g := &digester{file: b}
	for line := range bytes.Lines(b) {
		g.record(bytes.TrimSuffix(line, []byte("\n")))
	}
	return g.digest(), nil
}

// digestCapture digests a capture (the outside view): a record per packet,
// over its interface's link type, time, length, comments and bytes.
func digestCapture(path string) (*Digest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	g := &digester{file: b}
	err = eachRecord(path, func(rec capture.Record) bool {
		var head [14]byte
		binary.BigEndian.PutUint16(head[0:], uint16(rec.LinkType))
		binary.BigEndian.PutUint64(head[2:], uint64(rec.Time.UnixNano()))
		binary.BigEndian.PutUint32(head[10:], uint32(rec.Length))
		g.record(head[:], []byte(strings.Join(rec.Comments, "\x00")), []byte{0}, rec.Data)
		return true
	})
	if err != nil {
		return nil, err
	}
	return g.digest(), nil
}

// eachRecord calls fn with every record of a capture until it returns
// false.
func eachRecord(path string, fn func(capture.Record) bool) error {
	rd, err := capture.Open(path)
	if err != nil {
		return err
	}
	defer rd.Close()
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fn(rec) {
			return nil
		}
	}
}

// firstDifference finds the first fingerprint of want that got does not
// share and says what happened there: a record that differs, one more in
// got (inserted), one fewer (missing), or the end of one output. i is the
// record's index in got (or, for a missing one, in want), 0-based.
func firstDifference(want, got *Digest) (i int64, what string, ok bool) {
	if want == nil || got == nil {
		return 0, "", false
	}
	wf, gf := want.fingerprints(), got.fingerprints()
	if wf == nil && want.Records > 0 || want.PerFingerprint != got.PerFingerprint {
		return 0, "", false
	}
	k := 0
	for k < len(wf) && k < len(gf) && wf[k] == gf[k] {
		k++
	}
	per := got.PerFingerprint
	i = int64(k) * per
	switch {
	case k == len(wf) && k == len(gf):
		return 0, "", false // the same records: the difference is elsewhere
	case k == len(gf):
		return i, "missing", true
	case k == len(wf):
		return i, "extra", true
	case per == 1 && resumes(gf[k+1:], wf[k:]):
		return i, "inserted", true
	case per == 1 && resumes(gf[k:], wf[k+1:]):
		return i, "missing", true
	}
	return i, "differs", true
}

// resumes reports whether a and b agree again: on their next few records
// (resumeWindow), or to the end of both if shorter.
func resumes(a, b []uint32) bool {
	n := min(len(a), len(b), resumeWindow)
	if n < resumeWindow && len(a) != len(b) {
		return false
	}
	return slices.Equal(a[:n], b[:n])
}

// resumeWindow is how many records must agree after a record for it to be
// called inserted or missing rather than changed.
const resumeWindow = 4

// explainEvents replaces the digest difference d of the events file by
// its first differing line, read from the new events file.
func explainEvents(d Difference, want, got *Digest, path string) Difference {
	i, what, ok := firstDifference(want, got)
	if !ok {
		return d
	}
	var line []byte
	if what != "missing" {
		if b, err := os.ReadFile(path); err == nil {
			var n int64
			for l := range bytes.Lines(b) {
				if n == i {
					line = bytes.TrimSuffix(l, []byte("\n"))
					break
				}
				n++
			}
		}
	}
	var ev struct {
		Packet   int64  `json:"packet"`
		Behavior string `json:"behavior"`
	}
	_ = json.Unmarshal(line, &ev) // a line that is not JSON is shown as it is
	d.Packet, d.Behavior = ev.Packet, ev.Behavior
	d.Field = fmt.Sprintf("events line %d", i+1)
	if got.PerFingerprint > 1 {
		d.Field = fmt.Sprintf("events lines %d–%d", i+1, min(i+got.PerFingerprint, max(want.Records, got.Records)))
	}
	d.Expected, d.Got = expectedRecord(want, i, what), string(line)
	if what == "missing" {
		d.Got = "(none: the line is missing)"
	} else if what != "differs" {
		d.Got += " (" + what + ")"
	}
	return d
}

// explainOutside replaces the digest difference d of the outside view by
// its first differing packet, read from the new outside view; the input
// packet it came from is found in the capture by time and length.
func explainOutside(d Difference, want, got *Digest, path, input string, start time.Time) Difference {
	i, what, ok := firstDifference(want, got)
	if !ok {
		return d
	}
	d.Field = fmt.Sprintf("outside view packet %d", i+1)
	if got.PerFingerprint > 1 {
		d.Field = fmt.Sprintf("outside view packets %d–%d", i+1, min(i+got.PerFingerprint, max(want.Records, got.Records)))
	}
	d.Expected = expectedRecord(want, i, what)
	if what == "missing" {
		d.Got = "(none: the packet is missing)"
		return d
	}
	var rec capture.Record
	var n int64
	found := false
	_ = eachRecord(path, func(r capture.Record) bool {
		if n == i {
			rec, found = r, true
			rec.Data = slices.Clone(r.Data)
			return false
		}
		n++
		return true
	})
	if !found {
		return d
	}
	d.Got = describePacket(rec, start)
	if what != "differs" {
		d.Got += " (" + what + ")"
	}
	for _, c := range rec.Comments {
		if id, _, _ := strings.Cut(c, " "); id != "" {
			if _, err := reference.ParseBehavior(id); err == nil {
				d.Behavior = id
				break
			}
		}
	}
	d.Packet = inputPacket(input, rec)
	return d
}

// expectedRecord says what the expectation holds for record i: only its
// fingerprint is kept.
func expectedRecord(want *Digest, i int64, what string) string {
	if what == "extra" || what == "inserted" {
		if what == "extra" {
			return "(none: the output ended)"
		}
		return "(none here)"
	}
	fps := want.fingerprints()
	k := i / max(want.PerFingerprint, 1)
	if k < int64(len(fps)) {
		return fmt.Sprintf("a record of fingerprint %08x", fps[k])
	}
	return "(none)"
}

// describePacket renders a packet of the outside view in one line.
func describePacket(rec capture.Record, start time.Time) string {
	var f frame.Frame
	var b strings.Builder
	fmt.Fprintf(&b, "at +%s: ", rec.Time.Sub(start))
	if err := frame.Decode(rec.LinkType, rec.Data, &f); err != nil || f.Network != frame.IPv4 {
		fmt.Fprintf(&b, "%d bytes (%s)", len(rec.Data), f.Network)
	} else {
		tu := f.Tuple()
		fmt.Fprintf(&b, "%s %s > %s", tu.Proto, tu.Src, tu.Dst)
		if f.Proto == reference.TCP {
			fmt.Fprintf(&b, " [%s]", f.Flags)
		}
		fmt.Fprintf(&b, " len %d", f.PayloadLen)
	}
	for _, c := range rec.Comments {
		fmt.Fprintf(&b, " %q", c)
	}
	return b.String()
}

// inputPacket returns the number of the input packet that became rec: the
// first of its time and length (0 for a packet the NAT sent itself).
func inputPacket(input string, rec capture.Record) int64 {
	var num int64
	_ = eachRecord(input, func(r capture.Record) bool {
		if r.Time.Equal(rec.Time) && r.Length == rec.Length && len(r.Data) == len(rec.Data) {
			num = int64(r.Number)
			return false
		}
		return !r.Time.After(rec.Time)
	})
	return num
}
