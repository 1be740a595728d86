//go:build unix

package cpu

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// kvFile backs a mapped-tier store: a file that grows by one region per page, each region mapped on its
// own, so that a host can hold contexts beyond its RAM (the kernel pages rows in and out as the gathers
// touch them). The file is unlinked at once, so a crash leaves nothing behind.
type kvFile struct {
	f      *os.File
	size   int64
	chunks [][]byte // mapped regions, one per page
}

func newKVFile(dir string) (*kvFile, error) {
	f, err := os.CreateTemp(dir, "omnikv-kv-*.bin")
	if err != nil {
		return nil, fmt.Errorf("kv file store: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("kv file store: %w", err)
	}
	return &kvFile{f: f}, nil
}

// grow appends n bytes to the file and maps them.
func (s *kvFile) grow(n int) ([]byte, error) {
	// Allocate the blocks now (not a sparse file): a full disk is an error here, not a SIGBUS when a page
	// is first written.
	if err := allocate(s.f, s.size, int64(n)); err != nil {
		return nil, fmt.Errorf("kv file store: grow %s by %d bytes: %w", s.f.Name(), n, err)
	}
	pg := int64(os.Getpagesize())
	off := s.size / pg * pg
	b, err := syscall.Mmap(int(s.f.Fd()), off, int(s.size+int64(n)-off), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("kv file store: mmap %s: %w", s.f.Name(), err)
	}
	s.chunks = append(s.chunks, b)
	b = b[s.size-off:]
	s.size += int64(n)
	return b[:n:n], nil
}

func (s *kvFile) close() {
	for _, b := range s.chunks {
		syscall.Munmap(b)
	}
	s.chunks = nil
	s.f.Close()
}

// anonBlock maps n bytes of anonymous memory for KV pages, asking for transparent huge pages (attention
// streams through pages and the gathers read scattered rows: both cross fewer TLB entries), and returns it
// with its unmap. It returns nil when the mapping fails (the caller falls back to the Go heap).
func anonBlock(n int) ([]byte, func()) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, nil
	}
	syscall.Madvise(b, madvHugepage)
	return b, func() { syscall.Munmap(b) }
}

// madvHugepage is MADV_HUGEPAGE (linux; elsewhere the advice is refused and ignored).
const madvHugepage = 14

// bytesAs views b as values of type T (b is aligned to T: the regions start page-aligned plus whole pages).
func bytesAs[T uint16 | float32](b []byte) []T {
	var z T
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/int(unsafe.Sizeof(z)))
}
