//go:build unix

package weights

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// mapFile maps the whole file at path read-only. The returned release function unmaps it. An empty file
// maps to an empty slice.
func mapFile(path string) ([]byte, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("stat: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("not a regular file")
	}
	size := fi.Size()
	if size == 0 {
		return []byte{}, func() error { return nil }, nil
	}
	if size != int64(int(size)) {
		return nil, nil, fmt.Errorf("file of %d bytes is too large to map", size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap: %w", err)
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}

// fileMapped: tensors opened here lie in file mappings.
const fileMapped = true

// dropPages releases the whole pages inside b, a part of a shared read-only file mapping: they leave the
// resident set and fault back in from the page cache when touched.
func dropPages(b []byte) {
	ps := os.Getpagesize()
	start := int(uintptr(unsafe.Pointer(&b[0])) % uintptr(ps))
	lo := (ps - start) % ps          // offset of the first whole page
	hi := len(b) - (start+len(b))%ps // end of the last whole page
	if hi > lo {
		_ = syscall.Madvise(b[lo:hi], syscall.MADV_DONTNEED) // advice only: failure leaves the pages resident
	}
}
