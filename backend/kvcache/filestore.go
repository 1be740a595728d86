//go:build unix

package kvcache

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// FileStore keeps offload-tier pages in a memory-mapped file, so that a host can hold contexts beyond its
// RAM: the kernel pages rows in and out as the gathers touch them. The file is removed when the store is
// closed (and unlinked right away on creation, so a crash leaves nothing behind).
type FileStore struct {
	mu     sync.Mutex
	f      *os.File
	size   int64
	chunks [][]byte // mapped regions, one per page
}

// NewFileStore creates the backing file in dir.
func NewFileStore(dir string) (*FileStore, error) {
	f, err := os.CreateTemp(dir, "omnikv-kv-*.bin")
	if err != nil {
		return nil, fmt.Errorf("kv file store: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("kv file store: %w", err)
	}
	return &FileStore{f: f}, nil
}

// NewPage implements Store: the page's K and V are views of a new region at the end of the file.
func (s *FileStore) NewPage(page, kvDim int, dt compute.KVDType) (*compute.KVPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	half := page * kvDim * dt.Bytes()
	n := int64(2 * half)
	if err := s.f.Truncate(s.size + n); err != nil {
		return nil, fmt.Errorf("kv file store: grow %s: %w", s.f.Name(), err)
	}
	// Map each page on its own, from the offset rounded down to the OS page size.
	pg := int64(os.Getpagesize())
	off := s.size / pg * pg
	b, err := syscall.Mmap(int(s.f.Fd()), off, int(s.size+n-off), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("kv file store: mmap %s: %w", s.f.Name(), err)
	}
	s.chunks = append(s.chunks, b)
	b = b[s.size-off:]
	s.size += n
	k, v := b[:half], b[half:2*half]
	p := &compute.KVPage{}
	if dt == compute.KVF32 {
		p.K32 = unsafe.Slice((*float32)(unsafe.Pointer(&k[0])), len(k)/4)
		p.V32 = unsafe.Slice((*float32)(unsafe.Pointer(&v[0])), len(v)/4)
	} else {
		p.K16 = unsafe.Slice((*uint16)(unsafe.Pointer(&k[0])), len(k)/2)
		p.V16 = unsafe.Slice((*uint16)(unsafe.Pointer(&v[0])), len(v)/2)
	}
	return p, nil
}

// Bytes returns the size of the backing file.
func (s *FileStore) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// Close unmaps every page and closes the file; pages must not be used afterwards.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, b := range s.chunks {
		if err := syscall.Munmap(b); err != nil && first == nil {
			first = err
		}
	}
	s.chunks = nil
	if err := s.f.Close(); err != nil && first == nil {
		first = err
	}
	return first
}
