//go:build cgo

package cuda

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// Attention over a store in pinned host memory (TierHost) and in a registered memory-mapped file
// (TierMapped, grown twice so that it has two chunks) equals, bit for bit, attention over device memory.
func TestTiersOnGPU(t *testing.T) { testTiers(t, openOrSkip(t)) }

func testTiers(t *testing.T, d *Device) {
	r := rand.New(rand.NewPCG(7, 8))
	const heads, kvHeads, hd, page, length = 4, 2, 16, 8, 37
	kvDim, qd := kvHeads*hd, heads*hd
	k, v, q := make([]float32, length*kvDim), make([]float32, length*kvDim), make([]float32, qd)
	for _, x := range [][]float32{k, v, q} {
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
	}
	pages := (length + page - 1) / page
	desc := compute.BatchDesc{QStart: []int32{0}, QRows: []int32{1}, Pos0: []int32{length - 1}, Len: []int32{length}, BlockOff: []int32{0, int32(pages)}}
	slots := make([]int32, length)
	for p := 0; p < pages; p++ {
		desc.Blocks = append(desc.Blocks, int32(pages-1-p)) // reversed: the page table is used
	}
	for i := range slots {
		slots[i] = desc.Blocks[i/page]*page + int32(i%page)
	}
	b := d.NewBatch()
	d.SetBatch(b, &desc)
	tensor := func(rows, cols int, data []float32) *compute.Tensor {
		x, err := d.NewTensor(compute.F32, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		if data != nil {
			d.Write(x, 0, data)
		}
		return x
	}
	kt, vt, qt := tensor(length, kvDim, k), tensor(length, kvDim, v), tensor(1, qd, q)
	var want []float32
	for _, tier := range []compute.Tier{compute.TierDevice, compute.TierHost, compute.TierMapped} {
		st, err := d.NewKVStore(compute.KVSpec{PageTokens: page, KVDim: kvDim, DType: compute.KVF16}, 2, tier, compute.StoreOptions{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		for _, grow := range []int{2, pages - 2} {
			if err := d.GrowKVStore(st, grow); err != nil {
				t.Fatalf("%v: %v", tier, err)
			}
		}
		d.WriteKV(st, 1, kt, vt, slots)
		out := tensor(1, qd, nil)
		d.Attend(&compute.Attention{Q: qt, Out: out, Store: st, Layer: 1, Batch: b, Heads: heads, KVHeads: kvHeads, HeadDim: hd, Scale: 0.25})
		got := make([]float32, qd)
		d.Read(got, out)
		if err := d.Sync(); err != nil {
			t.Fatalf("%v: %v", tier, err)
		}
		d.Free(st)
		if want == nil {
			want = got
			continue
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%v: value %d = %v, device tier %v", tier, i, got[i], want[i])
			}
		}
	}
}
