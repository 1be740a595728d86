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
			pages := make([]*compute.KVPage, (tc.n+page-1)/page)
			for i := range pages {
				pages[i] = d.NewKVPage(page, kvDim, tc.dt)
			}
			d.WriteKV(pages, page, 0, d.Upload(tc.n, kvDim, k), d.Upload(tc.n, kvDim, k), 0, tc.n)
			q := randF32(r, tc.w*heads*hd)
			alpha := make([]float32, tc.w)
			for i := range alpha {
				alpha[i] = 1 / float32(i+1)
			}
			scale := 1 / math.Sqrt(hd)
			out := make([]float32, tc.n)
			d.SelectScores(&compute.SelectScores{Q: d.Upload(tc.w, heads*hd, q), Rows: tc.w, Alpha: alpha,
				Softmax: tc.softmax, Heads: heads, KVHeads: kvHeads, HeadDim: hd, Scale: float32(scale),
				Pages: pages, Page: page, N: tc.n, Out: out})

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
