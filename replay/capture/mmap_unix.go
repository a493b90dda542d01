//go:build unix

package capture

import (
	"os"
	"syscall"
)

// mapFile maps f's size bytes read-only, or returns nil when it cannot.
func mapFile(f *os.File, size int64) []byte {
	if size <= 0 || int64(int(size)) != size {
		return nil
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	_ = syscall.Madvise(b, syscall.MADV_SEQUENTIAL)
	return b
}

func unmapFile(b []byte) { _ = syscall.Munmap(b) }

// releaseMapped drops b's pages from the process's resident memory (they
// stay in the page cache; reading them again maps them again).
func releaseMapped(b []byte) { _ = syscall.Madvise(b, syscall.MADV_DONTNEED) }
