package computetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// refAttention is the reference: for query row i at position pos0+i and head h (KV head h/group),
// out = Σ_t softmax_t(q·k_t·scale) v_t over the visible t (t <= pos0+i, and t in sel when sel != nil).
func refAttention(q, k, v []float32, rows, pos0, heads, kvHeads, hd int, scale float64, sel []int32) []float32 {
	group, kvDim := heads/kvHeads, kvHeads*hd
	out := make([]float32, rows*heads*hd)
	for i := 0; i < rows; i++ {
		var vis []int
		for tok := 0; tok <= pos0+i; tok++ {
			if sel == nil || contains(sel, tok) {
				vis = append(vis, tok)
			}
		}
		for h := 0; h < heads; h++ {
			kvh := h / group
			qh := q[i*heads*hd+h*hd : i*heads*hd+(h+1)*hd]
			s := make([]float64, len(vis))
			m := math.Inf(-1)
			for j, tok := range vis {
				for d := 0; d < hd; d++ {
					s[j] += float64(qh[d]) * float64(k[tok*kvDim+kvh*hd+d])
				}
				s[j] *= scale
				m = math.Max(m, s[j])
			}
			var z float64
			for j := range s {
				s[j] = math.Exp(s[j] - m)
				z += s[j]
			}
			for d := 0; d < hd; d++ {
				var acc float64
				for j, tok := range vis {
					acc += s[j] / z * float64(v[tok*kvDim+kvh*hd+d])
				}
				out[i*heads*hd+h*hd+d] = float32(acc)
			}
		}
	}
	return out
}

// everyNth returns the ascending token indices t < length with t%n == 0, plus the last tail ones (a sparse
// layer's selection always keeps the current query rows).
func everyNth(length, n, tail int) []int32 {
	var sel []int32
	for t := 0; t < length; t++ {
		if t%n == 0 || t >= length-tail {
			sel = append(sel, int32(t))
		}
	}
	return sel
}

// runs returns the ascending token indices in the half-open ranges [b[0], b[1]), [b[2], b[3]), ... plus the
// last tail ones.
func runs(length, tail int, b ...int) []int32 {
	var sel []int32
	for t := 0; t < length; t++ {
		in := t >= length-tail
		for i := 0; i+1 < len(b); i += 2 {
			in = in || (t >= b[i] && t < b[i+1])
		}
		if in {
			sel = append(sel, int32(t))
		}
	}
	return sel
}

func contains(sel []int32, tok int) bool {
	for _, s := range sel {
		if int(s) == tok {
			return true
		}
	}
	return false
}

func testAttention(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct {
		name           string
		length, rows   int // tokens cached (incl. the query rows), query rows (the newest ones)
		sel            []int32
		dt             compute.KVDType
		scaleK, scaleQ float64
		heads, kvHeads int // 6, 2 when zero
		hd, page       int // 16, 4 when zero
	}{
		{name: "decode", length: 13, rows: 1, dt: compute.KVF32},
		{name: "prefill", length: 9, rows: 9, dt: compute.KVF32},
		{name: "chunk", length: 21, rows: 5, dt: compute.KVF32},
		{name: "fp16", length: 37, rows: 3, dt: compute.KVF16},
		{name: "selected", length: 30, rows: 2, sel: []int32{0, 3, 4, 11, 17, 28, 29}, dt: compute.KVF32},
		{name: "selected-fp16", length: 30, rows: 1, sel: []int32{1, 2, 29}, dt: compute.KVF16},
		{name: "peaked", length: 50, rows: 1, dt: compute.KVF32, scaleK: 8, scaleQ: 8},
		{name: "odd-headdim", length: 70, rows: 5, dt: compute.KVF16, hd: 12, page: 16},
		// Long sequences: many KV blocks per task, several row blocks, splits of the tokens in decode.
		{name: "long-decode-fp16", length: 1000, rows: 1, dt: compute.KVF16, hd: 64, page: 64},
		{name: "long-decode-fp32", length: 1000, rows: 1, dt: compute.KVF32, hd: 64, page: 64},
		{name: "long-decode-split", length: 2500, rows: 1, dt: compute.KVF16, hd: 64, page: 64},
		{name: "long-chunk-fp16", length: 1000, rows: 37, dt: compute.KVF16, hd: 64, page: 64},
		{name: "long-chunk-fp32", length: 1000, rows: 37, dt: compute.KVF32, hd: 64, page: 64},
		{name: "long-chunk-sel-fp16", length: 1000, rows: 37, sel: everyNth(1000, 3, 37), dt: compute.KVF16, hd: 64, page: 64},
		{name: "long-decode-sel-fp32", length: 1000, rows: 1, sel: everyNth(1000, 2, 1), dt: compute.KVF32, hd: 64, page: 64},
		{name: "long-decode-sel-split", length: 3000, rows: 1, sel: everyNth(3000, 2, 1), dt: compute.KVF16, hd: 64, page: 64},
		{name: "long-chunk-split", length: 2500, rows: 5, dt: compute.KVF16, hd: 64, page: 64},
		{name: "long-chunk-sel-split", length: 3000, rows: 4, sel: everyNth(3000, 2, 4), dt: compute.KVF32, hd: 64, page: 64},
		// Runs of consecutive selected rows that start and end inside pages and cross page boundaries (the
		// staging slots of a sparse layer mostly are such runs).
		{name: "long-decode-sel-runs-fp16", length: 700, rows: 1, sel: runs(700, 1, 0, 100, 130, 131, 190, 450, 699, 700), dt: compute.KVF16, hd: 64, page: 64},
		{name: "long-prefill", length: 200, rows: 200, dt: compute.KVF16, hd: 64, page: 64},
		// Scores of std 4*4 = 16 (at 1e-6 relative to the output, float32 scores alone cost ~4e-6 from std 16 up).
		{name: "long-peaked", length: 1000, rows: 37, dt: compute.KVF32, scaleK: 2, scaleQ: 2, hd: 64, page: 64},
		{name: "gqa4", length: 300, rows: 37, dt: compute.KVF32, heads: 8, kvHeads: 2, hd: 32, page: 64},
		{name: "mha", length: 300, rows: 7, dt: compute.KVF16, heads: 4, kvHeads: 4, hd: 32, page: 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			heads, kvHeads, hd, page := 6, 2, 16, 4
			if tc.heads != 0 {
				heads, kvHeads = tc.heads, tc.kvHeads
			}
			if tc.hd != 0 {
				hd, page = tc.hd, tc.page
			}
			kvDim := kvHeads * hd
			sk, sq := tc.scaleK, tc.scaleQ
			if sk == 0 {
				sk, sq = 1, 1
			}
			k, v := randVec(r, tc.length*kvDim, sk), randVec(r, tc.length*kvDim, 1)
			if tc.dt == compute.KVF16 { // the reference sees what the cache stores
				for i := range k {
					k[i] = weights.F16ToF32(weights.F32ToF16(k[i]))
					v[i] = weights.F16ToF32(weights.F32ToF16(v[i]))
				}
			}
			q := randVec(r, tc.rows*heads*hd, sq)
			pages := make([]*compute.KVPage, (tc.length+page-1)/page)
			for i := range pages {
				pages[i] = dev.NewKVPage(page, kvDim, tc.dt)
			}
			// Write the cache in two calls from tensors of different row offsets.
			kt, vt := dev.Upload(tc.length, kvDim, k), dev.Upload(tc.length, kvDim, v)
			half := tc.length / 2
			dev.WriteKV(pages, page, 0, kt, vt, 0, half)
			dev.WriteKV(pages, page, half, kt, vt, half, tc.length-half)
			pos0 := tc.length - tc.rows
			qt := dev.Upload(tc.rows+2, heads*hd, append(make([]float32, 2*heads*hd), q...))
			out := dev.NewTensor(tc.rows+2, heads*hd)
			scale := 1 / math.Sqrt(float64(hd))
			dev.Attend(&compute.Attention{
				Q: qt, Out: out, Row0: 2, Rows: tc.rows, Pos0: pos0, Heads: heads, KVHeads: kvHeads, HeadDim: hd,
				Scale: float32(scale), Pages: pages, Page: page, Len: tc.length, Sel: tc.sel,
			})
			want := refAttention(q, k, v, tc.rows, pos0, heads, kvHeads, hd, scale, tc.sel)
			got := make([]float32, tc.rows*heads*hd)
			for i := 0; i < tc.rows; i++ {
				dev.Read(got[i*heads*hd:(i+1)*heads*hd], out, 2+i)
			}
			closeTo(t, fmt.Sprintf("attention %s", tc.name), got, want, 2e-6)
		})
	}
}

func testHeadMax(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, tc := range []struct{ heads, kvHeads, hd, n int }{{9, 3, 64, 700}, {6, 2, 16, 50}, {32, 2, 16, 130}, {4, 4, 8, 9}} {
		t.Run(fmt.Sprintf("h%d_kv%d_n%d", tc.heads, tc.kvHeads, tc.n), func(t *testing.T) {
			const page = 16
			kvDim := tc.kvHeads * tc.hd
			k, v := randVec(r, tc.n*kvDim, 1), randVec(r, tc.n*kvDim, 1)
			pages := make([]*compute.KVPage, (tc.n+page-1)/page)
			for i := range pages {
				pages[i] = dev.NewKVPage(page, kvDim, compute.KVF32)
			}
			dev.WriteKV(pages, page, 0, dev.Upload(tc.n, kvDim, k), dev.Upload(tc.n, kvDim, v), 0, tc.n)
			q := randVec(r, tc.heads*tc.hd, 1)
			scale := 1 / math.Sqrt(float64(tc.hd))
			hm := make([]float32, tc.kvHeads*tc.n)
			out := dev.NewTensor(1, tc.heads*tc.hd)
			dev.Attend(&compute.Attention{Q: dev.Upload(1, tc.heads*tc.hd, q), Out: out, Rows: 1, Pos0: tc.n - 1,
				Heads: tc.heads, KVHeads: tc.kvHeads, HeadDim: tc.hd, Scale: float32(scale), Pages: pages, Page: page,
				Len: tc.n, HeadMax: hm})
			group := tc.heads / tc.kvHeads
			want := make([]float32, len(hm))
			for kvh := 0; kvh < tc.kvHeads; kvh++ {
				for tok := 0; tok < tc.n; tok++ {
					best := math.Inf(-1)
					for g := 0; g < group; g++ {
						h := kvh*group + g
						var s float64
						for d := 0; d < tc.hd; d++ {
							s += float64(q[h*tc.hd+d]) * float64(k[tok*kvDim+kvh*tc.hd+d])
						}
						best = math.Max(best, s*scale)
					}
					want[kvh*tc.n+tok] = float32(best)
				}
			}
			closeTo(t, "head max", hm, want, 2e-6)
			// The attention itself is unchanged by asking for HeadMax.
			plain := dev.NewTensor(1, tc.heads*tc.hd)
			dev.Attend(&compute.Attention{Q: dev.Upload(1, tc.heads*tc.hd, q), Out: plain, Rows: 1, Pos0: tc.n - 1,
				Heads: tc.heads, KVHeads: tc.kvHeads, HeadDim: tc.hd, Scale: float32(scale), Pages: pages, Page: page, Len: tc.n})
			closeTo(t, "attention with HeadMax", out.F32, plain.F32, 0)
		})
	}
}
