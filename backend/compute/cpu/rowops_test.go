package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRowOps checks the row operations (assembly where the CPU has it, else the Go twins) against the
// twins: bit for bit, except sumSquaresF64 (float64 sums in another order), on lengths with and without
// a tail of fewer than 8 values, and fp16 conversion on values that round, overflow, go subnormal or are
// not numbers.
func TestRowOps(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(15, 16))
		special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 65504, 65520, 65519.99, 1e6, -1e6,
			6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8, 1e-10, 1.0009765625, 1.00048828125, 1.00146484375,
			float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), math.Float32frombits(0x7f800001), math.Float32frombits(0xffc12345)}
		for _, n := range []int{1, 7, 8, 9, 23, 64, 192, 576} {
			x := randVec(rng, n)
			for i := range x {
				if i%3 == 0 {
					x[i] = special[(i/3)%len(special)]
				}
			}
			got, want := make([]uint16, n+1), make([]uint16, n)
			got[n] = 42
			cvtF32ToF16(got[:n], x)
			cvtF32ToF16Go(want, x)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("n=%d: f16(%v) = %#04x, want %#04x", n, x[i], got[i], want[i])
				}
			}
			if got[n] != 42 {
				t.Fatalf("n=%d: cvtF32ToF16 wrote past dst", n)
			}

			x, g := randVec(rng, n), randVec(rng, n)
			if ss, ref := sumSquaresF64(x), sumSquaresF64Go(x); math.Abs(ss-ref) > 1e-12*ref {
				t.Errorf("n=%d: sumSquaresF64 = %v, want %v", n, ss, ref)
			}
			o, ref := make([]float32, n+1), make([]float32, n)
			o[n] = 42
			mulScaleF32(o[:n], g, x, 0.37)
			mulScaleF32Go(ref, g, x, 0.37)
			for i := range ref {
				if math.Float32bits(o[i]) != math.Float32bits(ref[i]) {
					t.Fatalf("n=%d: mulScaleF32[%d] = %v, want %v", n, i, o[i], ref[i])
				}
			}
			if o[n] != 42 {
				t.Fatalf("n=%d: mulScaleF32 wrote past o", n)
			}
		}
		for _, half := range []int{4, 8, 32, 64} {
			v, cs := randVec(rng, 2*half+1), randVec(rng, 2*half)
			v[2*half] = 42
			ref := append([]float32(nil), v[:2*half]...)
			ropeHalf(v[:2*half], cs[:half], cs[half:])
			ropeHalfGo(ref, cs[:half], cs[half:])
			for i := range ref {
				if math.Float32bits(v[i]) != math.Float32bits(ref[i]) {
					t.Fatalf("half=%d: ropeHalf[%d] = %v, want %v", half, i, v[i], ref[i])
				}
			}
			if v[2*half] != 42 {
				t.Fatalf("half=%d: ropeHalf wrote past v", half)
			}
		}
	})
}
