package llama_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
	"github.com/omnikv-triton/omnikv-triton/tests/reference/tinymodel"
)

// tinyDir writes the tiny Llama and returns its directory and its tensors (read back into memory).
func tinyDir(t *testing.T) (string, []*weights.Tensor) {
	t.Helper()
	dir := t.TempDir()
	if err := tinymodel.Write(dir, tinymodel.TinyLlamaF32); err != nil {
		t.Fatal(err)
	}
	set, err := weights.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var ts []*weights.Tensor
	for _, name := range set.Names() {
		src := set.Tensors[name]
		ts = append(ts, &weights.Tensor{Name: name, Type: src.Type, Shape: append([]int(nil), src.Shape...), Data: append([]byte(nil), src.Data...)})
	}
	return dir, ts
}

// editConfig rewrites one key of config.json.
func editConfig(t *testing.T, dir, key string, value any) {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if value == nil {
		delete(cfg, key)
	} else {
		cfg[key] = value
	}
	if b, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRejectsBadModels(t *testing.T) {
	const qName = "model.layers.1.self_attn.q_proj.weight"
	tests := []struct {
		name  string
		edit  func(t *testing.T, dir string, ts []*weights.Tensor)
		wants []string // substrings of the error
	}{
		{"missing tensor", func(t *testing.T, dir string, ts []*weights.Tensor) {
			var keep []*weights.Tensor
			for _, x := range ts {
				if x.Name != qName {
					keep = append(keep, x)
				}
			}
			writeST(t, dir, keep)
		}, []string{qName}},
		{"wrong shape", func(t *testing.T, dir string, ts []*weights.Tensor) {
			for _, x := range ts {
				if x.Name == qName {
					x.Shape = []int{x.Shape[0] / 2, x.Shape[1] * 2} // same bytes, another shape
				}
			}
			writeST(t, dir, ts)
		}, []string{qName, "shape"}},
		{"unsupported architecture", func(t *testing.T, dir string, _ []*weights.Tensor) {
			editConfig(t, dir, "model_type", "gpt_neox")
		}, []string{"gpt_neox", "model_type"}},
		{"heads not divisible", func(t *testing.T, dir string, _ []*weights.Tensor) {
			editConfig(t, dir, "num_key_value_heads", 3)
		}, []string{"key/value heads"}},
		{"unknown rope scaling", func(t *testing.T, dir string, _ []*weights.Tensor) {
			editConfig(t, dir, "rope_scaling", map[string]any{"rope_type": "yarn", "factor": 4})
		}, []string{"yarn"}},
		{"bad activation", func(t *testing.T, dir string, _ []*weights.Tensor) {
			editConfig(t, dir, "hidden_act", "gelu")
		}, []string{"hidden_act"}},
		{"no config", func(t *testing.T, dir string, _ []*weights.Tensor) {
			if err := os.Remove(filepath.Join(dir, "config.json")); err != nil {
				t.Fatal(err)
			}
		}, []string{"config.json"}},
		{"corrupt config", func(t *testing.T, dir string, _ []*weights.Tensor) {
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{\"model_type\": "), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"config.json"}},
		{"truncated weights", func(t *testing.T, dir string, _ []*weights.Tensor) {
			p := filepath.Join(dir, "model.safetensors")
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, fi.Size()-100); err != nil {
				t.Fatal(err)
			}
		}, []string{"model.safetensors"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, ts := tinyDir(t)
			tc.edit(t, dir, ts)
			m, err := llama.Load(dir, cpu.New(), llama.Options{})
			if err == nil {
				m.Close()
				t.Fatal("loaded a bad model")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func writeST(t *testing.T, dir string, ts []*weights.Tensor) {
	t.Helper()
	if err := weights.WriteSafetensors(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
}

func TestGGUFUnsupportedArchitecture(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.gguf")
	kv := []weights.KV{{Key: "general.architecture", Value: "falcon"}, {Key: "tokenizer.ggml.tokens", Value: []string{"a", "b"}}}
	vec := &weights.Tensor{Name: "token_embd.weight", Type: weights.F32, Shape: []int{2, 4}, Data: make([]byte, 32)}
	if err := weights.WriteGGUF(p, kv, []*weights.Tensor{vec}); err != nil {
		t.Fatal(err)
	}
	_, err := llama.Load(p, cpu.New(), llama.Options{})
	if err == nil || !strings.Contains(err.Error(), "falcon") || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v, want one naming the file and the architecture", err)
	}
}

func TestForwardRejectsPromptOverContext(t *testing.T) {
	dir, _ := tinyDir(t)
	m, err := llama.Load(dir, cpu.New(), llama.Options{MaxContext: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pool, err := kvcache.NewPool(m.Device(), kvcache.Config{Layers: m.Layers, KVDim: m.KVDim(), PageSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	st := m.MustState(32, 1)
	seq := llama.NewSequence(pool, 64)
	_, err = m.Forward(st, []llama.Step{{Seq: seq, Tokens: make([]int32, 17)}})
	if err == nil || !strings.Contains(err.Error(), "context of 16") {
		t.Fatalf("17 tokens into a context of 16: err = %v", err)
	}
	_, err = m.Forward(st, []llama.Step{{Seq: seq, Tokens: []int32{1, int32(m.Vocab)}}})
	if err == nil || !strings.Contains(err.Error(), "vocabulary") {
		t.Fatalf("token id = vocab: err = %v", err)
	}
	if seq.Len() != 0 || pool.InUse() != 0 {
		t.Fatalf("a rejected step changed the cache: len %d, %d pages", seq.Len(), pool.InUse())
	}
}
