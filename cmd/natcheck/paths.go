package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/replay"
	"github.com/natcheck/natcheck/replay/capture"
)

// outputPath is an output a flag names.
type outputPath struct {
	flag, path string
}

// checkOutputs checks, before any input is read, every output path: that
// its folder exists and it can be written (else exitOutput), and that it
// names neither an input (which it would truncate before it is read) nor
// another output (else exitUsage). A file the check creates is removed
// again, so that a replay refused later leaves nothing behind.
func checkOutputs(inputs []string, outs ...outputPath) error {
	var inStats []fs.FileInfo
	for _, in := range inputs {
		if in == "-" {
			continue
		}
		if st, err := os.Stat(in); err == nil {
			inStats = append(inStats, st)
		}
	}
	seen := map[string]string{}
	for _, o := range outs {
		if o.path == "" || o.path == "-" {
			continue // none, or standard output
		}
		abs, err := filepath.Abs(o.path)
		if err != nil {
			return usageErr(fmt.Errorf("%s %s: %w", o.flag, o.path, err))
		}
		if other, ok := seen[abs]; ok {
			return usageErr(fmt.Errorf("%s %s: also named by %s; give each output its own file", o.flag, o.path, other))
		}
		seen[abs] = o.flag
		st, err := os.Stat(o.path)
		existed := err == nil
		switch {
		case existed && st.IsDir():
			return usageErr(fmt.Errorf("%s %s: is a folder; name a file", o.flag, o.path))
		case existed:
			for _, in := range inStats {
				if os.SameFile(st, in) {
					return usageErr(fmt.Errorf("%s %s: is also an input; writing it would destroy the capture before it is read", o.flag, o.path))
				}
			}
		}
		dir := filepath.Dir(o.path)
		if dst, err := os.Stat(dir); err != nil || !dst.IsDir() {
			return outputErr(fmt.Errorf("%s %s: folder %s does not exist", o.flag, o.path, dir))
		}
		f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return outputErr(fmt.Errorf("%s %s: cannot write: %w", o.flag, o.path, errors.Unwrap(err)))
		}
		f.Close()
		if !existed {
			os.Remove(o.path)
		}
	}
	return nil
}

// writeErrnos are the errors of a write that failed for lack of room or
// of a reader: an output error, not bad input.
var writeErrnos = []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG, syscall.EPIPE, syscall.EROFS, syscall.EIO, syscall.EBADF, os.ErrClosed}

// classifyRun gives an error of a run (replay, regress) its exit code:
// a configuration the documents reject is usage, a capture that cannot be
// read (or a packet the engine cannot take) is bad input, a failed write is
// an output error.
func classifyRun(err error) error {
	var ce *capture.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, replay.ErrInterrupted):
		return &exitError{code: exitInterrupted, err: err}
	case errors.Is(err, reference.ErrConfig):
		return usageErr(err)
	case errors.As(err, &ce):
		return inputErr(err)
	}
	for _, e := range writeErrnos {
		if errors.Is(err, e) {
			return outputErr(err)
		}
	}
	return inputErr(err)
}
