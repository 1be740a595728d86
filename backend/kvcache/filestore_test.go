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

// Rows offloaded (to RAM or to a memory-mapped file), then selected and gathered into staging, give exactly
// the attention that reading them in place gives, over scattered pages and random selections.
func TestOffloadedThenGatheredEqualsDirect(t *testing.T) {
	dev := cpu.New()
	const layers, kvDim, page, n, k = 2, 32, 16, 200, 48
	for _, tc := range []struct {
		name     string
		dir      string
		dt       compute.KVDType
		resident bool // SparseResident: the offloaded layer stays in device memory
		tier     compute.Tier
	}{{"ram-fp16", "", compute.KVF16, false, compute.TierHost}, {"file-fp16", t.TempDir(), compute.KVF16, false, compute.TierMapped},
		{"file-fp32", t.TempDir(), compute.KVF32, false, compute.TierMapped}, {"resident-fp16", "", compute.KVF16, true, compute.TierDevice}} {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := NewPool(dev, Config{Layers: layers, KVDim: kvDim, PageSize: page, DType: tc.dt, Offload: []bool{false, true},
				OffloadDir: tc.dir, SparseResident: tc.resident})
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			if st, _ := pool.Layer(1); st.Tier != tc.tier {
				t.Fatalf("the offloaded layer's store is in tier %v, want %v", st.Tier, tc.tier)
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
			kt := dev.Tensor(n, kvDim)
			dev.Write(kt, 0, kv)
			slots := make([]int32, n)
			for i := range slots {
				slots[i] = seq.Slot(i)
			}
			st, li := pool.Layer(1)
			dev.WriteKV(st, li, kt, kt, slots)
			seq.Commit(n)
			if err := seq.ReserveStaging(k + 1); err != nil {
				t.Fatal(err)
			}
			stage, si := pool.Staging(1)
			state, err := dev.NewSelState(compute.SelSpec{Window: 1, QDim: kvDim, KVHeads: 2})
			if err != nil {
				t.Fatal(err)
			}
			ctx, stg := dev.NewBatch(), dev.NewBatch()
			dev.SetBatch(ctx, &compute.BatchDesc{QStart: []int32{0}, QRows: []int32{1}, Pos0: []int32{n}, Len: []int32{n}, BlockOff: []int32{0, int32(len(seq.Blocks()))}, Blocks: seq.Blocks()})
			dev.SetBatch(stg, &compute.BatchDesc{QStart: []int32{0}, QRows: []int32{1}, Pos0: []int32{k}, Len: []int32{k}, BlockOff: []int32{0, int32(len(seq.StagingBlocks()))}, Blocks: seq.StagingBlocks()})
			q := dev.Tensor(1, kvDim)
			qv := make([]float32, kvDim)
			for i := range qv {
				qv[i] = float32(r.NormFloat64())
			}
			dev.Write(q, 0, qv)
			dev.BeginTurn(state, n, k, n+1)
			for trial := 0; trial < 20; trial++ {
				// Scores from the filter layer's fused head max of a random query (layer 1 stands in for it).
				hq := dev.Tensor(1, kvDim)
				hv := make([]float32, kvDim)
				for i := range hv {
					hv[i] = float32(r.NormFloat64())
				}
				dev.Write(hq, 0, hv)
				dev.Attend(&compute.Attention{Q: hq, Out: dev.Tensor(1, kvDim), Store: st, Layer: li, Batch: ctx, Heads: 2, KVHeads: 2,
					HeadDim: kvDim / 2, Scale: 0.25, HeadMax: []*compute.SelState{state}})
				dev.Select(&compute.Select{Mode: compute.SelHeadMax, States: []*compute.SelState{state}, Forced: []int32{0}, Step: []int32{-1}})
				dev.Wait(dev.Gather(&compute.Gather{Src: st, SrcLayer: li, SrcBatch: ctx, Dst: stage, DstLayer: si, DstBatch: stg, States: []*compute.SelState{state}}))
				sel := dev.ReadSel(state).Selected
				direct, staged := dev.Tensor(1, kvDim), dev.Tensor(1, kvDim)
				reader := attendState(t, dev, sel)
				dev.Attend(&compute.Attention{Q: q, Out: direct, Store: st, Layer: li, Batch: ctx, Heads: 2, KVHeads: 2, HeadDim: kvDim / 2,
					Scale: 0.25, Sel: []*compute.SelState{reader}})
				dev.Attend(&compute.Attention{Q: q, Out: staged, Store: stage, Layer: si, Batch: stg, Heads: 2, KVHeads: 2, HeadDim: kvDim / 2,
					Scale: 0.25, Sel: []*compute.SelState{state}})
				a, b := make([]float32, kvDim), make([]float32, kvDim)
				dev.Read(a, direct)
				dev.Read(b, staged)
				for i := range a {
					if d := math.Abs(float64(a[i] - b[i])); d > 1e-6 {
						t.Fatalf("trial %d: element %d: direct %g, gathered %g", trial, i, a[i], b[i])
					}
				}
			}
			if pool.Offloaded() == 0 || pool.Resident() == 0 {
				t.Fatalf("tiers not used: %d offloaded, %d resident pages", pool.Offloaded(), pool.Resident())
			}
			if tc.dir != "" && pool.MappedBytes() == 0 {
				t.Fatal("the file store holds nothing")
			}
			seq.Release()
		})
	}
}

// attendState returns a selection state that attends to sel.
func attendState(t *testing.T, dev compute.Device, sel []int32) *compute.SelState {
	s, err := dev.NewSelState(compute.SelSpec{Window: 1, QDim: 1, KVHeads: 1})
	if err != nil {
		t.Fatal(err)
	}
	dev.SetAttend(s, slices.Clone(sel))
	return s
}
