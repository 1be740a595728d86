package computetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// Run runs the whole suite on dev.
func Run(t *testing.T, dev compute.Device) {
	t.Run("MatMul", func(t *testing.T) { testMatMul(t, dev) })
	t.Run("MatMulBatchInvariant", func(t *testing.T) { testMatMulBatchInvariant(t, dev) })
	t.Run("MatMuls", func(t *testing.T) { testMatMuls(t, dev) })
	t.Run("Embed", func(t *testing.T) { testEmbed(t, dev) })
	t.Run("RMSNorm", func(t *testing.T) { testRMSNorm(t, dev) })
	t.Run("RoPE", func(t *testing.T) { testRoPE(t, dev) })
	t.Run("SwiGLUAdd", func(t *testing.T) { testSwiGLUAdd(t, dev) })
	t.Run("CopyRows", func(t *testing.T) { testCopyRows(t, dev) })
	t.Run("Attention", func(t *testing.T) { testAttention(t, dev) })
	t.Run("AttentionBatch", func(t *testing.T) { testAttentionBatch(t, dev) })
	t.Run("HeadMax", func(t *testing.T) { testHeadMax(t, dev) })
	t.Run("SelectScores", func(t *testing.T) { testSelectScores(t, dev) })
	t.Run("Select", func(t *testing.T) { testSelect(t, dev) })
	t.Run("Gather", func(t *testing.T) { testGather(t, dev) })
	t.Run("GatherMany", func(t *testing.T) { testGatherMany(t, dev) })
	t.Run("DiscardKVPages", func(t *testing.T) { testDiscardKVPages(t, dev) })
	t.Run("Free", func(t *testing.T) { testFree(t, dev) })
	if err := dev.Sync(); err != nil {
		t.Fatalf("device error after the suite: %v", err)
	}
}

// tensor allocates a float32 tensor, failing the test on error.
func tensor(t testing.TB, dev compute.Device, rows, cols int) *compute.Tensor {
	t.Helper()
	x, err := dev.NewTensor(compute.F32, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// upload allocates a (rows, cols) tensor holding data (rows*cols values).
func upload(t testing.TB, dev compute.Device, rows, cols int, data []float32) *compute.Tensor {
	t.Helper()
	x := tensor(t, dev, rows, cols)
	dev.Write(x, 0, data[:rows*cols])
	return x
}

// read returns the first rows rows of x.
func read(dev compute.Device, x *compute.Tensor, rows int) []float32 {
	out := make([]float32, rows*x.Cols)
	dev.Read(out, x)
	return out
}

func randVec(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return v
}

// weight builds a (rows, cols) weight of type typ from random values; it returns the weight and the exact
// values it holds after quantization.
func weight(t *testing.T, dev compute.Device, r *rand.Rand, typ weights.DType, rows, cols int) (*compute.Weight, []float32) {
	t.Helper()
	rb, err := typ.RowBytes(cols)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, rows*rb)
	vals := make([]float32, rows*cols)
	for i := 0; i < rows; i++ {
		src := randVec(r, cols, 0.5)
		row := data[i*rb : (i+1)*rb]
		if typ == weights.Q4_K || typ == weights.Q6_K {
			for j := range row { // no quantizer for k-quants: random bytes are valid blocks
				row[j] = byte(r.UintN(256))
			}
			for b := 0; b < cols/256; b++ { // keep the f16 scales finite and small
				blk := row[b*typ.TypeSize() : (b+1)*typ.TypeSize()]
				d := weights.F32ToF16(float32(r.Float64() * 0.01))
				if typ == weights.Q4_K {
					blk[0], blk[1] = byte(d), byte(d>>8)
					blk[2], blk[3] = byte(d), byte(d>>8)
				} else {
					blk[208], blk[209] = byte(d), byte(d>>8)
				}
			}
		} else if err := weights.QuantizeRow(typ, src, row); err != nil {
			t.Fatal(err)
		}
		if err := weights.DequantizeRow(typ, row, vals[i*cols:(i+1)*cols]); err != nil {
			t.Fatal(err)
		}
	}
	shape := []int{rows, cols}
	w, err := dev.Bind(&weights.Tensor{Name: fmt.Sprintf("w_%v_%dx%d", typ, rows, cols), Type: typ, Shape: shape, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return w, vals
}

// closeTo fails when got and want differ by more than tol relative to the largest |want|.
func closeTo(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	scale := 1e-30
	for _, v := range want {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); !(d <= tol*scale) {
			t.Fatalf("%s: element %d = %g, want %g (relative error %.2e > %.0e)", what, i, got[i], want[i], d/scale, tol)
		}
	}
}

func testMatMul(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(1, 2))
	types := []weights.DType{weights.F32, weights.F16, weights.BF16, weights.Q8_0, weights.Q4_0, weights.Q4_1, weights.Q4_K, weights.Q6_K}
	for _, typ := range types {
		for _, sz := range []struct{ rows, cols, n int }{{1, 256, 1}, {7, 256, 3}, {33, 512, 1}, {64, 768, 5}, {130, 256, 17}} {
			t.Run(fmt.Sprintf("%v/%dx%dx%d", typ, sz.n, sz.rows, sz.cols), func(t *testing.T) {
				w, vals := weight(t, dev, r, typ, sz.rows, sz.cols)
				x := randVec(r, sz.n*sz.cols, 1)
				// The error bound of a float32 dot product scales with Σ|x·w|, not with the result (which may
				// cancel to near zero).
				want := make([]float64, sz.n*sz.rows)
				mag := make([]float64, sz.n*sz.rows)
				for i := 0; i < sz.n; i++ {
					for j := 0; j < sz.rows; j++ {
						var s, a float64
						for k := 0; k < sz.cols; k++ {
							p := float64(x[i*sz.cols+k]) * float64(vals[j*sz.cols+k])
							s += p
							a += math.Abs(p)
						}
						want[i*sz.rows+j], mag[i*sz.rows+j] = s, a
					}
				}
				xt := upload(t, dev, sz.n+1, sz.cols, append(x, make([]float32, sz.cols)...))
				out := tensor(t, dev, sz.n+1, sz.rows)
				dev.MatMul(out, xt, w, sz.n)
				got := read(dev, out, sz.n)
				for i, w := range want {
					if d := math.Abs(float64(got[i]) - w); !(d <= 1e-5*mag[i]) {
						t.Fatalf("element %d (token %d, row %d) = %g, want %g: error %.2e > 1e-5 x Σ|x·w| = %.2e",
							i, i/sz.rows, i%sz.rows, got[i], w, d, 1e-5*mag[i])
					}
				}
			})
		}
	}
}

// testMatMuls runs weights that share one input (same or mixed types, row counts the CPU device packs and
// ones it does not), for decode and prefill token counts, against the float64 reference.
func testMatMuls(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(21, 22))
	const cols = 256
	for _, set := range [][]struct {
		typ  weights.DType
		rows int
	}{
		{{weights.Q4_1, 64}, {weights.Q4_1, 16}, {weights.Q4_1, 16}},
		{{weights.Q4_1, 96}, {weights.Q8_0, 32}},
		{{weights.Q8_0, 48}, {weights.Q4_1, 33}},
		{{weights.F16, 8}, {weights.Q4_1, 16}},
	} {
		for _, n := range []int{1, 2, 3, 9} {
			name := fmt.Sprintf("n=%d", n)
			ws := make([]*compute.Weight, len(set))
			vals := make([][]float32, len(set))
			outs := make([]*compute.Tensor, len(set))
			for i, s := range set {
				ws[i], vals[i] = weight(t, dev, r, s.typ, s.rows, cols)
				outs[i] = tensor(t, dev, n+1, s.rows)
				name += fmt.Sprintf("/%v:%d", s.typ, s.rows)
			}
			t.Run(name, func(t *testing.T) {
				x := randVec(r, n*cols, 1)
				dev.MatMuls(outs, upload(t, dev, n, cols, x), ws, n)
				for i, s := range set {
					all := read(dev, outs[i], n)
					for tk := 0; tk < n; tk++ {
						got := all[tk*s.rows : (tk+1)*s.rows]
						for j := range got {
							var want, mag float64
							for k := 0; k < cols; k++ {
								p := float64(x[tk*cols+k]) * float64(vals[i][j*cols+k])
								want, mag = want+p, mag+math.Abs(p)
							}
							if d := math.Abs(float64(got[j]) - want); !(d <= 1e-5*mag) {
								t.Fatalf("weight %d, token %d, row %d = %g, want %g: error %.2e > 1e-5 x Σ|x·w| = %.2e", i, tk, j, got[j], want, d, 1e-5*mag)
							}
						}
					}
				}
			})
		}
	}
}

func testEmbed(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, typ := range []weights.DType{weights.F32, weights.F16, weights.Q8_0, weights.Q4_1} {
		w, vals := weight(t, dev, r, typ, 10, 64)
		ids := []int32{9, 0, 3, 3}
		out := tensor(t, dev, len(ids), 64)
		dev.Embed(out, w, ids)
		all := read(dev, out, len(ids))
		for i, id := range ids {
			row := all[i*64 : (i+1)*64]
			closeTo(t, fmt.Sprintf("embed %v row %d", typ, id), row, vals[int(id)*64:int(id+1)*64], 0)
		}
	}
}

func vecWeight(t *testing.T, dev compute.Device, v []float32) *compute.Weight {
	t.Helper()
	data := make([]byte, 4*len(v))
	for i, f := range v {
		b := math.Float32bits(f)
		data[4*i], data[4*i+1], data[4*i+2], data[4*i+3] = byte(b), byte(b>>8), byte(b>>16), byte(b>>24)
	}
	w, err := dev.Bind(&weights.Tensor{Name: "vec", Type: weights.F32, Shape: []int{len(v)}, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func testRMSNorm(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(5, 6))
	const n, cols = 3, 96
	x, g := randVec(r, n*cols, 2), randVec(r, cols, 1)
	out := tensor(t, dev, n, cols)
	dev.RMSNorm(out, upload(t, dev, n, cols, x), vecWeight(t, dev, g), 1e-5, n)
	all := read(dev, out, n)
	for i := 0; i < n; i++ {
		var ss float64
		for _, v := range x[i*cols : (i+1)*cols] {
			ss += float64(v) * float64(v)
		}
		inv := 1 / math.Sqrt(ss/cols+1e-5)
		want := make([]float32, cols)
		for j := range want {
			want[j] = float32(float64(x[i*cols+j]) * inv * float64(g[j]))
		}
		closeTo(t, "rmsnorm", all[i*cols:(i+1)*cols], want, 1e-6)
	}
}

func testRoPE(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(7, 8))
	const heads, hd, positions = 3, 8, 16
	half := hd / 2
	table := make([]float32, positions*hd)
	for p := 0; p < positions; p++ {
		for i := 0; i < half; i++ {
			a := float64(p) * math.Pow(10000, -2*float64(i)/hd)
			table[p*hd+i], table[p*hd+half+i] = float32(math.Cos(a)), float32(math.Sin(a))
		}
	}
	for _, inter := range []bool{false, true} {
		x := randVec(r, 2*heads*hd, 1)
		pos := []int32{5, 13}
		xt := upload(t, dev, 2, heads*hd, x)
		rope := &compute.RoPE{Heads: heads, HeadDim: hd, Table: upload(t, dev, positions, hd, table), Interleaved: inter}
		dev.ApplyRoPE(xt, rope, pos, 2)
		all := read(dev, xt, 2)
		for i, p := range pos {
			want := make([]float32, heads*hd)
			for h := 0; h < heads; h++ {
				for j := 0; j < half; j++ {
					a := float64(p) * math.Pow(10000, -2*float64(j)/hd)
					i0, i1 := h*hd+j, h*hd+j+half
					if inter {
						i0, i1 = h*hd+2*j, h*hd+2*j+1
					}
					x0, x1 := float64(x[i*heads*hd+i0]), float64(x[i*heads*hd+i1])
					want[i0] = float32(x0*math.Cos(a) - x1*math.Sin(a))
					want[i1] = float32(x1*math.Cos(a) + x0*math.Sin(a))
				}
			}
			closeTo(t, fmt.Sprintf("rope interleaved=%v", inter), all[i*heads*hd:(i+1)*heads*hd], want, 1e-6)
		}
	}
}

func testSwiGLUAdd(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(9, 10))
	g, u := randVec(r, 40, 3), randVec(r, 40, 1)
	gt, ut := upload(t, dev, 2, 20, g), upload(t, dev, 2, 20, u)
	dev.SwiGLU(gt, ut, 2)
	dev.Add(gt, ut, 2)
	want := make([]float32, 40)
	for i := range want {
		want[i] = float32(float64(g[i])/(1+math.Exp(-float64(g[i])))*float64(u[i]) + float64(u[i]))
	}
	closeTo(t, "swiglu+add", read(dev, gt, 2), want, 1e-6)
}

func testCopyRows(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(31, 32))
	x := randVec(r, 5*7, 1)
	dst := tensor(t, dev, 4, 7)
	dev.CopyRows(dst, upload(t, dev, 5, 7, x), []int32{4, 0, 4, 2})
	got := read(dev, dst, 4)
	for i, src := range []int{4, 0, 4, 2} {
		closeTo(t, fmt.Sprintf("copy rows: row %d", i), got[i*7:(i+1)*7], x[src*7:(src+1)*7], 0)
	}
}

// testMatMulBatchInvariant checks that a token's output does not depend on the tokens it is batched with:
// bit for bit, each token in a batch of two (beside a fixed companion) and all of them in batches of 3 to
// 33, for the types and shapes a decode batch uses. (A serving engine whose outputs change with the batch
// gives a request different answers under load.) A device may compute a lone token (n = 1, a single
// sequence's decode step) by a faster kernel of other rounding; the CPU device's own tests say where it
// does not.
func testMatMulBatchInvariant(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, typ := range []weights.DType{weights.Q4_1, weights.Q8_0, weights.Q4_0, weights.F16, weights.F32} {
		for _, sz := range []struct{ rows, cols int }{{64, 256}, {48, 576}} {
			w, _ := weight(t, dev, r, typ, sz.rows, sz.cols)
			const most = 33
			x := randVec(r, most*sz.cols, 1)
			alone := make([]float32, most*sz.rows)
			pair := tensor(t, dev, 2, sz.rows)
			companion := randVec(r, sz.cols, 1)
			for i := 0; i < most; i++ {
				dev.MatMul(pair, upload(t, dev, 2, sz.cols, append(slices.Clone(x[i*sz.cols:(i+1)*sz.cols]), companion...)), w, 2)
				copy(alone[i*sz.rows:], read(dev, pair, 1))
			}
			xt := upload(t, dev, most, sz.cols, x)
			out := tensor(t, dev, most, sz.rows)
			for _, n := range []int{3, 4, 5, 7, 8, 9, 16, 17, 32, 33} {
				dev.MatMul(out, xt, w, n)
				got := read(dev, out, n)
				for i, v := range got {
					if math.Float32bits(v) != math.Float32bits(alone[i]) {
						t.Fatalf("%v %dx%d: batch of %d, token %d, row %d = %v, in a pair %v", typ, sz.rows, sz.cols, n, i/sz.rows, i%sz.rows, v, alone[i])
					}
				}
			}
		}
	}
}
