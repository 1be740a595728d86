//go:build cgo

package cuda

import (
	"fmt"
	"os"
	"syscall"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// kvStore is a KV store on the CUDA device. Every GrowKVStore call allocates one chunk laid out (layers, 2,
// pages, PageTokens, KVDim), as the CPU device does: device memory (TierDevice), pinned host memory mapped
// into the GPU's address space (TierHost: cuMemHostAlloc with DEVICEMAP), or a chunk of an unlinked file,
// mmap'd and registered with the GPU (TierMapped: cuMemHostRegister with DEVICEMAP). Kernels reach every
// page through a page table on the device, (layers, pageCap, 2) addresses of each page's keys and values,
// so the same kernels read and write every tier (host tiers over the host link, zero-copy).
type kvStore struct {
	spec    compute.KVSpec
	layers  int
	tier    compute.Tier
	chunks  []kvChunk
	pageCap int      // pages the table has room for
	table   []uint64 // host copy of the page table
	tdev    scratch  // the page table on the device
	file    *os.File // TierMapped
	fsize   int64
}

type kvChunk struct {
	first, pages int
	dev          dptr   // the chunk's device address
	pool         bool   // device memory from the pool
	pinned       []byte // TierHost: cuMemHostAlloc'd memory
	mapped       []byte // TierMapped: the mmap'd file region (registered)
}

func storeOf(s *compute.KVStore) *kvStore {
	st, ok := s.Handle.(*kvStore)
	if !ok || st == nil {
		panic(fmt.Sprintf("cuda: KV store (%d layers, %v) is not a CUDA store, or was freed", s.Layers, s.Tier))
	}
	return st
}

// pages returns the device address of layer l's page table: (pageCap, 2) u64.
func (st *kvStore) pages(l int) dptr { return st.tdev.p + dptr(8*2*l*st.pageCap) }

func (st *kvStore) f32() int32 {
	if st.spec.DType == compute.KVF32 {
		return 1
	}
	return 0
}

// NewKVStore implements compute.Device.
func (d *Device) NewKVStore(spec compute.KVSpec, layers int, tier compute.Tier, opt compute.StoreOptions) (*compute.KVStore, error) {
	if spec.PageTokens <= 0 || spec.KVDim <= 0 || layers <= 0 {
		return nil, fmt.Errorf("cuda: KV store of %d layers, %d tokens per page, KV dim %d", layers, spec.PageTokens, spec.KVDim)
	}
	st := &kvStore{spec: spec, layers: layers, tier: tier}
	switch tier {
	case compute.TierDevice, compute.TierHost:
	case compute.TierMapped:
		f, err := os.CreateTemp(opt.Dir, "omnikv-kv-*")
		if err != nil {
			return nil, fmt.Errorf("cuda: KV store file: %w", err)
		}
		os.Remove(f.Name()) // unlinked at once: the space goes back when the store is freed or the process ends
		st.file = f
	default:
		return nil, fmt.Errorf("cuda: KV store tier %v", tier)
	}
	return &compute.KVStore{Spec: spec, Layers: layers, Tier: tier, Handle: st}, nil
}

// GrowKVStore implements compute.Device.
func (d *Device) GrowKVStore(s *compute.KVStore, pages int) error {
	st := storeOf(s)
	if pages <= 0 {
		return nil
	}
	if !d.ok() {
		return d.err
	}
	pageBytes := st.spec.PageTokens * st.spec.KVDim * st.spec.DType.Bytes() // one layer's keys (or values) of a page
	n := 2 * st.layers * pages * pageBytes
	op := fmt.Sprintf("grow %v KV store by %d pages (%d MiB)", st.tier, pages, n>>20)
	c := kvChunk{first: s.Pages, pages: pages}
	switch st.tier {
	case compute.TierDevice:
		p, err := d.pool.get(n, op)
		if err != nil {
			return err
		}
		if err := d.memset0(p, n, d.compute, op); err != nil {
			d.pool.put(p)
			return err
		}
		c.dev, c.pool = p, true
	case compute.TierHost:
		h, p, err := d.api.hostAlloc(n, op)
		if err != nil {
			return err
		}
		clear(h)
		c.dev, c.pinned = p, h
	case compute.TierMapped:
		size := int64(n+(1<<16)-1) &^ (1<<16 - 1) // keep chunk offsets aligned to any page size
		if err := st.file.Truncate(st.fsize + size); err != nil {
			return fmt.Errorf("cuda: %s: %w", op, err)
		}
		b, err := syscall.Mmap(int(st.file.Fd()), st.fsize, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		if err != nil {
			return fmt.Errorf("cuda: %s: mmap: %w", op, err)
		}
		p, err := d.api.hostRegister(b, op)
		if err != nil {
			syscall.Munmap(b)
			return err
		}
		st.fsize += size
		c.dev, c.mapped = p, b
	}
	st.chunks = append(st.chunks, c)
	s.Pages += pages
	// The page table: rebuilt with room to spare when it outgrows its capacity.
	if s.Pages > st.pageCap {
		st.pageCap = max(s.Pages, 2*st.pageCap)
		st.table = make([]uint64, 2*st.layers*st.pageCap)
		for _, ch := range st.chunks {
			st.fill(ch, pageBytes)
		}
	} else {
		st.fill(c, pageBytes)
	}
	d.waitCopy(op) // a Gather may be reading the old table
	if !d.grow(&st.tdev, 8*len(st.table), op+": page table") {
		return d.err
	}
	if err := d.api.htod(st.tdev.p, u64b(st.table), d.compute, op+": page table"); err != nil {
		d.fail(err)
		return err
	}
	return nil
}

// fill writes a chunk's pages into the host page table.
func (st *kvStore) fill(c kvChunk, pageBytes int) {
	for l := 0; l < st.layers; l++ {
		for i := 0; i < c.pages; i++ {
			k := uint64(c.dev) + uint64((2*l*c.pages+i)*pageBytes)
			v := uint64(c.dev) + uint64(((2*l+1)*c.pages+i)*pageBytes)
			at := 2 * (l*st.pageCap + c.first + i)
			st.table[at], st.table[at+1] = k, v
		}
	}
}

// freeStore releases a store's memory (after every queued op: host tiers are unmapped at once).
func (d *Device) freeStore(st *kvStore) {
	d.fail(d.syncStreams())
	for _, c := range st.chunks {
		switch {
		case c.pool:
			d.pool.put(c.dev)
		case c.pinned != nil:
			d.fail(d.api.hostFree(c.pinned, "free host KV store"))
		case c.mapped != nil:
			d.fail(d.api.hostUnregister(c.mapped, "free mapped KV store"))
			syscall.Munmap(c.mapped)
		}
	}
	st.chunks = nil
	d.pool.put(st.tdev.p)
	st.tdev = scratch{}
	if st.file != nil {
		st.file.Close()
		st.file = nil
	}
}

// DiscardKVPages implements compute.Device as a no-op (allowed by the seam): device chunks come from one
// allocation each and cannot shrink in part, and pinned or registered host memory is not given back while
// registered. The pages stay valid.
func (d *Device) DiscardKVPages(s *compute.KVStore, pages []int32) error { return checkPages(s, pages) }

// RecommitKVPages implements compute.Device: nothing was given back, so nothing to take again.
func (d *Device) RecommitKVPages(s *compute.KVStore, pages []int32) error {
	return checkPages(s, pages)
}

func checkPages(s *compute.KVStore, pages []int32) error {
	storeOf(s)
	for _, p := range pages {
		if p < 0 || int(p) >= s.Pages {
			return fmt.Errorf("cuda: page %d outside the store's %d", p, s.Pages)
		}
	}
	return nil
}

// WriteKV implements compute.Device.
func (d *Device) WriteKV(s *compute.KVStore, layer int, k, v *compute.Tensor, slots []int32) {
	st := storeOf(s)
	kvDim, pt := st.spec.KVDim, st.spec.PageTokens
	if k.Cols != kvDim || v.Cols != kvDim || len(slots) > k.Rows || len(slots) > v.Rows || layer < 0 || layer >= st.layers {
		panic(fmt.Sprintf("cuda write kv: k (%d, %d), v (%d, %d), %d slots, layer %d of a store of %d layers with KV dim %d",
			k.Rows, k.Cols, v.Rows, v.Cols, len(slots), layer, st.layers, kvDim))
	}
	for _, slot := range slots {
		if int(slot)/pt >= s.Pages {
			panic(fmt.Sprintf("cuda write kv: slot %d outside the store's %d pages", slot, s.Pages))
		}
	}
	if len(slots) == 0 || !d.ok() {
		return
	}
	a := d.upload(&d.computeArgs, "WriteKV", i32b(slots))
	if a == nil {
		return
	}
	d.launch("kv_write", [3]int{len(slots), 1, 1}, [3]int{128, 1, 1}, "WriteKV",
		tmem(k), tmem(v), a[0], st.pages(layer), int32(pt), int32(kvDim), st.f32())
}
