package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestShapeAndTraffic(t *testing.T) {
	// Sizes by hand from tinyLlama: token_embd 6800 B (row 68 B), attn_norm 256 B, attn_q 2560 B (64x64
	// elements), output_norm 256 B; an untied head adds output.weight F16 64x100 = 12800 B.
	tests := []struct {
		name                string
		head                bool
		matrixBytes, weight uint64
		elems               uint64
	}{
		{"tied", false, 2560 + 256 + 6800, 2560 + 256 + 6800 + 68 + 256, 64*64 + 64*100},
		{"untied", true, 2560 + 256 + 12800, 2560 + 256 + 12800 + 68 + 256, 64*64 + 64*100},
	}
	for _, tc := range tests {
		g := tinyLlama()
		if tc.head {
			g.tensor("output.weight", 1, 64, 100)
		}
		h, err := readGGUF(bytes.NewReader(g.bytes()))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		s, err := shapeFromGGUF(h)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if s.TiedHead == tc.head || s.HeadDim != 16 || s.Vocab != 100 || s.Layers != 1 || s.KVHeads != 2 {
			t.Errorf("%s: shape %+v", tc.name, s)
		}
		if s.MatrixBytes != tc.matrixBytes || s.WeightBytesPerToken() != tc.weight || s.MatrixElems != tc.elems {
			t.Errorf("%s: matrix bytes %d, weight bytes/token %d, elems %d; want %d, %d, %d", tc.name,
				s.MatrixBytes, s.WeightBytesPerToken(), s.MatrixElems, tc.matrixBytes, tc.weight, tc.elems)
		}
		// KV: 1 layer x {K,V} x 2 kv heads x 16 x ctx 10 x 2 B = 1280 B.
		if got := s.KVBytesPerToken(10, 2); got != 1280 {
			t.Errorf("%s: KV bytes at ctx 10 = %d, want 1280", tc.name, got)
		}
		// FLOPs: 2 x elems + 4 x (1 layer x 4 heads x 16) x ctx.
		if got, want := s.DecodeFLOPs(10), float64(2*tc.elems+4*64*10); got != want {
			t.Errorf("%s: decode FLOPs %v, want %v", tc.name, got, want)
		}
		b := s.boundAt(10, 2, 1e9, 1e9) // 1 GB/s, 1 GFLOP/s
		wantBW := float64(tc.weight+1280) / 1e9 * 1e3
		if math.Abs(b.DecodeMsBW-wantBW) > 1e-12 || b.DecodeMsBound != max(b.DecodeMsBW, b.DecodeMsCompute) {
			t.Errorf("%s: bound %+v, want bandwidth ms %v", tc.name, b, wantBW)
		}
	}
}

func TestShapeErrors(t *testing.T) {
	noHeads := &ggufBuilder{}
	noHeads.str("general.architecture", "llama").u32("llama.block_count", 1).u32("llama.embedding_length", 64).
		u32("llama.attention.head_count_kv", 2)
	noEmbd := &ggufBuilder{}
	noEmbd.str("general.architecture", "llama").u32("llama.block_count", 1).u32("llama.embedding_length", 64).
		u32("llama.attention.head_count", 4).u32("llama.attention.head_count_kv", 2)
	tests := []struct {
		name, want string
		g          *ggufBuilder
	}{
		{"no arch", "general.architecture", &ggufBuilder{}},
		{"no heads", "llama.attention.head_count", noHeads},
		{"no embedding", "token_embd.weight", noEmbd},
	}
	for _, tc := range tests {
		h, err := readGGUF(bytes.NewReader(tc.g.bytes()))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if _, err := shapeFromGGUF(h); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to name %q", tc.name, err, tc.want)
		}
	}
}

func TestParseContexts(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		ok   bool
	}{
		{"128,2048,8192", []int{128, 2048, 8192}, true},
		{" 7 ", []int{7}, true},
		{"128,,3", nil, false},
		{"0", nil, false},
		{"x", nil, false},
	}
	for _, tc := range tests {
		got, err := parseContexts(tc.in)
		if (err == nil) != tc.ok || len(got) != len(tc.want) {
			t.Errorf("%q: %v, %v", tc.in, got, err)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}
