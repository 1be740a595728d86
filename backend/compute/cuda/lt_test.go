//go:build cgo

package cuda

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// f16/bf16 MatMul of prefill size goes to cuBLASLt (x rounded to the weight's type): within that rounding of
// the float64 product. Skips without a GPU; without cuBLASLt it checks matmul_any instead and says so.
func TestMatMulPrefillF16BF16OnGPU(t *testing.T) { testMatMulPrefill(t, openOrSkip(t)) }

func testMatMulPrefill(t *testing.T, d *Device) {
	t.Log(d.BLAS())
	r := rand.New(rand.NewPCG(5, 6))
	const rows, cols, n = 96, 256, ltMinTokens + 6
	for _, tc := range []struct {
		typ weights.DType
		tol float64 // relative to sum |x w|: x rounded to 11 or 8 significant bits
	}{{weights.F16, 1e-3}, {weights.BF16, 8e-3}} {
		data := make([]byte, 2*rows*cols)
		vals := make([]float32, rows*cols)
		for i := range vals {
			v := float32(r.NormFloat64() * 0.5)
			var h uint16
			if tc.typ == weights.F16 {
				h = weights.F32ToF16(v)
				vals[i] = weights.F16ToF32(h)
			} else {
				h = uint16(math.Float32bits(v) >> 16)
				vals[i] = math.Float32frombits(uint32(h) << 16)
			}
			data[2*i], data[2*i+1] = byte(h), byte(h>>8)
		}
		w, err := d.Bind(&weights.Tensor{Name: "w_" + tc.typ.String(), Type: tc.typ, Shape: []int{rows, cols}, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, n*cols)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		xt, _ := d.NewTensor(compute.F32, n, cols)
		out, _ := d.NewTensor(compute.F32, n, rows)
		d.Write(xt, 0, x)
		d.MatMul(out, xt, w, n)
		got := make([]float32, n*rows)
		d.Read(got, out)
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			for j := 0; j < rows; j++ {
				var want, mag float64
				for k := 0; k < cols; k++ {
					p := float64(x[i*cols+k]) * float64(vals[j*cols+k])
					want, mag = want+p, mag+math.Abs(p)
				}
				if e := math.Abs(float64(got[i*rows+j]) - want); !(e <= tc.tol*mag) {
					t.Fatalf("%v token %d row %d: %g, want %g (error %.2e > %.0e x %.2e)", tc.typ, i, j, got[i*rows+j], want, e, tc.tol, mag)
				}
			}
		}
	}
}
