package llama_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
	"github.com/omnikv-triton/omnikv-triton/backend/internal/testmodel"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
)

// batchRun is one sequence of TestBatchedDecodeEqualsAlone: its prompt and what it produced.
type batchRun struct {
	prompt []int32
	ids    []int32     // greedy continuation
	logits [][]float32 // (steps, vocab)
	sel    [][]int32   // (filter layers) the selections after the last step
}

// TestBatchedDecodeEqualsAlone: sequences decoded together, with OmniKV on and a budget small enough that
// every filter layer selects, give each sequence the same tokens, logits (bit for bit: every op is
// batch-invariant) and selections as running it alone. The batch also carries a prompt chunk of a late
// sequence in some steps (a mixed step) and sequences that finish early.
func TestBatchedDecodeEqualsAlone(t *testing.T) {
	if !cpu.PacksWeights() {
		// The row-major path computes a lone token (n = 1) by fused row dots, batches by strips: the same
		// values up to float rounding, so a greedy token may flip at a near-tie.
		t.Skip("batch invariance from one token on holds on the packed path (AVX-512 VNNI); this CPU has none")
	}
	m, err := llama.Load(testmodel.SmolLM2(t), cpu.New(), llama.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cfg := omnikv.DefaultConfig(m.Layers)
	cfg.Budget = omnikv.Budget{Tokens: 24}
	if err := m.SetOmniKV(cfg); err != nil {
		t.Fatal(err)
	}
	var runs []*batchRun
	for i, n := range []int{150, 97, 231, 64, 120} {
		p := make([]int32, n)
		for j := range p {
			p[j] = int32(200 + (j*37+i*101)%4000)
		}
		runs = append(runs, &batchRun{prompt: p})
	}
	const steps = 20
	newPool := func() *kvcache.Pool {
		pool, err := kvcache.NewPool(m.Device(), kvcache.Config{Layers: m.Layers, KVDim: m.KVDim(), PageSize: 16,
			DType: compute.KVF16, Offload: m.OffloadLayers()})
		if err != nil {
			t.Fatal(err)
		}
		return pool
	}
	argmax := func(l []float32) int32 {
		best := 0
		for i, v := range l {
			if v > l[best] {
				best = i
			}
		}
		return int32(best)
	}
	selections := func(seq *llama.Sequence) [][]int32 {
		var out [][]int32
		for _, f := range cfg.FilterLayers {
			out = append(out, seq.Selected(f))
		}
		return out
	}

	// Alone: each sequence in its own pool, prompt then steps greedy decode steps. The prompts that the batch
	// feeds in chunks of 40 are fed in the same chunks: chunking changes the prefill's float rounding (its
	// attention tiles), batching does not.
	const chunk = 40
	var alone []*batchRun
	for i, r := range runs {
		pool := newPool()
		seq := llama.NewSequence(pool, len(r.prompt)+steps+1)
		st := m.MustState(len(r.prompt), 1)
		a := &batchRun{prompt: r.prompt}
		p := r.prompt
		if i >= 3 {
			for ; len(p) > chunk; p = p[chunk:] {
				if _, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: p[:chunk]}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		step := llama.Step{Seq: seq, Tokens: p}
		for len(a.ids) < steps {
			if _, err := m.Forward(st, []llama.Step{step}); err != nil {
				t.Fatal(err)
			}
			l := m.ReadLogits(st, nil)
			a.logits = append(a.logits, l)
			a.ids = append(a.ids, argmax(l))
			step = llama.Step{Seq: seq, Tokens: a.ids[len(a.ids)-1:], Decode: true, GenLimit: steps}
		}
		a.sel = selections(seq)
		alone = append(alone, a)
		seq.Release()
		st.Free(m)
		pool.Close()
	}

	// Together: the first three prompts, then they decode together; the fourth prompt arrives in chunks
	// while they decode; the fifth joins once the fourth decodes. Sequence 1 stops early.
	pool := newPool()
	defer pool.Close()
	st := m.MustState(512, len(runs))
	seqs := make([]*llama.Sequence, len(runs))
	fed := make([]int, len(runs)) // prompt tokens fed
	for i, r := range runs {
		seqs[i] = llama.NewSequence(pool, len(r.prompt)+steps+1)
		if i < 3 {
			if _, err := m.Forward(st, []llama.Step{{Seq: seqs[i], Tokens: r.prompt}}); err != nil {
				t.Fatal(err)
			}
			l := m.ReadLogits(st, nil)
			r.logits, r.ids, fed[i] = append(r.logits, l), append(r.ids, argmax(l)), len(r.prompt)
		}
	}
	stopEarly := map[int]int{1: 9}
	for round := 0; ; round++ {
		var batch []llama.Step
		var who []int
		for i, r := range runs {
			limit := steps
			if n, ok := stopEarly[i]; ok {
				limit = n
			}
			switch {
			case fed[i] == len(r.prompt) && len(r.ids) < limit:
				batch = append(batch, llama.Step{Seq: seqs[i], Tokens: r.ids[len(r.ids)-1:], Decode: true, GenLimit: steps})
				who = append(who, i)
			case fed[i] < len(r.prompt) && (i == 3 || (i == 4 && fed[3] == len(runs[3].prompt))):
				n := min(chunk, len(r.prompt)-fed[i]) // a prompt chunk in a decode step
				batch = append(batch, llama.Step{Seq: seqs[i], Tokens: r.prompt[fed[i] : fed[i]+n]})
				who = append(who, i)
			}
		}
		if len(batch) == 0 {
			break
		}
		if _, err := m.Forward(st, batch); err != nil {
			t.Fatal(err)
		}
		all := m.ReadLogits(st, nil)
		for k, i := range who {
			r := runs[i]
			if !batch[k].Decode {
				fed[i] += len(batch[k].Tokens)
				if fed[i] < len(r.prompt) {
					continue
				}
			}
			l := slices.Clone(all[k*m.Vocab : (k+1)*m.Vocab])
			r.logits, r.ids = append(r.logits, l), append(r.ids, argmax(l))
		}
	}
	for i, r := range runs {
		r.sel = selections(seqs[i])
		want := alone[i]
		n := len(r.ids)
		if !slices.Equal(r.ids, want.ids[:n]) {
			t.Fatalf("sequence %d: batched %v, alone %v", i, r.ids, want.ids[:n])
		}
		for s := 0; s < n; s++ {
			for j, v := range r.logits[s] {
				if math.Float32bits(v) != math.Float32bits(want.logits[s][j]) {
					t.Fatalf("sequence %d step %d: logit %d batched %v, alone %v", i, s, j, v, want.logits[s][j])
				}
			}
		}
		if n == steps {
			for f := range r.sel {
				if !slices.Equal(r.sel[f], want.sel[f]) {
					t.Fatalf("sequence %d filter layer %d: batched selection %v, alone %v", i, cfg.FilterLayers[f], r.sel[f], want.sel[f])
				}
			}
			if len(r.sel[0]) != cfg.Budget.Tokens {
				t.Fatalf("sequence %d selected %d tokens, want the budget %d", i, len(r.sel[0]), cfg.Budget.Tokens)
			}
		}
		t.Logf("sequence %d: %d tokens equal alone and batched: %s", i, n, fmt.Sprint(r.ids[:min(8, n)]))
		seqs[i].Release()
	}
}
