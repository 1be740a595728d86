//go:build linux

package cpu

import (
	"os"
	"syscall"
)

// allocate reserves the file's blocks for [off, off+n), growing it.
func allocate(f *os.File, off, n int64) error { return syscall.Fallocate(int(f.Fd()), 0, off, n) }
