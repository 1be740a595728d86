package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

func TestF16MatchesWeights(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		got, want := f16(uint16(h)), weights.F16ToF32(uint16(h))
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("f16(%#04x) = %v (%#08x), want %v (%#08x)", h, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
}

// vecLens covers empty, sub-vector, exact multiples of 8 and 32, and ragged tails.
var vecLens = []int{0, 1, 3, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 576, 1031}

func f16Vec(rng *rand.Rand, n int) ([]uint16, []float64) {
	h, v := make([]uint16, n), make([]float64, n)
	for i := range h {
		h[i] = weights.F32ToF16(float32(rng.NormFloat64()))
		v[i] = float64(weights.F16ToF32(h[i]))
	}
	return h, v
}

func checkClose(t *testing.T, what string, got float32, want, mag float64) {
	t.Helper()
	if d := math.Abs(float64(got) - want); d > relTol*mag+1e-30 || math.IsNaN(float64(got)) {
		t.Errorf("%s = %v, want %v (|diff| %.3g, %.3g of sum|terms|)", what, got, want, d, d/mag)
	}
}

func TestDotAxpyScale(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, n := range vecLens {
			a, b := randVec(rng, n), randVec(rng, n)
			h, hv := f16Vec(rng, n)
			bf := make([]uint16, n)
			for i := range bf {
				bf[i] = weights.F32ToBF16(float32(rng.NormFloat64()))
			}
			var want, mag, wantH, magH, wantB, magB float64
			for i := range a {
				p := float64(a[i]) * float64(b[i])
				want, mag = want+p, mag+math.Abs(p)
				p = hv[i] * float64(b[i])
				wantH, magH = wantH+p, magH+math.Abs(p)
				p = float64(weights.BF16ToF32(bf[i])) * float64(b[i])
				wantB, magB = wantB+p, magB+math.Abs(p)
			}
			checkClose(t, "dotF32", dotF32(a, b), want, mag)
			checkClose(t, "dotF16", dotF16(h, b), wantH, magH)
			checkClose(t, "dotBF16", dotBF16(bf, b), wantB, magB)

			const alpha = float32(-0.37)
			y, check := guarded(t, n)
			copy(y, b)
			axpyF32(y, alpha, a)
			check()
			for i := range y {
				if w := b[i] + alpha*a[i]; math.Abs(float64(y[i]-w)) > 1e-6*(math.Abs(float64(b[i]))+math.Abs(float64(alpha*a[i]))) {
					t.Fatalf("axpyF32 n=%d [%d] = %v, want %v", n, i, y[i], w)
				}
			}
			copy(y, b)
			axpyF16(y, alpha, h)
			check()
			for i := range y {
				if w := float64(b[i]) + float64(alpha)*hv[i]; math.Abs(float64(y[i])-w) > 1e-6*(math.Abs(float64(b[i]))+math.Abs(float64(alpha)*hv[i])) {
					t.Fatalf("axpyF16 n=%d [%d] = %v, want %v", n, i, y[i], w)
				}
			}
			copy(y, a)
			scaleF32(y, alpha)
			check()
			for i := range y {
				if y[i] != a[i]*alpha { // one rounding either way: exact match
					t.Fatalf("scaleF32 n=%d [%d] = %v, want %v", n, i, y[i], a[i]*alpha)
				}
			}
		}
	})
}

// TestKernelsReadOnlyTheirLength checks that the kernels never read past len: the values beyond are NaN.
func TestKernelsReadOnlyTheirLength(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		nan := float32(math.NaN())
		for _, n := range vecLens {
			a, b := randVec(rng, n+9), randVec(rng, n+9)
			h, _ := f16Vec(rng, n+9)
			for i := n; i < n+9; i++ {
				a[i], b[i], h[i] = nan, nan, 0x7e00 // f16 NaN
			}
			if v := dotF32(a[:n], b[:n]); math.IsNaN(float64(v)) {
				t.Fatalf("dotF32 n=%d read past the end", n)
			}
			if v := dotF16(h[:n], b[:n]); math.IsNaN(float64(v)) {
				t.Fatalf("dotF16 n=%d read past the end", n)
			}
			if v := dotBF16(h[:n], b[:n]); math.IsNaN(float64(v)) {
				t.Fatalf("dotBF16 n=%d read past the end", n)
			}
			y := make([]float32, n)
			axpyF32(y, 1, a[:n])
			axpyF16(y, 1, h[:n])
			for i := range y {
				if math.IsNaN(float64(y[i])) {
					t.Fatalf("axpy n=%d read past the end", n)
				}
			}
		}
	})
}
