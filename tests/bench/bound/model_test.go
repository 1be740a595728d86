package main

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// modelPath finds the default model: $OMNIKV_MODEL (relative to the repository root when relative), else
// .cache/models/ under the root. It fails the test when the model is missing and $CI is set, and skips it
// otherwise.
func modelPath(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	p := os.Getenv("OMNIKV_MODEL")
	if p == "" {
		p = defaultModel
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(root, p)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("model %s missing (CI is set): %v", p, err)
		}
		t.Skipf("model %s missing: set OMNIKV_MODEL or run the setup script", p)
	}
	return p
}

// TestSmolLM2Traffic checks the traffic model on the real SmolLM2-135M-Instruct Q4_1 file against sizes
// read with the gguf Python package (gguf.GGUFReader: tensor n_bytes summed per type): Q4_1 66,355,200 B,
// Q8_0 (token_embd 576x49152) 30,081,024 B, F32 140,544 B; 61 = 2 x 30 + 1 norms.
func TestSmolLM2Traffic(t *testing.T) {
	h, err := readGGUFFile(modelPath(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := shapeFromGGUF(h)
	if err != nil {
		t.Fatal(err)
	}
	if s.Layers != 30 || s.Hidden != 576 || s.Heads != 9 || s.KVHeads != 3 || s.HeadDim != 64 ||
		s.Vocab != 49152 || !s.TiedHead {
		t.Fatalf("shape %+v", s)
	}
	const q41, q80, f32 = 66_355_200, 30_081_024, 140_544
	tests := []struct {
		name      string
		got, want uint64
	}{
		{"embedding row (576 Q8_0)", s.EmbedRowBytes, 576 / 32 * 34},
		{"head = token_embd", s.HeadBytes, q80},
		{"weights per token", s.WeightBytesPerToken(), q41 + q80 + f32 + 612},
		{"KV at 8192, fp16", s.KVBytesPerToken(8192, 2), 30 * 2 * 3 * 64 * 8192 * 2},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, tc.got, tc.want)
		}
	}
}
