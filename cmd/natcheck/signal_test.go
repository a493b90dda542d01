package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/natcheck/natcheck/internal/pcapgen"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay/capture"
)

// bigCapture is a pcap of n TCP packets from 10.0.0.1 (SYNs to distinct
// servers, 1 ms apart), about 100 bytes each.
func bigCapture(t *testing.T, n int) []byte {
	t.Helper()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ps := make([]reference.Packet, n)
	for i := range ps {
		ps[i] = reference.Packet{Time: t0.Add(time.Duration(i) * time.Millisecond), Flags: reference.SYN,
			Tuple: reference.Tuple{Proto: reference.TCP, Src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 1}), uint16(1024+i%60000)),
				Dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(100 + i/60000), byte(i % 250)}), uint16(1+i%1000))}}
	}
	var b bytes.Buffer
	if err := pcapgen.WritePCAP(&b, ps, []byte("natcheck-payload-natcheck-payload")); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// syncBuffer is a buffer a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until buf holds want, for at most a minute (a guard
// against a hang, not a measure of time).
func waitFor(t *testing.T, buf *syncBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(buf.String(), want) {
			return
		}
	}
	t.Fatalf("no %q in:\n%s", want, buf.String())
}

// TestCtrlC: a real SIGINT to a replay reading standard input. The first
// stops it at the next record: the pcapng file is whole (every block
// reads back), the events end on a whole line, the report is printed and
// marked partial, and the exit code is 130. The input is fed through a
// pipe: more than the pipe and the reader's buffer hold is written before
// the signal, so packets were replayed before it; the rest after it.
func TestCtrlC(t *testing.T) {
	data := bigCapture(t, 60000)
	dir := t.TempDir()
	out, ev := filepath.Join(dir, "out.pcapng"), filepath.Join(dir, "ev.jsonl")
	cmd := exec.Command(natcheckBin, "replay", "--backends", "10.0.0.1", "--workers", "2", "-w", out, "--events", ev, "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	half := len(data) / 2
	if _, err := stdin.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &stderr, "natcheck: interrupted")
	_, _ = stdin.Write(data[half:]) // the replay may have stopped reading: EPIPE is fine
	stdin.Close()
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("natcheck replay after Ctrl-C: %v, want exit %d\nstdout:\n%s\nstderr:\n%s", err, exitInterrupted, stdout.String(), stderr.String())
	}
	report := stdout.String()
	m := regexp.MustCompile(`(\d+) packets from`).FindStringSubmatch(report)
	if !strings.Contains(report, "PARTIAL REPORT") || !strings.Contains(report, "interrupted") || m == nil {
		t.Fatalf("the report is not marked partial and interrupted:\n%s", report)
	}
	var packets int
	fmt.Sscan(m[1], &packets)
	if packets == 0 || packets >= 60000 {
		t.Errorf("the report covers %d packets, want some of the 60000", packets)
	}
	// The outside view reads back to its end, block by block.
	rd, err := capture.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	written := 0
	for {
		if _, err := rd.Next(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("the outside view after Ctrl-C: %v", err)
			}
			break
		}
		written++
	}
	rd.Close()
	if written == 0 || written > packets {
		t.Errorf("the outside view has %d packets, want 1 to %d", written, packets)
	}
	b, err := os.ReadFile(ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("the events file (%d bytes) does not end on a whole line", len(b))
	}
	for _, line := range bytes.Split(b[:len(b)-1], []byte("\n")) {
		if !json.Valid(line) {
			t.Fatalf("event line %q is not JSON", line)
		}
	}
}

// TestSecondCtrlCQuitsAtOnce: with the replay blocked on standard input
// after the first SIGINT, a second one ends the process at once, exit 130,
// leaving no copy of standard input behind.
func TestSecondCtrlCQuitsAtOnce(t *testing.T) {
	data := bigCapture(t, 20000)
	// A prefix: detection reads the input twice, so standard input is
	// being copied to a file when the second Ctrl-C comes.
	cmd := exec.Command(natcheckBin, "replay", "--backends", "10.0.0.0/24", "-")
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := stdin.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &stderr, "natcheck: interrupted")
	// The reader now waits for input that does not come.
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("a second Ctrl-C did not end the process")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Errorf("after a second Ctrl-C: %v, want exit %d", err, exitInterrupted)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("after a second Ctrl-C, %s holds %v: the copy of standard input was left behind", tmp, left)
	}
}

// TestStandardInputAndOutput: "-" reads the capture from standard input
// (detection included), and -w - writes the outside view to standard
// output, byte for byte what -w FILE writes, with the report on standard
// error.
func TestStandardInputAndOutput(t *testing.T) {
	data, err := os.ReadFile(vpn)
	if err != nil {
		t.Fatal(err)
	}
	file := run(t, "replay", "--ports-per-instance", "8", vpn)
	for _, args := range [][]string{{"replay", "--ports-per-instance", "8", "-"}, {"replay", "--ports-per-instance", "8", "--backends", "10.0.0.227", "-"}} {
		cmd := exec.Command(natcheckBin, args...)
		cmd.Stdin = bytes.NewReader(data)
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("natcheck %v < capture: %v", args, err)
		}
		want := strings.Replace(file.stdout, vpn, "standard input", 1)
		if args[3] == "--backends" {
			want = strings.Replace(want, "detected (private addresses that open flows to public addresses, ascending; only their traffic with public addresses crosses the NAT)", "given by --backends (in order; a prefix as its addresses seen in the capture, ascending)", 1)
			want = regexp.MustCompile(`(?s)through the NAT: .*?\n`).ReplaceAllString(want, "")
			got = regexp.MustCompile(`(?s)through the NAT: .*?\n`).ReplaceAll(got, nil)
		}
		if !strings.Contains(string(got), "EXHAUSTED: 8 new flows refused (B9), first at packet 348") || (args[3] != "--backends" && string(got) != want) {
			t.Errorf("natcheck %v < capture:\n%s\nwant:\n%s", args, got, want)
		}
	}
	path := filepath.Join(t.TempDir(), "out.pcapng")
	if r := run(t, "replay", "-w", path, vpn); r.code != exitOK {
		t.Fatal(r)
	}
	want, _ := os.ReadFile(path)
	cmd := exec.Command(natcheckBin, "replay", "-w", "-", vpn)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil || !bytes.Equal(got, want) || !strings.Contains(stderr.String(), "verdict per instance") {
		t.Errorf("natcheck replay -w -: %v, %d bytes (want %d, the same as -w FILE), report on stderr: %q", err, len(got), len(want), stderr.String())
	}
	if r := run(t, "replay", "-w", "-", "--events", "-", vpn); r.code != exitUsage {
		t.Errorf("natcheck replay -w - --events -: %s, want exit 2", r)
	}
}

// TestProgressBarOnATerminal: with standard error a terminal (a
// pseudo-terminal here), the progress bar shows bytes and a percentage in
// the detection pass and in the replay; not a terminal, no bar.
func TestProgressBarOnATerminal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.pcap")
	if err := os.WriteFile(path, bigCapture(t, 40000), 0o644); err != nil {
		t.Fatal(err)
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 30, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(natcheckBin, "replay", path)
	cmd.Stderr = tty
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&screen, ptmx) // ends with EIO once the process closes the terminal
		close(copied)
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("natcheck replay on a terminal: %v", err)
	}
	<-copied
	s := screen.String()
	for _, re := range []string{`detecting backends\s+100% \|`, `replaying\s+100% \|`, `\(\d+(\.\d+)?/\d+(\.\d+)? MB`} {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("the terminal shows no %s:\n%q", re, s)
		}
	}
	if strings.Contains(s, "0 B ") && !strings.Contains(s, "%") {
		t.Errorf("the bar shows 0 B and no percentage:\n%q", s)
	}
	if r := run(t, "replay", path); strings.Contains(r.stderr, "%") {
		t.Errorf("a bar on a standard error that is not a terminal:\n%s", r.stderr)
	}
}
