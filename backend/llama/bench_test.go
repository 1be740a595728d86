package llama_test

import (
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
	"github.com/omnikv-triton/omnikv-triton/backend/internal/testmodel"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
)

// BenchmarkDecodeStep times one decode step of SmolLM2 after a 128-token prompt and reports allocations:
// a decode step must allocate nothing.
func BenchmarkDecodeStep(b *testing.B) {
	const prompt = 128
	m, seq := smolWithSequence(b, prompt+b.N+5)
	st := m.MustState(prompt, 1)
	ids := make([]int32, prompt)
	for i := range ids {
		ids[i] = int32(100 + i)
	}
	if _, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: ids}}); err != nil {
		b.Fatal(err)
	}
	steps := []llama.Step{{Seq: seq, Tokens: []int32{42}}}
	for i := 0; i < 4; i++ { // warm up: per-worker scratch and pools reach their steady size
		if _, err := m.Forward(st, steps); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Forward(st, steps); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/token")
}

func TestDecodeStepAllocatesNothing(t *testing.T) {
	m, seq := smolWithSequence(t, 200)
	st := m.MustState(16, 1)
	steps := []llama.Step{{Seq: seq, Tokens: []int32{42}}}
	if _, err := m.Forward(st, steps); err != nil { // warm the pools
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := m.Forward(st, steps); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a decode step allocates %.1f times", allocs)
	}
}

// smolWithSequence loads SmolLM2 on the CPU device (closed when tb ends) and returns it with a sequence of
// an fp16 KV cache that has room for tokens positions reserved.
func smolWithSequence(tb testing.TB, tokens int) (*llama.Model, *llama.Sequence) {
	tb.Helper()
	m, err := llama.Load(testmodel.SmolLM2(tb), cpu.New(), llama.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	pool, err := kvcache.NewPool(m.Device(), kvcache.Config{Layers: m.Layers, KVDim: m.KVDim(), PageSize: 64, DType: compute.KVF16})
	if err != nil {
		tb.Fatal(err)
	}
	seq := llama.NewSequence(pool, tokens)
	if err := seq.Reserve(tokens); err != nil {
		tb.Fatal(err)
	}
	return m, seq
}
