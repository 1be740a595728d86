package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ulpDiff returns how many float32 steps got is from the correctly rounded value of want.
func ulpDiff(got float32, want float64) int64 {
	w := float32(want)
	a, b := int64(math.Float32bits(got)), int64(math.Float32bits(w))
	d := a - b
	if d < 0 {
		d = -d
	}
	return d
}

// TestExpF32Sweep checks every 101st float32 in [expLo, expHi] (22 million values) against math.Exp,
// for the dispatching expF32 (assembly where available) and for the pure-Go twin.
func TestExpF32Sweep(t *testing.T) {
	step := uint32(101)
	if testing.Short() {
		step = 997
	}
	for _, impl := range []struct {
		name string
		f    func([]float32)
	}{{"expF32", expF32}, {"expF32Go", expF32Go}} {
		t.Run(impl.name, func(t *testing.T) {
			buf := make([]float32, 0, 4096)
			var worst int64
			var worstX float32
			check := func() {
				in := append([]float32(nil), buf...)
				impl.f(buf)
				for i, x := range in {
					if d := ulpDiff(buf[i], math.Exp(float64(x))); d > worst {
						worst, worstX = d, x
					}
				}
				buf = buf[:0]
			}
			// Negative half: bits of -0 .. expLo (descending magnitude order does not matter).
			sweep := func(from, to uint32) { // float32 bit patterns [from, to] of one sign
				for b := from; b <= to && b >= from; b += step {
					buf = append(buf, math.Float32frombits(b))
					if len(buf) == cap(buf) {
						check()
					}
				}
			}
			sweep(0x80000000, math.Float32bits(expLo))
			sweep(0, math.Float32bits(expHi))
			check()
			t.Logf("worst error %d ulp at x = %g", worst, worstX)
			if worst > 2 {
				t.Fatalf("error %d ulp at x = %g (exp %g), want <= 2", worst, worstX, math.Exp(float64(worstX)))
			}
		})
	}
}

func TestExpF32Special(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	for _, tc := range []struct {
		in, want float32
	}{
		{float32(math.Inf(-1)), 0}, {-1000, 0}, {-88, 0}, {0, 1}, {float32(math.Copysign(0, -1)), 1},
		{inf, inf}, {89, inf}, {1, float32(math.E)}, {-1, float32(1 / math.E)},
	} {
		for _, f := range []func([]float32){expF32, expF32Go} {
			for _, n := range []int{1, 8, 13} { // tail-only, vector-only, both
				x := make([]float32, n)
				for i := range x {
					x[i] = tc.in
				}
				f(x)
				for i, v := range x {
					if v != tc.want {
						t.Fatalf("exp(%g) = %g at index %d of %d, want %g", tc.in, v, i, n, tc.want)
					}
				}
			}
		}
	}
	for _, f := range []func([]float32){expF32, expF32Go} {
		x := []float32{nan, 0, nan, 0, nan, 0, nan, 0, nan}
		f(x)
		for i, v := range x {
			if (i%2 == 0) != (v != v) {
				t.Fatalf("NaN handling: element %d = %g", i, v)
			}
		}
	}
}

// TestRowScaleMaxExpSum checks the softmax row kernels against their reference loops for lengths around
// the 8-wide vector step.
func TestRowScaleMaxExpSum(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(13, 14))
		for _, n := range []int{0, 1, 7, 8, 9, 16, 47, 48, 100} {
			row := make([]float32, n)
			for i := range row {
				row[i] = float32(rng.NormFloat64() * 4)
			}
			want := append([]float32(nil), row...)
			gm, wm := rowScaleMax(row, 0.125), rowScaleMaxGo(want, 0.125)
			if gm != wm {
				t.Fatalf("n=%d: max %v, want %v", n, gm, wm)
			}
			for i := range row {
				if row[i] != want[i] {
					t.Fatalf("n=%d: scaled row[%d] = %v, want %v", n, i, row[i], want[i])
				}
			}
			gs, ws := rowExpSum(row, gm), rowExpSumGo(want, wm)
			if math.Abs(gs-ws) > 1e-6*math.Abs(ws) {
				t.Fatalf("n=%d: sum %v, want %v", n, gs, ws)
			}
			for i := range row {
				if d := math.Abs(float64(row[i] - want[i])); d > 4e-7*math.Abs(float64(want[i])) {
					t.Fatalf("n=%d: exp row[%d] = %v, want %v", n, i, row[i], want[i])
				}
			}
		}
	})
}
