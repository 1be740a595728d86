package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// writeModel writes a GGUF of `layers` blocks of one 32-element f32 tensor each, plus an embedding.
func writeModel(t *testing.T, path string, layers int) {
	t.Helper()
	kv := []weights.KV{{Key: "general.architecture", Value: "llama"}, {Key: "llama.block_count", Value: uint32(layers)},
		{Key: "tokenizer.ggml.tokens", Value: []string{"a", "b"}}}
	ts := []*weights.Tensor{{Name: "token_embd.weight", Type: weights.F32, Shape: []int{2, 32}, Data: make([]byte, 2*32*4)}}
	for l := 0; l < layers; l++ {
		ts = append(ts, &weights.Tensor{Name: "blk." + string(rune('0'+l)) + ".attn_q.weight", Type: weights.F32,
			Shape: []int{32}, Data: make([]byte, 32*4)})
	}
	if err := weights.WriteGGUF(path, kv, ts); err != nil {
		t.Fatal(err)
	}
}

func TestTruncate(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.gguf")
	writeModel(t, in, 4)
	for _, c := range []struct {
		name      string
		layers    int
		maxBytes  int64
		want      int // layers kept
		errSubstr string
	}{
		{name: "two layers", layers: 2, want: 2},
		{name: "all", layers: 4, want: 4},
		{name: "too many", layers: 5, errSubstr: "has 4 layers"},
		{name: "fits a budget", maxBytes: 1 << 20, want: 4},
		{name: "budget below one layer", maxBytes: 64, errSubstr: "not even one layer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name+".gguf")
			err := run(in, out, c.layers, c.maxBytes)
			if c.errSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), c.errSubstr) {
					t.Fatalf("error %v, want one containing %q", err, c.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			set, err := weights.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer set.Close()
			n, err := set.GGUF.Uint("llama.block_count")
			if err != nil || int(n) != c.want {
				t.Fatalf("block_count %d (%v), want %d", n, err, c.want)
			}
			if len(set.Tensors) != 1+c.want {
				t.Fatalf("%d tensors (%v), want the embedding and %d layers", len(set.Tensors), set.Names(), c.want)
			}
			if _, ok := set.Tensors["token_embd.weight"]; !ok {
				t.Fatal("the embedding was dropped")
			}
		})
	}
}
