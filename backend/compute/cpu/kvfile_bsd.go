//go:build unix && !linux

package cpu

import "os"

// allocate grows the file to off+n (sparse: this OS has no fallocate in package syscall).
func allocate(f *os.File, off, n int64) error { return f.Truncate(off + n) }
