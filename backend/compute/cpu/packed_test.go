package cpu

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

var packedTypes = []weights.DType{weights.Q4_1, weights.Q8_0}

// TestPackedKernels checks the packed-layout kernels (assembly where the CPU has it, else the Go twins)
// against the row-major definition: one token's dots within float32 rounding of the float64 reference, and
// four tokens at once bit for bit equal to one at a time.
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
				xq := encodeForTest(x)
				out := make([]float32, rows+1)
				out[rows] = 42 // sentinel
				rowsPacked(typ, out[:rows], p.data, &xq)
				if out[rows] != 42 {
					t.Fatalf("%s: wrote past out", name)
				}
				want, mag := refMatmul(t, x, 1, w, typ, rows, cols)
				checkMatmulResult(t, name+" decode", out[:rows], want, mag)

				// Four tokens at once: each token's outputs bit for bit those of the one-token kernel, into
				// strided rows of out, nothing written outside them.
				var xs [4]*xQuant
				ldo := rows + 5
				want4 := make([]float32, 4*rows)
				for u := range xs {
					q := encodeForTest(randVec(rng, cols))
					xs[u] = &q
					rowsPacked(typ, want4[u*rows:(u+1)*rows], p.data, &q)
				}
				var tile xTile
				interleave4(&tile, xs)
				o := make([]float32, 4*ldo)
				for i := range o {
					o[i] = 42
				}
				rowsPacked4(typ, o, ldo, rows/packRows, p.data, &tile)
				for u := 0; u < 4; u++ {
					for r := 0; r < ldo; r++ {
						got := o[u*ldo+r]
						if r >= rows {
							if got != 42 {
								t.Fatalf("%s: rowsPacked4 wrote out[%d][%d]", name, u, r)
							}
							continue
						}
						if math.Float32bits(got) != math.Float32bits(want4[u*rows+r]) {
							t.Fatalf("%s: rowsPacked4 token %d row %d = %v, one token %v", name, u, r, got, want4[u*rows+r])
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

// TestMatmulPacked runs whole packed matmuls (tiles of four tokens, a tail of one at a time, token blocks
// beyond 32) against the float64 reference.
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

// encodeForTest encodes one token x for the packed decode kernels, as matmulJob.encodeTokens does.
func encodeForTest(x []float32) xQuant {
	nb := len(x) / 32
	xq := xQuant{q: make([]byte, nb*xqBytes), sc: make([]float32, nb), sum: make([]float32, nb), corr: make([]int32, 4*nb)}
	encodeX(xq.q, xq.sc, x, 1)
	blockSums(xq.sum, x, 1)
	digitCorrections(xq.corr, xq.q)
	return xq
}

// TestEncodeX checks the activations' digits: each block's values are X*s within half a step of the
// block's scale (23 bits of its largest magnitude), digits within int8, and the assembly equal to the Go
// twin bit for bit, on blocks with zeros, outliers, tiny and huge values.
func TestEncodeX(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	x := randVec(rng, 32*12)
	clear(x[32:64])                  // a block of zeros
	x[64+5] = 300                    // an outlier
	x[96] = -1e-35                   // below xqFloor
	x[128+7], x[128+9] = 3e38, -3e38 // near the float32 limit
	for k := 160; k < 192; k++ {     // every value the block's largest
		x[k] = float32(1 - 2*(k%2))
	}
	for k := 192; k < 224; k++ {
		x[k] = float32(k-208) * 1e-20
	}
	x[224+31] = float32(math.NaN()) // a NaN, last in its block: the scale must carry it
	const nanBlock = 7
	nb := len(x) / 32
	var want xQuant
	forEachImpl(t, func(t *testing.T) {
		xq := xQuant{q: make([]byte, nb*xqBytes+1), sc: make([]float32, nb+1)}
		xq.q[nb*xqBytes], xq.sc[nb] = 42, 42 // sentinels
		encodeX(xq.q[:nb*xqBytes], xq.sc[:nb], x, 1)
		if xq.q[nb*xqBytes] != 42 || xq.sc[nb] != 42 {
			t.Fatal("encodeX wrote past its outputs")
		}
		if !math.IsNaN(float64(xq.sc[nanBlock])) {
			t.Errorf("block %d holds a NaN, scale %v", nanBlock, xq.sc[nanBlock])
		}
		for b := 0; b < nb; b++ {
			if b == nanBlock {
				continue
			}
			var amax float64
			for _, v := range x[32*b : 32*b+32] {
				amax = max(amax, math.Abs(float64(v)))
			}
			for k := 0; k < 32; k++ {
				hi, mid, lo := int8(xq.q[xqBytes*b+k]), int8(xq.q[xqBytes*b+32+k]), int8(xq.q[xqBytes*b+64+k])
				if hi == -128 && mid != 0 {
					t.Errorf("block %d value %d: hi digit -128 with mid %d", b, k, mid)
				}
				X := 65536*int64(hi) + 256*int64(mid) + int64(lo)
				got, v := float64(X)*float64(xq.sc[b]), float64(x[32*b+k])
				if d := math.Abs(got - v); d > amax*1.5e-7+1e-36 {
					t.Errorf("block %d value %d: %v encoded as %d * %v = %v (|diff| %.3g, max %.3g)", b, k, v, X, xq.sc[b], got, d, amax)
				}
			}
		}
		if want.q == nil {
			want = xq
			return
		}
		if !bytes.Equal(xq.q[:nanBlock*xqBytes], want.q[:nanBlock*xqBytes]) || !bytes.Equal(xq.q[(nanBlock+1)*xqBytes:], want.q[(nanBlock+1)*xqBytes:]) {
			t.Error("digits differ from the first implementation's")
		}
		for b := range xq.sc {
			if b != nanBlock && math.Float32bits(xq.sc[b]) != math.Float32bits(want.sc[b]) {
				t.Errorf("scale %d = %v, first implementation %v", b, xq.sc[b], want.sc[b])
			}
		}
	})
}

// TestMatmulPackedShared runs fused decodes of packed weights sharing x (the Go twins too) against
// matmulPacked of each weight alone, which they must equal bit for bit (same encoding, same kernels), with
// guards around every output; and checks that a fused call allocates nothing.
func TestMatmulPackedShared(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(23, 24))
		for _, set := range [][]weights.DType{{weights.Q4_1, weights.Q4_1, weights.Q4_1}, {weights.Q8_0, weights.Q4_1}, {weights.Q4_1}} {
			for _, n := range []int{1, 2} {
				const cols = 576
				var ps []*packedWeight
				var outs [][]float32
				var checks []func()
				for i, typ := range set {
					rows := 16 * (3 + 2*i)
					p, err := packWeight(randWeights(rng, typ, rows, cols), typ, rows, cols)
					if err != nil {
						t.Fatal(err)
					}
					out, check := guarded(t, n*rows)
					ps, outs, checks = append(ps, p), append(outs, out), append(checks, check)
				}
				x := randVec(rng, n*cols)
				matmulPackedShared(outs, x, n, ps)
				for i, p := range ps {
					checks[i]()
					want := make([]float32, n*p.rows)
					matmulPacked(want, x, n, p)
					for k := range want {
						if math.Float32bits(outs[i][k]) != math.Float32bits(want[k]) {
							t.Fatalf("%v n=%d weight %d: out[%d] = %v, alone %v", set, n, i, k, outs[i][k], want[k])
						}
					}
				}
				if a := testing.AllocsPerRun(20, func() { matmulPackedShared(outs, x, n, ps) }); a != 0 {
					t.Errorf("%v n=%d: %v allocations per fused matmul", set, n, a)
				}
			}
		}
	})
}

// TestMatmulPackedNonFinite: a NaN or an infinity in x makes every output of the packed decode non-finite,
// as float32 arithmetic would, instead of vanishing in the integer encoding.
func TestMatmulPackedNonFinite(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(25, 26))
		for _, typ := range packedTypes {
			p, err := packWeight(randWeights(rng, typ, 32, 128), typ, 32, 128)
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
				for _, at := range []int{0, 31, 77} {
					x := randVec(rng, 128)
					x[at] = bad
					out := make([]float32, 32)
					matmulPacked(out, x, 1, p)
					for r, v := range out {
						if !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
							t.Fatalf("%v: x[%d] = %v, out[%d] = %v", typ, at, bad, r, v)
						}
					}
				}
			}
		}
	})
}

// TestPackedBatchInvariant: on the packed path a token's outputs are the same bit for bit alone (n = 1, the
// one-token kernel) and in any batch (four tokens per weight vector, a tail one at a time, token blocks).
func TestPackedBatchInvariant(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(23, 24))
		for _, typ := range packedTypes {
			const rows, cols, most = 96, 576, 37
			p, err := packWeight(randWeights(rng, typ, rows, cols), typ, rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			x := randVec(rng, most*cols)
			alone := make([]float32, most*rows)
			for i := 0; i < most; i++ {
				matmulPacked(alone[i*rows:(i+1)*rows], x[i*cols:(i+1)*cols], 1, p)
			}
			out := make([]float32, most*rows)
			for _, n := range []int{2, 3, 4, 5, 8, 13, 32, 33, 37} {
				matmulPacked(out[:n*rows], x[:n*cols], n, p)
				for i, v := range out[:n*rows] {
					if math.Float32bits(v) != math.Float32bits(alone[i]) {
						t.Fatalf("%v: batch of %d, token %d, row %d = %v, alone %v", typ, n, i/rows, i%rows, v, alone[i])
					}
				}
			}
		}
	})
}

// interleave4 builds the tile of four tokens encoded one by one.
func interleave4(dst *xTile, xs [4]*xQuant) {
	nb := len(xs[0].sc)
	dst.q = growBytes(dst.q, nb*4*xqBytes)
	dst.sc = growF32(dst.sc, nb*4)
	if xs[0].sum != nil {
		dst.sum = growF32(dst.sum, nb*4)
	}
	if xs[0].corr != nil {
		if cap(dst.corr) < nb*16 {
			dst.corr = make([]int32, nb*16)
		}
		dst.corr = dst.corr[:nb*16]
	}
	for b := 0; b < nb; b++ {
		for u, x := range xs {
			copy(dst.q[(4*b+u)*xqBytes:(4*b+u+1)*xqBytes], x.q[b*xqBytes:(b+1)*xqBytes])
			dst.sc[4*b+u] = x.sc[b]
			if x.sum != nil {
				dst.sum[4*b+u] = x.sum[b]
			}
			if x.corr != nil {
				copy(dst.corr[(4*b+u)*4:(4*b+u+1)*4], x.corr[4*b:4*b+4])
			}
		}
	}
}
