//go:build !unix

package capture

import "os"

func mapFile(*os.File, int64) []byte { return nil }

func unmapFile([]byte) {}

func releaseMapped([]byte) {}
