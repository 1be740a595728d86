//go:build linux

package cpu

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
)

// fallocate modes (linux/falloc.h).
const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
)

// discard gives a range's memory back to the kernel and leaves it reading as zeros:
//   - RAM (device and host tiers): madvise(MADV_DONTNEED) on the whole OS pages inside the range (private
//     anonymous memory: the next touch faults in a zero page); the bytes of the OS pages that the range
//     shares with its neighbours are zeroed instead (only when not zero already, so that a neighbour that
//     was discarded too is not faulted back in).
//   - a mapped store: fallocate(PUNCH_HOLE|KEEP_SIZE) on the range of the file, which frees its blocks and
//     page cache and zeroes the bytes of partial blocks, then madvise(MADV_DONTNEED) drops this mapping of
//     the whole OS pages. A file system that cannot punch holes keeps the blocks: then only the madvise is
//     done, the page cache is left for the kernel to reclaim, and the contents stay as they were.
func (st *kvStore) discard(r kvRange) error {
	b := r.c.mem[r.lo:r.hi]
	if st.file != nil {
		err := syscall.Fallocate(int(st.file.f.Fd()), fallocPunchHole|fallocKeepSize, r.c.fileOff+int64(r.lo), int64(r.hi-r.lo))
		if err != nil && !errors.Is(err, syscall.EOPNOTSUPP) {
			return err
		}
		_, inner, _ := splitPages(b)
		return madvise(inner)
	}
	head, inner, tail := splitPages(b)
	zeroIfDirty(head)
	zeroIfDirty(tail)
	return madvise(inner)
}

// recommit allocates the file blocks of a mapped store's range again (blocks still allocated are kept).
func (st *kvStore) recommit(r kvRange) error {
	return syscall.Fallocate(int(st.file.f.Fd()), 0, r.c.fileOff+int64(r.lo), int64(r.hi-r.lo))
}

// splitPages splits b into the bytes before its first whole OS page, its whole OS pages, and the bytes after.
func splitPages(b []byte) (head, inner, tail []byte) {
	if len(b) == 0 {
		return nil, nil, nil
	}
	pg := uintptr(os.Getpagesize())
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := (addr + pg - 1) / pg * pg
	hi := (addr + uintptr(len(b))) / pg * pg
	if hi <= lo {
		return b, nil, nil
	}
	return b[:lo-addr], b[lo-addr : hi-addr], b[hi-addr:]
}

func madvise(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return syscall.Madvise(b, syscall.MADV_DONTNEED)
}

// zeroIfDirty zeroes b unless it reads as zeros already (reading a released page maps the shared zero page;
// writing would fault in a new one).
func zeroIfDirty(b []byte) {
	for _, x := range b {
		if x != 0 {
			clear(b)
			return
		}
	}
}
