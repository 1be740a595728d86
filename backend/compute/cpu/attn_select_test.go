package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// TestSelectScoresLong checks SelectScores at SmolLM2 shapes over long contexts against float64 math, for
// both score kernels (stacked rows m = w*group not a multiple of 16: 4x3 dot tiles; a multiple: outer
// product) and both KV types. The computetest suite covers the small shapes.
func TestSelectScoresLong(t *testing.T) {
	const heads, kvHeads, hd, page = 9, 3, 64, 64
	group, kvDim := heads/kvHeads, kvHeads*hd
	r := rand.New(rand.NewPCG(4, 4))
	d := New()
	for _, tc := range []struct {
		w, n    int
		softmax bool
		dt      compute.KVDType
	}{{1, 1000, true, compute.KVF16}, {1, 1000, false, compute.KVF32}, {16, 777, true, compute.KVF16}, {5, 2000, true, compute.KVF32}} {
		t.Run(fmt.Sprintf("w%d_n%d_softmax%v_%v", tc.w, tc.n, tc.softmax, tc.dt), func(t *testing.T) {
			k := randF32(r, tc.n*kvDim)
			if tc.dt == compute.KVF16 {
				for i := range k {
					k[i] = weights.F16ToF32(weights.F32ToF16(k[i]))
				}
			}
			np := (tc.n + page - 1) / page
			st, err := d.NewKVStore(compute.KVSpec{PageTokens: page, KVDim: kvDim, DType: tc.dt}, 1, compute.TierDevice, compute.StoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.GrowKVStore(st, np); err != nil {
				t.Fatal(err)
			}
			kt := d.Tensor(tc.n, kvDim)
			copy(f32(kt), k)
			desc := compute.BatchDesc{QStart: []int32{0}, QRows: []int32{int32(tc.w)}, Pos0: []int32{0}, Len: []int32{int32(tc.n)}, BlockOff: []int32{0, int32(np)}}
			slots := make([]int32, tc.n)
			for i := range slots {
				slots[i] = int32(i)
			}
			for i := 0; i < np; i++ {
				desc.Blocks = append(desc.Blocks, int32(i))
			}
			d.WriteKV(st, 0, kt, kt, slots)
			b := d.NewBatch()
			d.SetBatch(b, &desc)
			q := randF32(r, tc.w*heads*hd)
			qt := d.Tensor(tc.w, heads*hd)
			copy(f32(qt), q)
			state, err := d.NewSelState(compute.SelSpec{Window: tc.w, QDim: heads * hd, KVHeads: kvHeads})
			if err != nil {
				t.Fatal(err)
			}
			d.Observe(&compute.Observe{Q: qt, Batch: b, States: []*compute.SelState{state}})
			d.BeginTurn(state, tc.n, tc.n, tc.n)
			alpha := make([]float32, tc.w)
			for i := range alpha {
				alpha[i] = 1 / float32(i+1)
			}
			scale := 1 / math.Sqrt(hd)
			d.SelectScores(&compute.SelectScores{Store: st, Batch: b, States: []*compute.SelState{state}, Alpha: alpha,
				Softmax: tc.softmax, Heads: heads, KVHeads: kvHeads, HeadDim: hd, Scale: float32(scale)})
			out := d.ReadSel(state).Scores

			want := make([]float64, tc.n)
			l := make([]float64, tc.n)
			for i := 0; i < tc.w; i++ {
				best := make([]float64, tc.n)
				for j := range best {
					best[j] = math.Inf(-1)
				}
				for h := 0; h < heads; h++ {
					m := math.Inf(-1)
					for j := range l {
						l[j] = 0
						for x := 0; x < hd; x++ {
							l[j] += float64(q[(i*heads+h)*hd+x]) * float64(k[j*kvDim+h/group*hd+x])
						}
						l[j] *= scale
						m = math.Max(m, l[j])
					}
					if tc.softmax {
						var z float64
						for j := range l {
							l[j] = math.Exp(l[j] - m)
							z += l[j]
						}
						for j := range l {
							l[j] /= z
						}
					}
					for j := range l {
						best[j] = math.Max(best[j], l[j])
					}
				}
				for j := range want {
					want[j] += float64(alpha[i]) * best[j]
				}
			}
			top := 0.0
			for _, v := range want {
				top = math.Max(top, math.Abs(v))
			}
			for j, v := range want {
				if e := math.Abs(float64(out[j])-v) / top; !(e <= 2e-6) {
					t.Fatalf("candidate %d: %g, want %g (relative error %.2e > 2e-6)", j, out[j], v, e)
				}
			}
		})
	}
}
