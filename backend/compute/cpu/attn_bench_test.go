package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// SmolLM2-135M attention shapes: 9 query heads, 3 KV heads of 64, fp16 KV in pages of 64 tokens.
const (
	benchHeads, benchKVHeads, benchHD, benchPage = 9, 3, 64, 64
)

// attnCase builds one sequence's attention: rows query rows at the end of length cached tokens.
func attnCase(d *Device, length, rows int, dt compute.KVDType) *compute.Attention {
	r := rand.New(rand.NewPCG(uint64(length), uint64(rows)))
	kvDim, qDim := benchKVHeads*benchHD, benchHeads*benchHD
	pages := make([]*compute.KVPage, (length+benchPage-1)/benchPage)
	for i := range pages {
		pages[i] = d.NewKVPage(benchPage, kvDim, dt)
	}
	const chunk = 1024
	k, v := d.NewTensor(chunk, kvDim), d.NewTensor(chunk, kvDim)
	for start := 0; start < length; start += chunk {
		for i := range k.F32 {
			k.F32[i], v.F32[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
		}
		d.WriteKV(pages, benchPage, start, k, v, 0, min(chunk, length-start))
	}
	q := d.NewTensor(rows, qDim)
	for i := range q.F32 {
		q.F32[i] = float32(r.NormFloat64())
	}
	return &compute.Attention{
		Q: q, Out: d.NewTensor(rows, qDim), Rows: rows, Pos0: length - rows, Heads: benchHeads, KVHeads: benchKVHeads,
		HeadDim: benchHD, Scale: float32(1 / math.Sqrt(benchHD)), Pages: pages, Page: benchPage, Len: length,
	}
}

// BenchmarkAttention reports GFLOP/s (4·heads·headDim per visible (row, token) pair: Q·K and P·V) and GB/s
// (the K and V rows of the KV cache read once per call) for the blocked kernel ("blocked") and the loop it
// replaced ("baseline"), measured in the same run. The machine is shared, so the figures per CPU second
// (GFLOP/cpu-s, cpu-ms/op) are the steadier ones; the wall-clock ones depend on the other load.
func BenchmarkAttention(b *testing.B) {
	for _, sh := range []struct {
		name         string
		length, rows int
	}{
		{"prefill256x2048", 2048, 256},
		{"decode128", 128, 1},
		{"decode2048", 2048, 1}, // KV (1.5 MiB) stays in cache: the compute side of decode
		{"decode8192", 8192, 1},
		{"decode32768", 32768, 1},
	} {
		d := New()
		a := attnCase(d, sh.length, sh.rows, compute.KVF16)
		var pairs float64
		for r := 0; r < a.Rows; r++ {
			pairs += float64(a.Pos0 + r + 1)
		}
		flop := pairs * 4 * benchHeads * benchHD
		bytes := float64(sh.length) * benchKVHeads * benchHD * 2 * 2
		for _, impl := range []struct {
			name string
			dev  compute.Device
		}{{"blocked", d}, {"baseline", newBaselineDev(d)}} {
			b.Run(fmt.Sprintf("%s/%s", sh.name, impl.name), func(b *testing.B) {
				impl.dev.Attend(a) // warm the scratch
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := cpuTime()
				for b.Loop() {
					impl.dev.Attend(a)
				}
				cpuSec := (cpuTime() - cpu0).Seconds() / float64(b.N)
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(flop/sec/1e9, "GFLOP/s")
				b.ReportMetric(bytes/sec/1e9, "GB/s")
				if cpuSec > 0 {
					b.ReportMetric(flop/cpuSec/1e9, "GFLOP/cpu-s")
					b.ReportMetric(cpuSec*1e3, "cpu-ms/op")
				}
			})
		}
	}
}

// BenchmarkSelectScores reports GFLOP/s (2·heads·headDim per (window row, candidate) for the logits) of
// OmniKV's scoring over 8192 fp16 candidates, for the blocked SelectScores and the one it replaced.
func BenchmarkSelectScores(b *testing.B) {
	const n = 8192
	d := New()
	a := attnCase(d, n, 16, compute.KVF16)
	alpha := make([]float32, 16)
	for i := range alpha {
		alpha[i] = 1
	}
	for _, w := range []int{1, 8} {
		s := &compute.SelectScores{Q: a.Q, Rows: w, Alpha: alpha[:w], Softmax: true, Heads: benchHeads,
			KVHeads: benchKVHeads, HeadDim: benchHD, Scale: a.Scale, Pages: a.Pages, Page: benchPage, N: n,
			Out: make([]float32, n)}
		flop := float64(w) * n * 2 * benchHeads * benchHD
		base := &baselineSelect{}
		for _, impl := range []struct {
			name string
			f    func(*compute.SelectScores)
		}{{"blocked", d.SelectScores}, {"baseline", base.selectScores}} {
			b.Run(fmt.Sprintf("w%d/%s", w, impl.name), func(b *testing.B) {
				impl.f(s)
				b.ResetTimer()
				cpu0 := cpuTime()
				for b.Loop() {
					impl.f(s)
				}
				cpuSec := (cpuTime() - cpu0).Seconds() / float64(b.N)
				b.ReportMetric(flop/(b.Elapsed().Seconds()/float64(b.N))/1e9, "GFLOP/s")
				if cpuSec > 0 {
					b.ReportMetric(flop/cpuSec/1e9, "GFLOP/cpu-s")
					b.ReportMetric(cpuSec*1e3, "cpu-ms/op")
				}
			})
		}
	}
}
