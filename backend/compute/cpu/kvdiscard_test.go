//go:build linux

package cpu

import (
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// word is element i of layer l's keys (kv 0) or values (kv 1) of page p, as bits.
func (st *kvStore) word(p, l, kv, i int) uint32 {
	switch {
	case st.fp32() && kv == 0:
		return math.Float32bits(st.kf(p, l)[i])
	case st.fp32():
		return math.Float32bits(st.vf(p, l)[i])
	case kv == 0:
		return uint32(st.kh(p, l)[i])
	}
	return uint32(st.vh(p, l)[i])
}

// mark is the non-zero value the tests leave in element i of (p, l, kv) (exact in fp16 and fp32).
func mark(p, l, kv, i int) float32 { return float32(1 + (p*131+l*17+kv*7+i)%1000) }

// markBits is mark as the store holds it.
func (st *kvStore) markBits(p, l, kv, i int) uint32 {
	if st.fp32() {
		return math.Float32bits(mark(p, l, kv, i))
	}
	return uint32(weights.F32ToF16(mark(p, l, kv, i)))
}

// fill writes mark into every element of every page of the store.
func fill(st *kvStore, pages int) {
	for p := 0; p < pages; p++ {
		for l := 0; l < st.layers; l++ {
			for i := 0; i < st.half; i++ {
				if st.fp32() {
					st.kf(p, l)[i], st.vf(p, l)[i] = mark(p, l, 0, i), mark(p, l, 1, i)
				} else {
					st.kh(p, l)[i], st.vh(p, l)[i] = uint16(st.markBits(p, l, 0, i)), uint16(st.markBits(p, l, 1, i))
				}
			}
		}
	}
}

// checkPages checks that the pages in zero read as zeros and every other page of the store holds its marks.
func checkPages(t *testing.T, st *kvStore, pages int, zero []int32) {
	t.Helper()
	for p := 0; p < pages; p++ {
		z := slices.Contains(zero, int32(p))
		for l := 0; l < st.layers; l++ {
			for kv := 0; kv < 2; kv++ {
				for i := 0; i < st.half; i++ {
					want := uint32(0)
					if !z {
						want = st.markBits(p, l, kv, i)
					}
					if got := st.word(p, l, kv, i); got != want {
						t.Fatalf("page %d (discarded: %v) layer %d kv %d element %d: %#x, want %#x", p, z, l, kv, i, got, want)
					}
				}
			}
		}
	}
}

// Discarded pages read back as zeros in every tier, whatever their size next to the OS page and however they
// fall across the store's growth chunks; the other pages (including those that share OS pages with them)
// keep their data; recommitted pages take writes again.
func TestDiscardKVPages(t *testing.T) {
	tiers := []compute.Tier{compute.TierDevice, compute.TierHost, compute.TierMapped}
	shapes := []struct {
		name string
		spec compute.KVSpec
	}{
		{"small-pages-fp32", compute.KVSpec{PageTokens: 4, KVDim: 8, DType: compute.KVF32}},     // 128 bytes per layer's keys
		{"odd-pages-fp16", compute.KVSpec{PageTokens: 3, KVDim: 700, DType: compute.KVF16}},     // 4200 bytes: straddles OS pages
		{"aligned-pages-fp16", compute.KVSpec{PageTokens: 64, KVDim: 64, DType: compute.KVF16}}, // 8 KiB
		{"huge-pages-fp32", compute.KVSpec{PageTokens: 64, KVDim: 2048, DType: compute.KVF32}},  // 512 KiB
	}
	chunks := []int{5, 7, 4} // pages per GrowKVStore: ids [0,5) [5,12) [12,16)
	discards := [][]int32{
		{6},                     // one page inside a chunk
		{4, 5, 3},               // a run across a chunk boundary, unsorted
		{12, 13, 14, 15, 15, 0}, // a whole chunk, a duplicate, the first page
		{1, 2, 7, 8, 9, 10, 11}, // the rest but page 6's neighbours... and page 6
	}
	dev := New()
	for _, tier := range tiers {
		for _, sh := range shapes {
			t.Run(tier.String()+"/"+sh.name, func(t *testing.T) {
				s, err := dev.NewKVStore(sh.spec, 3, tier, compute.StoreOptions{Dir: t.TempDir()})
				if err != nil {
					t.Fatal(err)
				}
				defer dev.Free(s)
				for _, n := range chunks {
					if err := dev.GrowKVStore(s, n); err != nil {
						t.Fatal(err)
					}
				}
				st := storeOf(s)
				fill(st, s.Pages)
				var gone []int32
				for _, d := range discards {
					if err := dev.DiscardKVPages(s, d); err != nil {
						t.Fatal(err)
					}
					gone = append(gone, d...)
					checkPages(t, st, s.Pages, gone)
				}
				// Recommit some, write them again through WriteKV, and check every page.
				back := []int32{3, 4, 5, 12}
				if err := dev.RecommitKVPages(s, back); err != nil {
					t.Fatal(err)
				}
				for _, p := range back {
					for l := 0; l < st.layers; l++ {
						k, v := dev.Tensor(sh.spec.PageTokens, sh.spec.KVDim), dev.Tensor(sh.spec.PageTokens, sh.spec.KVDim)
						kd, vd := make([]float32, st.half), make([]float32, st.half)
						slots := make([]int32, sh.spec.PageTokens)
						for i := range kd {
							kd[i], vd[i] = mark(int(p), l, 0, i), mark(int(p), l, 1, i)
						}
						for i := range slots {
							slots[i] = p*int32(sh.spec.PageTokens) + int32(i)
						}
						dev.Write(k, 0, kd)
						dev.Write(v, 0, vd)
						dev.WriteKV(s, l, k, v, slots)
					}
				}
				checkPages(t, st, s.Pages, slices.DeleteFunc(gone, func(p int32) bool { return slices.Contains(back, p) }))
			})
		}
	}
}

// rssBytes is the process's resident memory (/proc/self/statm).
func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	pages, err := strconv.ParseInt(strings.Fields(string(b))[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// fileBytes is the disk space a mapped store's file holds.
func fileBytes(t *testing.T, st *kvStore) int64 {
	t.Helper()
	var fi syscall.Stat_t
	if err := syscall.Fstat(int(st.file.f.Fd()), &fi); err != nil {
		t.Fatal(err)
	}
	return fi.Blocks * 512
}

// Discarding gives the memory back (and a mapped store's disk space, which recommitting takes again).
func TestDiscardReleasesMemory(t *testing.T) {
	const pages = 64 // 128 MiB: 2 layers of 1 MiB pages (64 tokens, KV dim 2048, fp32)
	spec := compute.KVSpec{PageTokens: 64, KVDim: 2048, DType: compute.KVF32}
	dev := New()
	for _, tier := range []compute.Tier{compute.TierHost, compute.TierMapped} {
		t.Run(tier.String(), func(t *testing.T) {
			s, err := dev.NewKVStore(spec, 2, tier, compute.StoreOptions{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Free(s)
			if err := dev.GrowKVStore(s, pages); err != nil {
				t.Fatal(err)
			}
			st := storeOf(s)
			fill(st, pages)
			ids := make([]int32, 0, pages)
			for p := 0; p < pages; p += 4 { // keep every fourth page: 96 of the 128 MiB go
				ids = append(ids, int32(p+1), int32(p+2), int32(p+3))
			}
			want := int64(len(ids)) * int64(spec.PageBytes()) * 2
			debug.FreeOSMemory()
			before, disk := rssBytes(t), int64(0)
			if st.file != nil {
				disk = fileBytes(t, st)
			}
			if err := dev.DiscardKVPages(s, ids); err != nil {
				t.Fatal(err)
			}
			if drop := before - rssBytes(t); drop < want*9/10 {
				t.Fatalf("discarded %d MiB, the process shrank by %.1f MiB", want>>20, float64(drop)/(1<<20))
			}
			if st.file != nil {
				if freed := disk - fileBytes(t, st); freed < want*9/10 {
					t.Fatalf("discarded %d MiB, the file shrank by %.1f MiB", want>>20, float64(freed)/(1<<20))
				}
				if err := dev.RecommitKVPages(s, ids); err != nil {
					t.Fatal(err)
				}
				if got := fileBytes(t, st); got < disk {
					t.Fatalf("recommitted: the file holds %d MiB, before the discard %d MiB", got>>20, disk>>20)
				}
			}
			checkPages(t, st, pages, ids)
		})
	}
}

// Through a kvcache pool: trimming leaves the pages of live sequences intact, and the trimmed pages that a
// new sequence gets read as zeros until written.
func TestPoolTrimKeepsLivePages(t *testing.T) {
	dev := New()
	const kvDim, page = 96, 8 // pages of 3 KiB per layer's keys: OS pages are shared between neighbours
	for _, dir := range []string{"", t.TempDir()} {
		p, err := kvcache.NewPool(dev, kvcache.Config{Layers: 3, KVDim: kvDim, PageSize: page, DType: compute.KVF16,
			Offload: []bool{false, true, false}, OffloadDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		// Interleave two sequences' pages, then free one.
		a, b := p.NewSequence(1000), p.NewSequence(1000)
		for i := 0; i < 20; i++ {
			for _, s := range []*kvcache.Sequence{a, b} {
				if err := s.Reserve(page); err != nil {
					t.Fatal(err)
				}
				s.Commit(page)
			}
		}
		stores := []*compute.KVStore{}
		for l := 0; l < 3; l++ {
			st, _ := p.Layer(l)
			if !slices.Contains(stores, st) {
				stores = append(stores, st)
			}
		}
		for _, s := range stores {
			fill(storeOf(s), s.Pages)
		}
		freed := slices.Clone(b.Blocks())
		b.Release()
		if n, err := p.Trim(0); err != nil || n != int64(len(freed))*3*int64(p.PageBytes()) {
			t.Fatalf("Trim released %d bytes (err %v)", n, err)
		}
		for _, s := range stores {
			checkPages(t, storeOf(s), s.Pages, freed)
		}
		c := p.NewSequence(1000)
		if err := c.Reserve(5 * page); err != nil {
			t.Fatal(err)
		}
		for _, id := range c.Blocks() {
			if !slices.Contains(freed, id) {
				t.Fatalf("the new sequence got page %d, not one of the trimmed %v", id, freed)
			}
		}
		for _, s := range stores {
			checkPages(t, storeOf(s), s.Pages, freed)
		}
		a.Release()
		c.Release()
		p.Close()
	}
}
