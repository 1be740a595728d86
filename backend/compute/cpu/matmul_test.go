package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/internal/testmodel"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// matmulShapes are (rows, cols) pairs: odd row counts, rows below one 3-row tile, strips with a ragged
// last tile, and cols from one block to 4096. Types skip the cols that are not whole blocks for them.
var matmulShapes = [][2]int{
	{1, 32}, {2, 7}, {3, 64}, {5, 33}, {9, 96}, {7, 256}, {13, 100}, {67, 576}, {200, 512}, {13, 1536}, {5, 4096},
}

var matmulTokens = []int{1, 2, 3, 7, 64}

// checkMatmulResult compares out with the float64 reference, relative to sum|w*x| of each output.
func checkMatmulResult(tb testing.TB, name string, out []float32, want, mag []float64) (worst float64) {
	tb.Helper()
	for i, g := range out {
		d := math.Abs(float64(g) - want[i])
		if math.IsNaN(float64(g)) || d > relTol*mag[i]+1e-30 {
			tb.Fatalf("%s: out[%d] = %v, want %v (|diff| %.3g = %.3g of sum|w*x|)", name, i, g, want[i], d, d/mag[i])
		}
		if mag[i] > 0 {
			worst = max(worst, d/mag[i])
		}
	}
	return worst
}

func TestMatmulAllTypes(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		worst := map[weights.DType]float64{}
		for _, typ := range allTypes {
			for _, sh := range matmulShapes {
				rows, cols := sh[0], sh[1]
				if cols%typ.BlockSize() != 0 {
					continue
				}
				w := randWeights(rng, typ, rows, cols)
				for _, n := range matmulTokens {
					x := randVec(rng, n*cols)
					want, mag := refMatmul(t, x, n, w, typ, rows, cols)
					out, check := guarded(t, n*rows)
					matmul(out, x, n, w, typ, rows, cols)
					check()
					name := fmt.Sprintf("%v rows=%d cols=%d n=%d", typ, rows, cols, n)
					worst[typ] = max(worst[typ], checkMatmulResult(t, name, out, want, mag))
				}
			}
		}
		for _, typ := range allTypes {
			t.Logf("%v: worst |diff| / sum|w*x| = %.3g", typ, worst[typ])
		}
	})
}

// TestDequantMatchesWeights checks every dequant kernel bit for bit against weights.DequantizeRow.
func TestDequantMatchesWeights(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		for _, typ := range allTypes {
			for _, cols := range []int{1, 9, 32, 256, 4096} {
				if cols%typ.BlockSize() != 0 {
					continue
				}
				w := randWeights(rng, typ, 1, cols)
				want := make([]float32, cols)
				if err := weights.DequantizeRow(typ, w, want); err != nil {
					t.Fatal(err)
				}
				got, check := guarded(t, cols)
				dequantFunc(typ)(got, w)
				check()
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%v cols=%d: dequant[%d] = %v, want %v", typ, cols, i, got[i], want[i])
					}
				}
			}
		}
	})
}

func TestTile4x3(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(9, 10))
		for _, k := range []int{1, 7, 8, 9, 64, 100, 576} {
			for _, add := range []bool{false, true} {
				ldx, ldw, ldo := k+3, k+5, 11
				x, w := randVec(rng, 4*ldx), randVec(rng, 3*ldw)
				out, check := guarded(t, 3*ldo+3)
				before := make([]float32, len(out))
				for tok := 0; tok < 4; tok++ {
					for r := 0; r < 3; r++ {
						out[tok*ldo+r] = float32(rng.NormFloat64())
						before[tok*ldo+r] = out[tok*ldo+r]
					}
				}
				tile4x3(out, ldo, x, ldx, w, ldw, k, add)
				check()
				for tok := 0; tok < 4; tok++ {
					for r := 0; r < 3; r++ {
						var want, mag float64
						if add {
							want, mag = float64(before[tok*ldo+r]), math.Abs(float64(before[tok*ldo+r]))
						}
						for i := 0; i < k; i++ {
							p := float64(x[tok*ldx+i]) * float64(w[r*ldw+i])
							want, mag = want+p, mag+math.Abs(p)
						}
						checkClose(t, fmt.Sprintf("tile k=%d add=%v [%d,%d]", k, add, tok, r), out[tok*ldo+r], want, mag)
					}
				}
				for i := 3; i < ldo; i++ { // between the rows of the tile: untouched
					if v := out[i]; math.Float32bits(v) != 0x7fc0beef {
						t.Fatalf("tile k=%d wrote out[%d] outside the tile", k, i)
					}
				}
			}
		}
	})
}

// TestMatmulRealModel runs matmul on tensors of the default model (Q4_1 and Q8_0 as stored) against the
// float64 reference.
func TestMatmulRealModel(t *testing.T) {
	path := testmodel.SmolLM2(t)
	set, err := weights.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for _, name := range []string{"blk.0.attn_q.weight", "blk.0.ffn_down.weight", "blk.29.ffn_gate.weight", "token_embd.weight"} {
		tn, ok := set.Tensors[name]
		if !ok {
			t.Fatalf("%s: no tensor %s", path, name)
		}
		rows, cols := tn.Rows(), tn.Cols()
		for _, n := range []int{1, 5} {
			x := randVec(rng, n*cols)
			want, mag := refMatmul(t, x, n, tn.Data, tn.Type, rows, cols)
			out := make([]float32, n*rows)
			matmul(out, x, n, tn.Data, tn.Type, rows, cols)
			worst := checkMatmulResult(t, fmt.Sprintf("%s (%v %dx%d) n=%d", name, tn.Type, rows, cols, n), out, want, mag)
			t.Logf("%s %v (%d, %d) n=%d: worst |diff|/sum|w*x| = %.3g", name, tn.Type, rows, cols, n, worst)
		}
	}
}

func TestCheckMatmul(t *testing.T) {
	w := make([]byte, 4*20) // 4 rows of 32 Q4_1 values
	cases := []struct {
		name       string
		out, x     int
		n          int
		w          []byte
		typ        weights.DType
		rows, cols int
		err        string // substring; "" means valid
	}{
		{"ok", 8, 64, 2, w, weights.Q4_1, 4, 32, ""},
		{"unknown type", 8, 64, 2, w, weights.DType(99), 4, 32, "not supported"},
		{"partial block", 8, 64, 2, w, weights.Q4_1, 4, 31, "whole number"},
		{"short weight", 8, 64, 2, w[:79], weights.Q4_1, 4, 32, "bytes"},
		{"short x", 8, 63, 2, w, weights.Q4_1, 4, 32, "x:"},
		{"short out", 7, 64, 2, w, weights.Q4_1, 4, 32, "out:"},
		{"negative n", 8, 64, -1, w, weights.Q4_1, 4, 32, "bad shape"},
	}
	for _, c := range cases {
		err := checkMatmul(make([]float32, c.out), make([]float32, c.x), c.n, c.w, c.typ, c.rows, c.cols)
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.err)
		}
	}
}

// TestMatmulConcurrent runs matmuls from several goroutines at once: the pool serves one, the others run
// inline on their callers, each with its own job and scratch.
func TestMatmulConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const rows, cols = 67, 576
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		typ := allTypes[g%len(allTypes)]
		n := []int{1, 64, 7, 3}[g]
		w, x := randWeights(rng, typ, rows, cols), randVec(rng, n*cols)
		want, mag := refMatmul(t, x, n, w, typ, rows, cols)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]float32, n*rows)
			for i := 0; i < 20; i++ {
				clear(out)
				matmul(out, x, n, w, typ, rows, cols)
				for k, v := range out {
					if d := math.Abs(float64(v) - want[k]); d > relTol*mag[k] {
						t.Errorf("goroutine %d (%v n=%d): out[%d] = %v, want %v", g, typ, n, k, v, want[k])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestMatmulNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, typ := range []weights.DType{weights.Q4_1, weights.Q4_K, weights.F16} {
		for _, n := range []int{1, 3, 64} {
			const rows, cols = 200, 512
			w, x := randWeights(rng, typ, rows, cols), randVec(rng, n*cols)
			out := make([]float32, n*rows)
			matmul(out, x, n, w, typ, rows, cols) // grow scratch
			if a := testing.AllocsPerRun(20, func() { matmul(out, x, n, w, typ, rows, cols) }); a != 0 {
				t.Errorf("%v n=%d: %v allocations per call, want 0", typ, n, a)
			}
		}
	}
}

func TestBlockSums(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(15, 16))
		for _, n := range []int{0, 32, 64, 576, 1536} {
			x := randVec(rng, n)
			got, want := make([]float32, n/32+1), make([]float32, n/32+1)
			got[n/32], want[n/32] = 42, 42 // past the last block: untouched
			blockSums(got[:n/32], x, 1)
			blockSumsGo(want[:n/32], x, 1)
			for i := range got {
				if math.Abs(float64(got[i]-want[i])) > 1e-5*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("n=%d: xs[%d] = %v, want %v", n, i, got[i], want[i])
				}
			}
		}
	})
}
