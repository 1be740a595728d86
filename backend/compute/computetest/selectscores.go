package computetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// refSelectScores is the definition of compute.SelectScores in float64.
func refSelectScores(q, k []float32, w, n, heads, kvHeads, hd int, alpha []float32, softmax bool, scale float64) []float32 {
	group, kvDim := heads/kvHeads, kvHeads*hd
	out := make([]float64, n)
	for i := 0; i < w; i++ {
		best := make([]float64, n)
		for j := range best {
			best[j] = math.Inf(-1)
		}
		for h := 0; h < heads; h++ {
			l := make([]float64, n)
			m := math.Inf(-1)
			for j := 0; j < n; j++ {
				for d := 0; d < hd; d++ {
					l[j] += float64(q[i*heads*hd+h*hd+d]) * float64(k[j*kvDim+(h/group)*hd+d])
				}
				l[j] *= scale
				m = math.Max(m, l[j])
			}
			if softmax {
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
		for j := range out {
			out[j] += float64(alpha[i]) * best[j]
		}
	}
	res := make([]float32, n)
	for j, v := range out {
		res[j] = float32(v)
	}
	return res
}

func testSelectScores(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(13, 14))
	const heads, kvHeads, hd, page = 6, 2, 16, 8
	kvDim := kvHeads * hd
	for _, tc := range []struct {
		w, n    int
		softmax bool
		dt      compute.KVDType
	}{{1, 37, false, compute.KVF32}, {1, 64, true, compute.KVF32}, {4, 50, true, compute.KVF16}, {3, 9, false, compute.KVF16}} {
		t.Run(fmt.Sprintf("w%d_n%d_softmax%v_%v", tc.w, tc.n, tc.softmax, tc.dt), func(t *testing.T) {
			k, v := randVec(r, tc.n*kvDim, 1), randVec(r, tc.n*kvDim, 1)
			if tc.dt == compute.KVF16 {
				for i := range k {
					k[i] = weights.F16ToF32(weights.F32ToF16(k[i]))
				}
			}
			pages := make([]*compute.KVPage, (tc.n+page-1)/page)
			for i := range pages {
				pages[i] = dev.NewKVPage(page, kvDim, tc.dt)
			}
			dev.WriteKV(pages, page, 0, dev.Upload(tc.n, kvDim, k), dev.Upload(tc.n, kvDim, v), 0, tc.n)
			q := randVec(r, tc.w*heads*hd, 1)
			alpha := make([]float32, tc.w)
			for i := range alpha {
				alpha[i] = float32(math.Ldexp(1, i-tc.w+1))
			}
			out := make([]float32, tc.n)
			scale := 1 / math.Sqrt(hd)
			dev.SelectScores(&compute.SelectScores{
				Q: dev.Upload(tc.w, heads*hd, q), Rows: tc.w, Alpha: alpha, Softmax: tc.softmax, Heads: heads,
				KVHeads: kvHeads, HeadDim: hd, Scale: float32(scale), Pages: pages, Page: page, N: tc.n, Out: out,
			})
			closeTo(t, "select scores", out, refSelectScores(q, k, tc.w, tc.n, heads, kvHeads, hd, alpha, tc.softmax, scale), 2e-6)
		})
	}
}

func testGatherKV(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(15, 16))
	const kvDim, srcPage, dstPage, n = 12, 8, 4, 40
	for _, dt := range []compute.KVDType{compute.KVF32, compute.KVF16} {
		k, v := randVec(r, n*kvDim, 1), randVec(r, n*kvDim, 1)
		src := make([]*compute.KVPage, n/srcPage)
		for i := range src {
			src[i] = dev.NewKVPage(srcPage, kvDim, dt)
		}
		dev.WriteKV(src, srcPage, 0, dev.Upload(n, kvDim, k), dev.Upload(n, kvDim, v), 0, n)
		dst := make([]*compute.KVPage, 3)
		for i := range dst {
			dst[i] = dev.NewKVPage(dstPage, kvDim, dt)
		}
		rows, slots := []int32{39, 0, 17, 8, 9}, []int32{11, 0, 5, 2, 7}
		dev.GatherKV(dst, dstPage, slots, src, srcPage, rows)
		// Read back through attention: a query that attends to one slot only returns that slot's value row.
		for i, slot := range slots {
			want := v[int(rows[i])*kvDim : int(rows[i]+1)*kvDim]
			got := readSlotValue(dev, dst, dstPage, kvDim, int(slot))
			closeTo(t, fmt.Sprintf("gather %v slot %d", dt, slot), got, roundKV(want, dt), 0)
		}
	}
}

func roundKV(v []float32, dt compute.KVDType) []float32 {
	if dt == compute.KVF32 {
		return v
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = weights.F16ToF32(weights.F32ToF16(x))
	}
	return out
}

// readSlotValue returns the value row in a slot by attending with one head per KV-dim chunk to that slot alone.
func readSlotValue(dev compute.Device, pages []*compute.KVPage, page, kvDim, slot int) []float32 {
	q := dev.NewTensor(1, kvDim)
	out := dev.NewTensor(1, kvDim)
	dev.Attend(&compute.Attention{Q: q, Out: out, Rows: 1, Pos0: slot, Heads: 1, KVHeads: 1, HeadDim: kvDim, Scale: 1,
		Pages: pages, Page: page, Len: slot + 1, Sel: []int32{int32(slot)}})
	got := make([]float32, kvDim)
	dev.Read(got, out, 0)
	return got
}

// testGatherKVMany moves enough rows for a device to split the copy (e.g. across threads) and checks every one.
func testGatherKVMany(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(19, 20))
	const kvDim, page, n, moved = 8, 16, 2048, 1500
	k, v := randVec(r, n*kvDim, 1), randVec(r, n*kvDim, 1)
	src := make([]*compute.KVPage, n/page)
	for i := range src {
		src[i] = dev.NewKVPage(page, kvDim, compute.KVF32)
	}
	dev.WriteKV(src, page, 0, dev.Upload(n, kvDim, k), dev.Upload(n, kvDim, v), 0, n)
	dst := make([]*compute.KVPage, moved/page+1)
	for i := range dst {
		dst[i] = dev.NewKVPage(page, kvDim, compute.KVF32)
	}
	rows, slots := make([]int32, moved), make([]int32, moved)
	for i, x := range r.Perm(n)[:moved] {
		rows[i] = int32(x)
	}
	for i, x := range r.Perm(moved) {
		slots[i] = int32(x)
	}
	dev.GatherKV(dst, page, slots, src, page, rows)
	for i := 0; i < moved; i += 97 {
		got := readSlotValue(dev, dst, page, kvDim, int(slots[i]))
		closeTo(t, fmt.Sprintf("gather row %d -> slot %d", rows[i], slots[i]), got, v[int(rows[i])*kvDim:int(rows[i]+1)*kvDim], 0)
	}
}
