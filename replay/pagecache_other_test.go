//go:build !linux

package replay

import "testing"

// freshInPageCache leaves the page cache as it is where the kernel offers
// no way to drop a file's pages (see the Linux version).
func freshInPageCache(b *testing.B, path string) {}
