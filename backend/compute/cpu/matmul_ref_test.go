package cpu

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// Test helpers: random weights of every type and the float64 reference product over
// weights.DequantizeRow (bit-exact with GGML and gguf-py, tested in package weights).

var allTypes = []weights.DType{
	weights.F32, weights.F16, weights.BF16, weights.Q8_0, weights.Q4_0, weights.Q4_1, weights.Q4_K, weights.Q6_K,
}

// randScale returns f16 bits of a value with magnitude in [lo, hi) and a random sign when signed.
func randScale(rng *rand.Rand, lo, hi float64, signed bool) uint16 {
	v := lo + (hi-lo)*rng.Float64()
	if signed && rng.IntN(2) == 0 {
		v = -v
	}
	return weights.F32ToF16(float32(v))
}

// randWeights returns rows x cols random weights of type t: random quant bytes (every bit pattern) with
// random f16 scale fields of realistic magnitude.
func randWeights(rng *rand.Rand, t weights.DType, rows, cols int) []byte {
	rb, err := t.RowBytes(cols)
	if err != nil {
		panic(err)
	}
	w := make([]byte, rows*rb)
	for i := range w {
		w[i] = byte(rng.Uint32())
	}
	put := func(off int, h uint16) { binary.LittleEndian.PutUint16(w[off:], h) }
	switch t {
	case weights.F32:
		for i := 0; i < len(w); i += 4 {
			binary.LittleEndian.PutUint32(w[i:], math.Float32bits(float32(rng.NormFloat64())))
		}
	case weights.F16:
		for i := 0; i < len(w); i += 2 {
			put(i, weights.F32ToF16(float32(rng.NormFloat64())))
		}
	case weights.BF16:
		for i := 0; i < len(w); i += 2 {
			put(i, weights.F32ToBF16(float32(rng.NormFloat64())))
		}
	case weights.Q8_0, weights.Q4_0:
		bs := t.TypeSize()
		for b := 0; b < len(w); b += bs {
			put(b, randScale(rng, 1e-3, 0.1, true))
		}
	case weights.Q4_1:
		for b := 0; b < len(w); b += 20 {
			put(b, randScale(rng, 1e-3, 0.05, false))
			put(b+2, randScale(rng, 0, 0.4, true))
		}
	case weights.Q4_K:
		for b := 0; b < len(w); b += 144 {
			put(b, randScale(rng, 1e-4, 1e-2, false))
			put(b+2, randScale(rng, 1e-4, 1e-2, false))
		}
	case weights.Q6_K:
		for b := 0; b < len(w); b += 210 {
			put(b+208, randScale(rng, 1e-5, 1e-3, true))
		}
	}
	return w
}

func randVec(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// refMatmul returns want[t*rows+r] = sum_i W[r][i]*x[t*cols+i] in float64 over the reference
// dequantization, and mag[t*rows+r] = sum_i |W[r][i]*x[t*cols+i]|, the scale of the rounding error.
func refMatmul(tb testing.TB, x []float32, n int, w []byte, t weights.DType, rows, cols int) (want, mag []float64) {
	tb.Helper()
	rb, err := t.RowBytes(cols)
	if err != nil {
		tb.Fatal(err)
	}
	want, mag = make([]float64, n*rows), make([]float64, n*rows)
	row := make([]float32, cols)
	for r := 0; r < rows; r++ {
		if err := weights.DequantizeRow(t, w[r*rb:(r+1)*rb], row); err != nil {
			tb.Fatalf("reference dequantize row %d: %v", r, err)
		}
		for tok := 0; tok < n; tok++ {
			var s, a float64
			for i, v := range row {
				p := float64(v) * float64(x[tok*cols+i])
				s += p
				a += math.Abs(p)
			}
			want[tok*rows+r], mag[tok*rows+r] = s, a
		}
	}
	return want, mag
}

// relTol bounds |got-want| / sum|w*x| for float32 accumulation of up to 4096 products.
const relTol = 1e-6

// guarded returns a slice of length n inside a larger buffer whose extra values are NaN sentinels, and a
// function that fails the test if any sentinel was overwritten.
func guarded(tb testing.TB, n int) ([]float32, func()) {
	const pad = 19
	buf := make([]float32, n+2*pad)
	sentinel := math.Float32frombits(0x7fc0beef)
	for i := range buf {
		buf[i] = sentinel
	}
	check := func() {
		tb.Helper()
		for i := range buf {
			if (i < pad || i >= pad+n) && math.Float32bits(buf[i]) != 0x7fc0beef {
				tb.Fatalf("guard value at offset %d (slice length %d) overwritten: %v", i-pad, n, buf[i])
			}
		}
	}
	return buf[pad : pad+n : pad+n], check
}
