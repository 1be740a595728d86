//go:build cgo

package cuda

import (
	"fmt"
	"math/bits"
)

// pool is the device's memory pool: every allocation is rounded up to a size class (powers of two from
// 512 bytes to 1 MiB, then multiples of 1 MiB, so that a large weight wastes little) and a freed block goes back to its class's free list, to be
// handed out again without a driver call. Reuse is safe without synchronization because every op that
// touches pooled memory runs on the compute stream, in order (the copy stream only reads and writes KV
// stores and selection states, and the compute stream waits for it before any of those is freed). Blocks
// return to the driver only when an allocation fails (trim, then one retry) and at Close.
type pool struct {
	d     gpuAPI
	free  map[int][]dptr // size class -> free blocks
	size  map[dptr]int   // every live block -> its class
	inUse int64          // bytes handed out
	held  int64          // bytes allocated from the driver
	sync  func() error   // waits for the streams before a trim
}

func newPool(d gpuAPI, sync func() error) *pool {
	return &pool{d: d, free: map[int][]dptr{}, size: map[dptr]int{}, sync: sync}
}

// class rounds n up to its size class.
func class(n int) int {
	const small, big = 512, 1 << 20
	switch {
	case n <= small:
		return small
	case n <= big:
		return 1 << bits.Len(uint(n-1))
	default:
		return (n + big - 1) &^ (big - 1)
	}
}

// get returns a block of at least n bytes (not zeroed).
func (p *pool) get(n int, op string) (dptr, error) {
	c := class(n)
	if l := p.free[c]; len(l) > 0 {
		b := l[len(l)-1]
		p.free[c] = l[:len(l)-1]
		p.size[b] = c
		p.inUse += int64(c)
		return b, nil
	}
	b, err := p.d.alloc(c, op)
	if err != nil {
		// Out of memory, maybe only because of cached blocks: give them back and try once more.
		if p.trim() > 0 {
			b, err = p.d.alloc(c, op)
		}
		if err != nil {
			return 0, fmt.Errorf("%w (pool: %d MiB in use, %d MiB held)", err, p.inUse>>20, p.held>>20)
		}
	}
	p.held += int64(c)
	p.size[b] = c
	p.inUse += int64(c)
	return b, nil
}

// put returns a block to its free list.
func (p *pool) put(b dptr) {
	if b == 0 {
		return
	}
	c, ok := p.size[b]
	if !ok {
		panic(fmt.Sprintf("cuda pool: free of %#x, which the pool did not hand out (double free?)", uint64(b)))
	}
	delete(p.size, b)
	p.inUse -= int64(c)
	p.free[c] = append(p.free[c], b)
}

// trim frees every cached block (after the streams finish with them); it returns the bytes given back.
func (p *pool) trim() int64 {
	if p.sync != nil && p.sync() != nil {
		return 0
	}
	var n int64
	for c, l := range p.free {
		for _, b := range l {
			if p.d.free(b, "pool trim") == nil {
				n += int64(c)
			}
		}
		delete(p.free, c)
	}
	p.held -= n
	return n
}

// close frees everything, live blocks included.
func (p *pool) close() {
	p.trim()
	for b := range p.size {
		p.d.free(b, "pool close")
	}
	p.size, p.held, p.inUse = map[dptr]int{}, 0, 0
}
