package cpu

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// Benchmarks. Weight GB/s counts the weight bytes read per call (once per call on both paths); GFLOP/s
// counts 2*n*rows*cols. The 576x1536 weights fit in L2/L3, the 49152x576 ones (17-113 MB) stream from
// memory. The pool sizes itself at first use, so vary the worker count with GOMAXPROCS, not -cpu.
// GFLOP/cpu-s divides by the process's CPU time instead of wall time: steadier on a shared machine, and
// with GOMAXPROCS=1 the single-core speed of the kernels.

func benchMatmul(b *testing.B, typ weights.DType, rows, cols, n int) {
	rng := rand.New(rand.NewPCG(1, uint64(rows)))
	w, x := randWeights(rng, typ, rows, cols), randVec(rng, n*cols)
	out := make([]float32, n*rows)
	matmul(out, x, n, w, typ, rows, cols)
	b.SetBytes(int64(len(w)))
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		matmul(out, x, n, w, typ, rows, cols)
	}
	c1 := cpuTime()
	sec := b.Elapsed().Seconds() / float64(b.N)
	flops := 2 * float64(n*rows*cols)
	b.ReportMetric(float64(len(w))/sec/1e9, "GB/s")
	b.ReportMetric(flops/sec/1e9, "GFLOP/s")
	if c1 > c0 {
		b.ReportMetric(flops*float64(b.N)/(c1-c0).Seconds()/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkMatvec is the decode case (n = 1). The K-quants, whose rows are whole 256-value super-blocks,
// run 49152x512 in place of 49152x576.
func BenchmarkMatvec(b *testing.B) {
	for _, sh := range [][2]int{{576, 1536}, {49152, 576}} {
		for _, typ := range allTypes {
			rows, cols := sh[0], sh[1]/typ.BlockSize()*typ.BlockSize()
			b.Run(fmt.Sprintf("%dx%d/%v", rows, cols, typ), func(b *testing.B) { benchMatmul(b, typ, rows, cols, 1) })
		}
	}
}

// BenchmarkMatvecPacked is BenchmarkMatvec for the packed layout Bind uses with AVX-512 (Q4_1, Q8_0).
func BenchmarkMatvecPacked(b *testing.B) {
	for _, sh := range [][2]int{{576, 1536}, {49152, 576}} {
		for _, typ := range packedTypes {
			b.Run(fmt.Sprintf("%dx%d/%v", sh[0], sh[1], typ), func(b *testing.B) { benchPacked(b, typ, sh[0], sh[1], 1) })
		}
	}
}

// BenchmarkPrefillPacked is BenchmarkPrefill for the packed layout.
func BenchmarkPrefillPacked(b *testing.B) {
	for _, n := range []int{16, 128} {
		for _, sh := range [][2]int{{1536, 576}, {576, 1536}} {
			for _, typ := range packedTypes {
				b.Run(fmt.Sprintf("n=%d/%dx%d/%v", n, sh[0], sh[1], typ), func(b *testing.B) { benchPacked(b, typ, sh[0], sh[1], n) })
			}
		}
	}
}

func benchPacked(b *testing.B, typ weights.DType, rows, cols, n int) {
	rng := rand.New(rand.NewPCG(1, uint64(rows)))
	p, err := packWeight(randWeights(rng, typ, rows, cols), typ, rows, cols)
	if err != nil {
		b.Fatal(err)
	}
	x, out := randVec(rng, n*cols), make([]float32, n*rows)
	matmulPacked(out, x, n, p)
	b.SetBytes(int64(len(p.data)))
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		matmulPacked(out, x, n, p)
	}
	c1 := cpuTime()
	sec := b.Elapsed().Seconds() / float64(b.N)
	flops := 2 * float64(n*rows*cols)
	b.ReportMetric(float64(len(p.data))/sec/1e9, "GB/s")
	b.ReportMetric(flops/sec/1e9, "GFLOP/s")
	if c1 > c0 {
		b.ReportMetric(flops*float64(b.N)/(c1-c0).Seconds()/1e9, "GFLOP/cpu-s")
	}
}

func BenchmarkPrefill(b *testing.B) {
	for _, n := range []int{4, 16, 128, 512} {
		for _, sh := range [][2]int{{1536, 576}, {576, 1536}, {384, 4096}} {
			for _, typ := range allTypes {
				if sh[1]%typ.BlockSize() != 0 {
					continue
				}
				b.Run(fmt.Sprintf("n=%d/%dx%d/%v", n, sh[0], sh[1], typ), func(b *testing.B) { benchMatmul(b, typ, sh[0], sh[1], n) })
			}
		}
	}
}

// BenchmarkSmallBatch compares the decode path (each row read once, fused dequant-dot per token) with the
// prefill path around the switch-over token count, to tune prefillMinTokens.
func BenchmarkSmallBatch(b *testing.B) {
	for _, n := range []int{1, 2, 3, 4, 6, 8} {
		for _, typ := range []weights.DType{weights.Q4_1, weights.Q8_0, weights.F16} {
			b.Run(fmt.Sprintf("n=%d/%v", n, typ), func(b *testing.B) { benchMatmul(b, typ, 1536, 576, n) })
		}
	}
}

// BenchmarkReadBandwidth streams a 256 MB []float32 through the assembly dot product with 1 and 2
// goroutines: the machine's read bandwidth, the bound for matvec over weights that do not fit in cache.
func BenchmarkReadBandwidth(b *testing.B) {
	a := make([]float32, 64<<20)
	for i := range a {
		a[i] = 1
	}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			b.SetBytes(int64(4 * len(a)))
			var sink [2]float32
			for i := 0; i < b.N; i++ {
				var wg sync.WaitGroup
				part := len(a) / threads
				for t := 0; t < threads; t++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						s := a[t*part : (t+1)*part]
						sink[t%2] += dotF32(s, s)
					}()
				}
				wg.Wait()
			}
			b.ReportMetric(float64(4*len(a))/(b.Elapsed().Seconds()/float64(b.N))/1e9, "GB/s")
			if sink[0] == 0 {
				b.Fatal("no work done")
			}
		})
	}
}

// BenchmarkRowDot times the decode kernels alone on one goroutine over 64 rows of 576 values that stay
// in L2: the compute speed of the fused dequantize-and-dot, without memory or pool effects.
func BenchmarkRowDot(b *testing.B) {
	for _, typ := range allTypes {
		cols := 576 / typ.BlockSize() * typ.BlockSize()
		if cols == 0 {
			cols = 512
		}
		if typ.BlockSize() == 256 {
			cols = 512
		}
		b.Run(typ.String(), func(b *testing.B) {
			const rows = 64
			rng := rand.New(rand.NewPCG(2, 3))
			w, x := randWeights(rng, typ, rows, cols), randVec(rng, cols)
			rb, _ := typ.RowBytes(cols)
			dot := rowDotFunc(typ)
			var sink float32
			c0 := cpuTime()
			for i := 0; i < b.N; i++ {
				for r := 0; r < rows; r++ {
					sink += dot(w[r*rb:(r+1)*rb], x)
				}
			}
			if c1 := cpuTime(); c1 > c0 {
				b.ReportMetric(2*float64(rows*cols)*float64(b.N)/(c1-c0).Seconds()/1e9, "GFLOP/cpu-s")
			}
			if sink == 0 {
				b.Fatal("no work done")
			}
		})
	}
}

// modelMat is one weight matrix of a SmolLM2-135M-shaped model, packed where this CPU packs.
type modelMat struct {
	typ        weights.DType
	rows, cols int
	w          []byte
	p          *packedWeight
}

// smolMats returns the matrices of one token's step of a SmolLM2-135M-shaped model: 30 layers of q, k, v,
// o, gate, up, down in Q4_1, then the 49152-row Q8_0 head (~96 MB), and their size in bytes.
func smolMats(b *testing.B) ([]modelMat, int64) {
	const d, ff, kv, layers = 576, 1536, 192, 30
	rng := rand.New(rand.NewPCG(3, 4))
	var mats []modelMat
	for l := 0; l < layers; l++ {
		for _, sh := range [][2]int{{d, d}, {kv, d}, {kv, d}, {d, d}, {ff, d}, {ff, d}, {d, ff}} {
			mats = append(mats, modelMat{typ: weights.Q4_1, rows: sh[0], cols: sh[1]})
		}
	}
	mats = append(mats, modelMat{typ: weights.Q8_0, rows: 49152, cols: d})
	var bytes int64
	for i := range mats {
		m := &mats[i]
		m.w = randWeights(rng, m.typ, m.rows, m.cols)
		bytes += int64(len(m.w))
		if packKernels() {
			p, err := packWeight(m.w, m.typ, m.rows, m.cols)
			if err != nil {
				b.Fatal(err)
			}
			m.p, m.w = p, nil
		}
	}
	return mats, bytes
}

// stepMats runs the matrices for n tokens of x into out.
func stepMats(mats []modelMat, out, x []float32, n int) {
	for _, m := range mats {
		if m.p != nil {
			matmulPacked(out[:n*m.rows], x[:n*m.cols], n, m.p)
		} else {
			matmul(out[:n*m.rows], x[:n*m.cols], n, m.w, m.typ, m.rows, m.cols)
		}
	}
}

// BenchmarkMatvecModel runs the decode matvecs of one token of a SmolLM2-135M-shaped model in order (30
// layers of q, k, v, o, gate, up, down in Q4_1, then the 49152-row Q8_0 head), packed where this CPU packs:
// ~96 MB of weights that stream from memory as in a real decode step, including the gaps between calls.
// Weight GB/s against BenchmarkReadBandwidth is the decode kernels' share of the bound.
func BenchmarkMatvecModel(b *testing.B) {
	mats, bytes := smolMats(b)
	rng := rand.New(rand.NewPCG(5, 6))
	x, out := randVec(rng, 1536), make([]float32, 49152)
	stepMats(mats, out, x, 1)
	b.SetBytes(bytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		stepMats(mats, out, x, 1)
	}
	b.ReportMetric(float64(bytes)/(b.Elapsed().Seconds()/float64(b.N))/1e9, "GB/s")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*1e3, "ms/step")
}

// BenchmarkBatchModel is BenchmarkMatvecModel for a decode batch of n tokens: the matmuls of one step of a
// SmolLM2-135M-shaped model (weights only: no attention), with ms per step and tokens per second.
func BenchmarkBatchModel(b *testing.B) {
	mats, _ := smolMats(b)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			x, out := randVec(rng, n*1536), make([]float32, n*49152)
			stepMats(mats, out, x, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				stepMats(mats, out, x, n)
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec*1e3, "ms/step")
			b.ReportMetric(float64(n)/sec, "tok/s")
		})
	}
}
