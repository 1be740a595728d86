package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

var packedTypes = []weights.DType{weights.Q4_1, weights.Q8_0}

// TestPackedKernels checks the packed-layout kernels (assembly where the CPU has it, else the Go twins)
// against the row-major definition: decode dots within float32 rounding of the float64 reference,
// dequantization bit for bit against weights.DequantizeRow, and the 8x16 micro-kernel against float64.
func TestPackedKernels(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		for _, typ := range packedTypes {
			for _, sh := range [][2]int{{16, 32}, {32, 64}, {48, 96}, {16, 576}, {64, 1536}} {
				rows, cols := sh[0], sh[1]
				name := fmt.Sprintf("%v %dx%d", typ, rows, cols)
				w := randWeights(rng, typ, rows, cols)
				p, err := packWeight(w, typ, rows, cols)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.data) != len(w) {
					t.Fatalf("%s: packed %d bytes, want %d", name, len(p.data), len(w))
				}
				// Decode.
				x := randVec(rng, cols)
				xs := make([]float32, cols/32)
				blockSums(xs, x)
				out := make([]float32, rows+1)
				out[rows] = 42 // sentinel
				rowsPacked(typ, out[:rows], p.data, x, xs)
				if out[rows] != 42 {
					t.Fatalf("%s: wrote past out", name)
				}
				want, mag := refMatmul(t, x, 1, w, typ, rows, cols)
				checkMatmulResult(t, name+" decode", out[:rows], want, mag)

				// Dequantization, bit for bit.
				rb, _ := typ.RowBytes(cols)
				row := make([]float32, cols)
				dq := make([]float32, cols*packRows)
				for g := 0; g < rows/packRows; g++ {
					dequantPacked(typ, dq, p.data[g*p.groupBytes():(g+1)*p.groupBytes()])
					for r := 0; r < packRows; r++ {
						if err := weights.DequantizeRow(typ, w[(g*packRows+r)*rb:(g*packRows+r+1)*rb], row); err != nil {
							t.Fatal(err)
						}
						for k, v := range row {
							if got := dq[k*packRows+r]; math.Float32bits(got) != math.Float32bits(v) {
								t.Fatalf("%s: dequant row %d col %d = %v, want %v", name, g*packRows+r, k, got, v)
							}
						}
					}
				}

				// The micro-kernel over the last group's tiles: 8 tokens, strided x and out.
				ldx, ldo := cols+3, 21
				xt := randVec(rng, 8*ldx)
				o := make([]float32, 8*ldo)
				gemm8x16(o, ldo, xt, ldx, dq, cols)
				for tk := 0; tk < 8; tk++ {
					for r := 0; r < packRows; r++ {
						var s, m float64
						for k := 0; k < cols; k++ {
							v := float64(xt[tk*ldx+k]) * float64(dq[k*packRows+r])
							s, m = s+v, m+math.Abs(v)
						}
						if d := math.Abs(float64(o[tk*ldo+r]) - s); d > relTol*m+1e-30 {
							t.Fatalf("%s: gemm8x16 out[%d][%d] = %v, want %v", name, tk, r, o[tk*ldo+r], s)
						}
					}
					for r := packRows; r < ldo; r++ {
						if o[tk*ldo+r] != 0 {
							t.Fatalf("%s: gemm8x16 wrote out[%d][%d]", name, tk, r)
						}
					}
				}
			}
		}
	})
}

func TestPackWeightErrors(t *testing.T) {
	for _, tc := range []struct {
		typ        weights.DType
		rows, cols int
	}{{weights.Q4_1, 15, 32}, {weights.Q4_1, 16, 48}, {weights.Q4_0, 16, 32}, {weights.F32, 16, 32}, {weights.Q8_0, 0, 32}} {
		if _, err := packWeight(make([]byte, 1<<14), tc.typ, tc.rows, tc.cols); err == nil {
			t.Errorf("packWeight(%v, %d, %d) succeeded", tc.typ, tc.rows, tc.cols)
		}
	}
	if _, err := packWeight(make([]byte, 10), weights.Q8_0, 16, 32); err == nil {
		t.Error("packWeight of a short weight succeeded")
	}
}

// TestMatmulPacked runs whole packed matmuls, decode (n < 3) and prefill (strips of groups, token tiles of 8
// with a padded tail), against the float64 reference.
func TestMatmulPacked(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(9, 10))
		for _, typ := range packedTypes {
			for _, sh := range [][2]int{{16, 32}, {48, 64}, {192, 576}, {576, 576}, {1536, 576}, {576, 1536}} {
				rows, cols := sh[0], sh[1]
				w := randWeights(rng, typ, rows, cols)
				p, err := packWeight(w, typ, rows, cols)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{1, 2, 3, 7, 8, 9, 64, 70} {
					x := randVec(rng, n*cols)
					want, mag := refMatmul(t, x, n, w, typ, rows, cols)
					out, check := guarded(t, n*rows)
					matmulPacked(out, x, n, p)
					check()
					checkMatmulResult(t, fmt.Sprintf("packed %v rows=%d cols=%d n=%d", typ, rows, cols, n), out, want, mag)
				}
			}
		}
	})
}

func TestMatmulPackedNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 2, 40} {
		p, err := packWeight(randWeights(rng, weights.Q4_1, 192, 576), weights.Q4_1, 192, 576)
		if err != nil {
			t.Fatal(err)
		}
		x, out := randVec(rng, n*576), make([]float32, n*192)
		matmulPacked(out, x, n, p) // grow the scratch
		if a := testing.AllocsPerRun(20, func() { matmulPacked(out, x, n, p) }); a != 0 {
			t.Errorf("n=%d: %v allocations per packed matmul", n, a)
		}
	}
}
