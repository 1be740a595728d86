package cpu

import (
	"fmt"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// BenchmarkAttention reports GFLOP/s (4·heads·headDim per visible (row, token) pair: Q·K and P·V) and GB/s
// (the K and V rows of the KV cache read once per call) of one Attend over seqs sequences. The machine may
// be shared, so the figures per CPU second (GFLOP/cpu-s, cpu-ms/op) are the steadier ones.
func BenchmarkAttention(b *testing.B) {
	for _, sh := range []struct {
		name               string
		length, rows, seqs int
	}{
		{"prefill256x2048", 2048, 256, 1},
		{"decode128", 128, 1, 1},
		{"decode128x16", 128, 1, 16}, // a decode batch: one call for 16 sequences
		{"decode2048", 2048, 1, 1},   // KV (1.5 MiB) stays in cache: the compute side of decode
		{"decode2048x8", 2048, 1, 8},
		{"decode8192", 8192, 1, 1},
		{"decode32768", 32768, 1, 1},
	} {
		d := New()
		lengths := make([]int, sh.seqs)
		for i := range lengths {
			lengths[i] = sh.length
		}
		f := newAttnFixture(d, lengths, sh.rows, compute.KVF16)
		var pairs float64
		for r := 0; r < sh.rows; r++ {
			pairs += float64(sh.length - sh.rows + r + 1)
		}
		flop := float64(sh.seqs) * pairs * 4 * benchHeads * benchHD
		bytes := float64(sh.seqs*sh.length) * benchKVHeads * benchHD * 2 * 2
		b.Run(sh.name, func(b *testing.B) {
			d.Attend(f.a) // warm the scratch
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				d.Attend(f.a)
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

// selectFixture returns SelectScores over n fp16 candidates with a window of w random queries.
func selectFixture(d *Device, n, w int) *compute.SelectScores {
	f := newAttnFixture(d, []int{n}, w, compute.KVF16)
	s, err := d.NewSelState(compute.SelSpec{Window: w, QDim: benchHeads * benchHD, KVHeads: benchKVHeads})
	if err != nil {
		panic(err)
	}
	d.Observe(&compute.Observe{Q: f.a.Q, Batch: f.a.Batch, States: []*compute.SelState{s}})
	d.BeginTurn(s, n, n, n)
	alpha := make([]float32, w)
	for i := range alpha {
		alpha[i] = 1
	}
	return &compute.SelectScores{Store: f.st, Batch: f.a.Batch, States: []*compute.SelState{s}, Alpha: alpha, Softmax: true,
		Heads: benchHeads, KVHeads: benchKVHeads, HeadDim: benchHD, Scale: f.a.Scale}
}

// BenchmarkSelectScores reports GFLOP/s (2·heads·headDim per (window row, candidate) for the logits) of
// OmniKV's scoring over 8192 fp16 candidates.
func BenchmarkSelectScores(b *testing.B) {
	const n = 8192
	for _, w := range []int{1, 8} {
		d := New()
		s := selectFixture(d, n, w)
		flop := float64(w) * n * 2 * benchHeads * benchHD
		b.Run(fmt.Sprintf("w%d", w), func(b *testing.B) {
			d.SelectScores(s)
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				d.SelectScores(s)
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
