package replay

import (
	"errors"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// freshInPageCache puts the capture at path in the page cache the way one
// sequential read of it from the disk does: it drops the file's cached
// pages, then reads it through once. How the kernel holds a file depends
// on its history (written, read, evicted in part): on this machine a
// capture re-read after eviction sits in 2 MB folios (`FilePmdMapped` in
// /proc/PID/smaps when mapped) while one left from an earlier state sat in
// 4 KB pages and took ten times the page faults in the mapped first pass
// (docs/BENCHMARKS.md); comparing captures of different lengths in
// different states measured the page cache, not the replay.
func freshInPageCache(b *testing.B, path string) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	// Dirty pages (a capture just written) are not dropped: write them first.
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Read(buf); err != nil {
			if errors.Is(err, io.EOF) {
				return
			}
			b.Fatal(err)
		}
	}
}
