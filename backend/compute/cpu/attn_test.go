package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

func randF32(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func TestGemmTile(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		rows, k  int
		colMajor bool // a transposed (rsA = 1, csA = lda)
	}{{3, 1, false}, {3, 64, false}, {6, 64, false}, {3, 48, true}, {6, 48, true}, {6, 7, true}} {
		t.Run(fmt.Sprintf("rows%d_k%d_colmajor%v", tc.rows, tc.k, tc.colMajor), func(t *testing.T) {
			const ldc, ldb, lda = 21, 19, 70 // strides wider than the tile
			a, b := randF32(r, lda*max(tc.rows, tc.k)), randF32(r, tc.k*ldb)
			c0 := randF32(r, tc.rows*ldc)
			rsA, csA := lda, 1
			if tc.colMajor {
				rsA, csA = 1, lda
			}
			for name, f := range map[string]func(int, []float32, int, []float32, int, int, []float32, int, int){
				"dispatch": gemmTile, "go": gemmTileGo,
			} {
				c := append([]float32(nil), c0...)
				f(tc.rows, c, ldc, a, rsA, csA, b, ldb, tc.k)
				for i := 0; i < tc.rows; i++ {
					for j := 0; j < ldc; j++ {
						want := float64(c0[i*ldc+j])
						if j < 16 {
							for kk := 0; kk < tc.k; kk++ {
								want += float64(a[i*rsA+kk*csA]) * float64(b[kk*ldb+j])
							}
						}
						if d := math.Abs(float64(c[i*ldc+j]) - want); d > 1e-5*(1+math.Abs(want)) || (j >= 16 && d != 0) {
							t.Fatalf("%s: c[%d][%d] = %g, want %g", name, i, j, c[i*ldc+j], want)
						}
					}
				}
			}
		})
	}
}

func TestCvtF16Rows(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, tc := range []struct{ n, rows, stride int }{{8, 1, 8}, {64, 5, 192}, {12, 3, 40}, {3, 2, 3}, {24, 4, 24}} {
		src := make([]uint16, (tc.rows-1)*tc.stride+tc.n)
		for i := range src {
			src[i] = uint16(r.UintN(1 << 16)) // every class: normals, subnormals, zeros, infinities, NaN
		}
		src[0], src[1] = 0x0001, 0x7c00
		for name, f := range map[string]func([]float32, []uint16, int, int, int){"dispatch": cvtF16Rows, "go": cvtF16RowsGo} {
			dst := make([]float32, tc.rows*tc.n+1)
			dst[len(dst)-1] = 42 // guard
			f(dst, src, tc.n, tc.rows, tc.stride)
			for row := 0; row < tc.rows; row++ {
				for i := 0; i < tc.n; i++ {
					h := src[row*tc.stride+i]
					got, want := dst[row*tc.n+i], weights.F16ToF32(h)
					if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
						t.Fatalf("%s %+v: row %d col %d: f16 %#04x = %g, want %g", name, tc, row, i, h, got, want)
					}
				}
			}
			if dst[len(dst)-1] != 42 {
				t.Fatalf("%s %+v: wrote past the end", name, tc)
			}
		}
	}
}

func TestAttnSoftmaxPasses(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, n := range []int{3, 8, 21, 96} {
		row, mx := randF32(r, n), randF32(r, n)
		row[0] = float32(math.Inf(-1))
		l := make([]float64, n)
		for i := range l {
			l[i] = float64(i)
		}
		r1, m1, l1 := append([]float32(nil), row...), append([]float32(nil), mx...), append([]float64(nil), l...)
		r2, m2, l2 := append([]float32(nil), row...), append([]float32(nil), mx...), append([]float64(nil), l...)
		attnScaleMax(r1, m1, 0.125)
		attnScaleMaxGo(r2, m2, 0.125)
		attnExpSum(r1, m1, l1)
		attnExpSumGo(r2, m2, l2)
		for i := 0; i < n; i++ {
			want := math.Exp(float64(row[i]*0.125) - float64(max(mx[i], row[i]*0.125)))
			if m1[i] != m2[i] || ulpDiff(r1[i], want) > 2 || ulpDiff(r2[i], want) > 2 ||
				math.Abs(l1[i]-l[i]-want) > 1e-6 || math.Abs(l2[i]-l[i]-want) > 1e-6 {
				t.Fatalf("n %d, element %d: max %g/%g, p %g/%g, sum %g/%g; want p %g", n, i, m1[i], m2[i], r1[i], r2[i], l1[i], l2[i], want)
			}
		}
	}
}

// TestAttendNoAllocs checks that Attend and SelectScores allocate nothing once their scratch has grown.
func TestAttendNoAllocs(t *testing.T) {
	d := New()
	for _, sh := range []struct{ length, rows, seqs int }{{3000, 1, 1}, {600, 100, 1}, {300, 1, 12}} {
		lengths := make([]int, sh.seqs)
		for i := range lengths {
			lengths[i] = sh.length
		}
		f := newAttnFixture(d, lengths, sh.rows, compute.KVF16)
		d.Attend(f.a)
		if n := testing.AllocsPerRun(5, func() { d.Attend(f.a) }); n != 0 {
			t.Errorf("Attend %d x %d rows over %d tokens: %v allocations per call, want 0", sh.seqs, sh.rows, sh.length, n)
		}
		s := selectFixture(d, sh.length, min(4, sh.rows))
		d.SelectScores(s)
		if n := testing.AllocsPerRun(5, func() { d.SelectScores(s) }); n != 0 {
			t.Errorf("SelectScores over %d tokens: %v allocations per call, want 0", sh.length, n)
		}
	}
}

func TestDot4x3(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for _, k := range []int{3, 8, 12, 64, 67} {
		const ldo, ldx, ldw = 5, 70, 71
		x, w := randF32(r, 4*ldx), randF32(r, 3*ldw)
		for name, f := range map[string]func([]float32, int, []float32, int, []float32, int, int){"dispatch": dot4x3, "go": dot4x3Go} {
			out := make([]float32, 4*ldo)
			for i := range out {
				out[i] = 42 // untouched outside the tile; overwritten inside it
			}
			f(out, ldo, x, ldx, w, ldw, k)
			for tt := 0; tt < 4; tt++ {
				for c := 0; c < ldo; c++ {
					want := 42.0
					if c < 3 {
						want = 0
						for i := 0; i < k; i++ {
							want += float64(x[tt*ldx+i]) * float64(w[c*ldw+i])
						}
					}
					if d := math.Abs(float64(out[tt*ldo+c]) - want); d > 1e-5*(1+math.Abs(want)) {
						t.Fatalf("%s k %d: out[%d][%d] = %g, want %g", name, k, tt, c, out[tt*ldo+c], want)
					}
				}
			}
		}
	}
}

// TestAttendPlan pins the work split: prefill chunks split query rows only; decode over a long context
// splits the tokens so that every worker has several tasks; short contexts are not split. A sequence's plan
// is its own: batched with others, it is planned the same.
func TestAttendPlan(t *testing.T) {
	d := New()
	for _, tc := range []struct {
		length, rows, rowBlocks int
		split                   bool
	}{
		{2048, 256, 8, 8*benchKVHeads < 4*poolWorkers()}, // 24 tasks already: split only on many cores
		{8192, 1, 1, true}, {32768, 1, 1, true}, {600, 1, 1, false}, {3000, 5, 1, true},
	} {
		for _, seqs := range []int{1, 3} {
			lengths := make([]int, seqs)
			for i := range lengths {
				lengths[i] = tc.length
			}
			f := newAttnFixture(d, lengths, tc.rows, compute.KVF16)
			var task attnTask
			task.plan(f.a)
			for _, sq := range task.seqs {
				if sq.rowBlocks != tc.rowBlocks || (sq.splits > 1) != tc.split {
					t.Errorf("%d x %d rows over %d tokens: %d row blocks, %d splits; want %d row blocks, split %v",
						seqs, tc.rows, tc.length, sq.rowBlocks, sq.splits, tc.rowBlocks, tc.split)
				}
				if sq.splits > 1 && (sq.splits-1)*sq.splitLen >= tc.length {
					t.Errorf("%d tokens: %d splits of %d leave an empty split", tc.length, sq.splits, sq.splitLen)
				}
			}
		}
	}
}
