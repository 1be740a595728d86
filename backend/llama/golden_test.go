package llama_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
	"github.com/omnikv-triton/omnikv-triton/backend/internal/testmodel"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/tests/reference/golden"
	"github.com/omnikv-triton/omnikv-triton/tests/reference/tinymodel"
)

// The golden tests compare the forward pass with Hugging Face transformers (tests/reference/make_goldens.py):
// logits at every prompt position within a relative error (see golden.Position.Compare) and the identical
// greedy continuation. The KV cache is float32 so that the only differences are float32 summation order.

// relTol is the tolerance for float32 math on the same weight values as the reference. The bf16 model's weights
// are upcast exactly to float32 by the reference too, so the same tolerance applies to it.
const relTol = 1e-4

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func readGolden(t *testing.T, name string) *golden.File {
	t.Helper()
	p, err := golden.TestdataPath(name)
	if err != nil {
		t.Fatal(err)
	}
	g, err := golden.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGoldenSmolLM2(t *testing.T) {
	g := readGolden(t, "smollm2.okvg")
	path := testmodel.SmolLM2(t)
	if sum := fileSHA256(t, path); sum != g.ModelSHA256 {
		t.Fatalf("%s has sha256 %s, the golden file was made from %s", path, sum, g.ModelSHA256)
	}
	m, err := llama.Load(path, cpu.New(), llama.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	checkGolden(t, m, g)
}

func TestGoldenTinyModels(t *testing.T) {
	// Every preset has a golden file (tests/reference/make_goldens.py writes them all).
	for _, spec := range tinymodel.Presets() {
		t.Run(spec.Name, func(t *testing.T) {
			p, err := golden.TestdataPath(spec.Name + ".okvg")
			if err != nil {
				t.Fatal(err)
			}
			g, err := golden.Read(p)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := tinymodel.Write(dir, spec); err != nil {
				t.Fatal(err)
			}
			if sum := fileSHA256(t, filepath.Join(dir, "model.safetensors")); sum != g.ModelSHA256 {
				t.Fatalf("regenerated %s has sha256 %s, the golden file was made from %s", spec.Name, sum, g.ModelSHA256)
			}
			m, err := llama.Load(dir, cpu.New(), llama.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			checkGolden(t, m, g)
		})
	}
}

// checkGolden runs every case: the prompt in chunks with logits at every position, then the greedy
// continuation one token at a time.
func checkGolden(t *testing.T, m *llama.Model, g *golden.File) {
	if g.Vocab != m.Vocab {
		t.Fatalf("golden vocab %d, model vocab %d", g.Vocab, m.Vocab)
	}
	pool, err := kvcache.NewPool(m.Device(), kvcache.Config{Layers: m.Layers, KVDim: m.KVDim(), PageSize: 64, DType: compute.KVF32})
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 128
	st := m.MustState(chunk, chunk)
	logits := make([]float32, m.Vocab)
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			seq := llama.NewSequence(pool, len(c.PromptIDs)+len(c.Greedy))
			defer seq.Release()
			worst, worstAt := 0.0, 0
			for at := 0; at < len(c.PromptIDs); at += chunk {
				n := min(chunk, len(c.PromptIDs)-at)
				rows, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: c.PromptIDs[at : at+n], AllLogits: true}})
				if err != nil {
					t.Fatal(err)
				}
				all := m.ReadLogits(st, nil)
				for r := 0; r < rows; r++ {
					logits := all[r*m.Vocab : (r+1)*m.Vocab]
					rel, err := c.Positions[at+r].Compare(logits, relTol)
					if err != nil {
						t.Fatalf("position %d of %d: %v", at+r, len(c.PromptIDs), err)
					}
					if rel > worst {
						worst, worstAt = rel, at+r
					}
				}
			}
			t.Logf("%d positions, worst relative error %.2e at %d", len(c.PromptIDs), worst, worstAt)
			checkGoldenDecode(t, m, pool, c, logits)
			got := greedy(t, m, st, seq, logits, len(c.Greedy))
			for i := range c.Greedy {
				if got[i] == c.Greedy[i] {
					continue
				}
				msg := fmt.Sprintf("greedy token %d: got %d, want %d (got %v, want %v)", i, got[i], c.Greedy[i], got, c.Greedy)
				if i < len(c.GreedyGaps) && float64(c.GreedyGaps[i]) < 1e-3 {
					t.Logf("%s; accepted: the reference's top-2 gap there is %.2e, a near-tie", msg, c.GreedyGaps[i])
					return
				}
				t.Fatal(msg)
			}
		})
	}
}

// decodePositions is how many prompt positions checkGoldenDecode feeds one token at a time.
const decodePositions = 40

// checkGoldenDecode feeds the first prompt tokens of c one at a time, the path every generated token takes
// (matrix-vector products, the packed integer kernels where the CPU has them), and compares the logits at
// each position with the golden ones, as the chunked pass does for the prefill path.
func checkGoldenDecode(t *testing.T, m *llama.Model, pool *kvcache.Pool, c golden.Case, logits []float32) {
	t.Helper()
	n := min(decodePositions, len(c.PromptIDs))
	seq := llama.NewSequence(pool, n)
	defer seq.Release()
	st := m.MustState(1, 1)
	worst, worstAt := 0.0, 0
	for i := 0; i < n; i++ {
		if _, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: c.PromptIDs[i : i+1]}}); err != nil {
			t.Fatal(err)
		}
		logits = m.ReadLogits(st, logits)
		rel, err := c.Positions[i].Compare(logits, relTol)
		if err != nil {
			t.Fatalf("decoding position %d: %v", i, err)
		}
		if rel > worst {
			worst, worstAt = rel, i
		}
	}
	t.Logf("%d positions decoded one at a time, worst relative error %.2e at %d", n, worst, worstAt)
}

// greedy continues the sequence n tokens by argmax (the prompt's last logits are in st.Logits row rows-1).
func greedy(t *testing.T, m *llama.Model, st *llama.State, seq *llama.Sequence, logits []float32, n int) []int32 {
	t.Helper()
	out := make([]int32, 0, n)
	// The last forward call left the prompt's final position in its last row.
	last := st.LastRows - 1
	for len(out) < n {
		all := m.ReadLogits(st, nil)
		logits := all[last*m.Vocab : (last+1)*m.Vocab]
		best := int32(0)
		for i, v := range logits {
			if v > logits[best] {
				best = int32(i)
			}
		}
		out = append(out, best)
		if len(out) == n {
			break
		}
		if _, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: []int32{best}}}); err != nil {
			t.Fatal(err)
		}
		last = 0
	}
	return out
}
