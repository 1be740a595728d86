package llama_test

import (
	"math"
	"slices"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
)

// decodeLogits runs a prompt then n greedy decode steps and returns the logits of every step (the prompt's
// last position first). Greedy tokens come from want when given (so that two runs feed the same tokens).
func decodeLogits(t *testing.T, m *llama.Model, prompt []int32, n int, feed []int32) ([][]float32, []int32, *llama.Sequence) {
	t.Helper()
	pool, err := kvcache.NewPool(m.Device(), kvcache.Config{Layers: m.Layers, KVDim: m.KVDim(), PageSize: 16,
		DType: compute.KVF32, Offload: m.OffloadLayers()})
	if err != nil {
		t.Fatal(err)
	}
	seq := llama.NewSequence(pool, len(prompt)+n+1)
	st := m.MustState(len(prompt), 1)
	var out [][]float32
	var toks []int32
	step := llama.Step{Seq: seq, Tokens: prompt}
	for len(out) <= n {
		if _, err := m.Forward(st, []llama.Step{step}); err != nil {
			t.Fatal(err)
		}
		l := make([]float32, m.Vocab)
		l = m.ReadLogits(st, l)
		out = append(out, l)
		next := int32(0)
		for i, v := range l {
			if v > l[next] {
				next = int32(i)
			}
		}
		if feed != nil {
			next = feed[len(toks)]
		}
		toks = append(toks, next)
		step = llama.Step{Seq: seq, Tokens: []int32{next}, Decode: true}
	}
	return out, toks, seq
}

func maxRelDiff(a, b []float32) float64 {
	scale, worst := 0.0, 0.0
	for _, v := range b {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	for i := range a {
		worst = math.Max(worst, math.Abs(float64(a[i])-float64(b[i])))
	}
	return worst / scale
}

func loadTiny(t *testing.T) *llama.Model {
	t.Helper()
	dir, _ := tinyDir(t)
	m, err := llama.Load(dir, cpu.New(), llama.Options{MaxContext: 512})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestOmniKVDenseUntilBudget: with DenseUntilBudget, a turn whose context fits the budget decodes on the
// dense path (the same logits bit for bit, nothing selected or fetched); past the budget it selects.
func TestOmniKVDenseUntilBudget(t *testing.T) {
	prompt := make([]int32, 150)
	for i := range prompt {
		prompt[i] = int32((i*37 + 11) % 500)
	}
	dense := loadTiny(t)
	want, toks, _ := decodeLogits(t, dense, prompt, 12, nil)
	for _, budget := range []int{150, 100} {
		m := loadTiny(t)
		cfg := omnikv.Config{Enabled: true, FilterLayers: []int{1}, Selector: omnikv.Last, Budget: omnikv.Budget{Tokens: budget}, DenseUntilBudget: true}
		if err := m.SetOmniKV(cfg); err != nil {
			t.Fatal(err)
		}
		got, _, seq := decodeLogits(t, m, prompt, 12, toks)
		st := seq.Selection()
		same := true
		for i := range want {
			same = same && slices.Equal(got[i], want[i])
		}
		switch {
		case budget >= len(prompt) && (!same || st.Steps != 0 || st.RowsFetched != 0):
			t.Fatalf("budget %d covers the context: same logits %v, stats %+v; want dense", budget, same, st)
		case budget < len(prompt) && (st.Steps != 12 || st.Selected != budget):
			t.Fatalf("budget %d: stats %+v; want 12 selecting steps of %d tokens", budget, st, budget)
		}
	}
}

func TestOmniKVFullBudgetEqualsDense(t *testing.T) {
	prompt := make([]int32, 150)
	for i := range prompt {
		prompt[i] = int32((i*37 + 11) % 500)
	}
	dense := loadTiny(t)
	want, toks, _ := decodeLogits(t, dense, prompt, 24, nil)
	for _, sel := range []string{"last", "softmax_before_last", "uniform", "exp", "sink_recent"} {
		t.Run(sel, func(t *testing.T) {
			m := loadTiny(t)
			s, _ := omnikv.ParseSelector(sel)
			cfg := omnikv.Config{Enabled: true, FilterLayers: []int{1}, WaitLayers: 0, Selector: s, Budget: omnikv.Budget{Tokens: 1 << 20}, Window: 8}
			if err := m.SetOmniKV(cfg); err != nil {
				t.Fatal(err)
			}
			got, _, seq := decodeLogits(t, m, prompt, 24, toks)
			for i := range want {
				if d := maxRelDiff(got[i], want[i]); d > 1e-5 {
					t.Fatalf("step %d: relative difference %.2e from dense > 1e-5", i, d)
				}
			}
			st := seq.Selection()
			if st.Steps != 24 || st.Selected != len(prompt) || st.Candidates != len(prompt) {
				t.Fatalf("selection stats %+v", st)
			}
			// Every row is fetched once (2 sparse layers: 2 and 3), then never again.
			if st.RowsFetched != int64(2*len(prompt)) || st.LastRows != 0 {
				t.Fatalf("fetched %d rows (last step %d), want %d once", st.RowsFetched, st.LastRows, 2*len(prompt))
			}
		})
	}
}

func TestOmniKVSmallBudgetSelects(t *testing.T) {
	prompt := make([]int32, 200)
	for i := range prompt {
		prompt[i] = int32((i*53 + 7) % 500)
	}
	dense := loadTiny(t)
	want, toks, _ := decodeLogits(t, dense, prompt, 12, nil)
	m := loadTiny(t)
	if err := m.SetOmniKV(omnikv.Config{Enabled: true, FilterLayers: []int{1}, Selector: omnikv.Uniform, Budget: omnikv.Budget{Tokens: 32}, Window: 4}); err != nil {
		t.Fatal(err)
	}
	got, _, seq := decodeLogits(t, m, prompt, 12, toks)
	if d := maxRelDiff(got[0], want[0]); d > 1e-6 {
		t.Fatalf("prefill logits differ from dense by %.2e: prefill must be full attention", d)
	}
	differs := false
	for i := 1; i < len(want); i++ {
		differs = differs || maxRelDiff(got[i], want[i]) > 1e-4
	}
	if !differs {
		t.Fatal("a 32-token budget over 200 tokens gave dense logits at every step: selection is not applied")
	}
	sel := seq.Selected(1)
	if len(sel) != 32 || !slices.IsSorted(sel) || sel[len(sel)-1] >= 200 {
		t.Fatalf("selection %v: want 32 ascending prompt indices", sel)
	}
	// Uniform forces the newest max(0, window - step) prompt tokens; by the last step that is none, but
	// the selection stays within the prompt.
	if st := seq.Selection(); st.Candidates != 200 || st.Selected != 32 {
		t.Fatalf("stats %+v", st)
	}
}
