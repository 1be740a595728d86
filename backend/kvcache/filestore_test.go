//go:build unix

package kvcache

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
)

// Rows offloaded (to RAM or to a memory-mapped file), then gathered into staging, give exactly the attention
// that reading them in place gives, over random pages and random selections.
func TestOffloadedThenGatheredEqualsDirect(t *testing.T) {
	dev := cpu.New()
	const layers, kvDim, page, n = 2, 32, 16, 200
	fs, err := NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	for _, tc := range []struct {
		name  string
		store Store
		dt    compute.KVDType
	}{{"ram-fp16", nil, compute.KVF16}, {"file-fp16", fs, compute.KVF16}, {"file-fp32", fs, compute.KVF32}} {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := NewPool(dev, Config{Layers: layers, KVDim: kvDim, PageSize: page, DType: tc.dt, Offload: []bool{false, true}, Store: tc.store})
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(5, 6))
			// Fragment the pool first so the sequence's pages are scattered.
			other := pool.NewSequence(n)
			if err := other.Reserve(n / 2); err != nil {
				t.Fatal(err)
			}
			seq := pool.NewSequence(n)
			if err := seq.Reserve(n); err != nil {
				t.Fatal(err)
			}
			other.Release()
			kv := make([]float32, n*kvDim)
			for i := range kv {
				kv[i] = float32(r.NormFloat64())
			}
			k, v := dev.Upload(n, kvDim, kv), dev.Upload(n, kvDim, slices.Clone(kv))
			dev.WriteKV(seq.Pages(1), page, 0, k, v, 0, n)
			seq.Commit(n)
			staging, err := seq.NewStaging(64)
			if err != nil {
				t.Fatal(err)
			}
			q := dev.NewTensor(1, kvDim)
			for i := range q.F32 {
				q.F32[i] = float32(r.NormFloat64())
			}
			for trial := 0; trial < 20; trial++ {
				sel := make([]int32, 0, 64)
				for _, x := range r.Perm(n)[:1+r.IntN(63)] {
					sel = append(sel, int32(x))
				}
				slices.Sort(sel)
				slots := make([]int32, len(sel))
				for i, s := range r.Perm(64)[:len(sel)] {
					slots[i] = int32(s)
				}
				dev.GatherKV(staging, page, slots, seq.Pages(1), page, sel)
				direct, staged := dev.NewTensor(1, kvDim), dev.NewTensor(1, kvDim)
				dev.Attend(&compute.Attention{Q: q, Out: direct, Rows: 1, Pos0: n, Heads: 2, KVHeads: 2, HeadDim: kvDim / 2,
					Scale: 0.25, Pages: seq.Pages(1), Page: page, Len: n, Sel: sel})
				sortedSlots := slices.Clone(slots)
				slices.Sort(sortedSlots)
				dev.Attend(&compute.Attention{Q: q, Out: staged, Rows: 1, Pos0: 64, Heads: 2, KVHeads: 2, HeadDim: kvDim / 2,
					Scale: 0.25, Pages: staging, Page: page, Len: 64, Sel: sortedSlots})
				for i := range direct.F32 {
					if d := math.Abs(float64(direct.F32[i] - staged.F32[i])); d > 1e-6 {
						t.Fatalf("trial %d: element %d: direct %g, gathered %g", trial, i, direct.F32[i], staged.F32[i])
					}
				}
			}
			if pool.Offloaded() == 0 || pool.Resident() == 0 {
				t.Fatalf("tiers not used: %d offloaded, %d resident pages", pool.Offloaded(), pool.Resident())
			}
			seq.Release()
		})
	}
	if fs.Bytes() == 0 {
		t.Fatal("the file store holds nothing")
	}
}
