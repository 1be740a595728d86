package main

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// ggufBuilder writes a GGUF v3 header (no tensor data) for tests.
type ggufBuilder struct {
	kv      bytes.Buffer
	nKV     int
	tensors bytes.Buffer
	nT      int
}

func putStr(b *bytes.Buffer, s string) {
	binary.Write(b, binary.LittleEndian, uint64(len(s)))
	b.WriteString(s)
}

func (g *ggufBuilder) u32(key string, v uint32) *ggufBuilder {
	putStr(&g.kv, key)
	binary.Write(&g.kv, binary.LittleEndian, uint32(gtUint32))
	binary.Write(&g.kv, binary.LittleEndian, v)
	g.nKV++
	return g
}

func (g *ggufBuilder) str(key, v string) *ggufBuilder {
	putStr(&g.kv, key)
	binary.Write(&g.kv, binary.LittleEndian, uint32(gtString))
	putStr(&g.kv, v)
	g.nKV++
	return g
}

func (g *ggufBuilder) f32(key string, v float32) *ggufBuilder {
	putStr(&g.kv, key)
	binary.Write(&g.kv, binary.LittleEndian, uint32(gtFloat32))
	binary.Write(&g.kv, binary.LittleEndian, v)
	g.nKV++
	return g
}

func (g *ggufBuilder) strArray(key string, vs ...string) *ggufBuilder {
	putStr(&g.kv, key)
	binary.Write(&g.kv, binary.LittleEndian, uint32(gtArray))
	binary.Write(&g.kv, binary.LittleEndian, uint32(gtString))
	binary.Write(&g.kv, binary.LittleEndian, uint64(len(vs)))
	for _, v := range vs {
		putStr(&g.kv, v)
	}
	g.nKV++
	return g
}

func (g *ggufBuilder) tensor(name string, typ ggmlType, dims ...uint64) *ggufBuilder {
	putStr(&g.tensors, name)
	binary.Write(&g.tensors, binary.LittleEndian, uint32(len(dims)))
	for _, d := range dims {
		binary.Write(&g.tensors, binary.LittleEndian, d)
	}
	binary.Write(&g.tensors, binary.LittleEndian, uint32(typ))
	binary.Write(&g.tensors, binary.LittleEndian, uint64(0))
	g.nT++
	return g
}

func (g *ggufBuilder) bytes() []byte {
	var b bytes.Buffer
	b.WriteString("GGUF")
	binary.Write(&b, binary.LittleEndian, uint32(3))
	binary.Write(&b, binary.LittleEndian, uint64(g.nT))
	binary.Write(&b, binary.LittleEndian, uint64(g.nKV))
	b.Write(g.kv.Bytes())
	b.Write(g.tensors.Bytes())
	return b.Bytes()
}

// tinyLlama is a one-layer Llama header: hidden 64, 4 heads of 16, 2 KV heads, vocab 100.
func tinyLlama() *ggufBuilder {
	g := &ggufBuilder{}
	g.str("general.architecture", "llama").u32("llama.block_count", 1).u32("llama.embedding_length", 64).
		u32("llama.attention.head_count", 4).u32("llama.attention.head_count_kv", 2).
		f32("llama.rope.freq_base", 10000).strArray("tokenizer.ggml.tokens", "a", "b", "c")
	g.tensor("token_embd.weight", 8, 64, 100)  // Q8_0: 2 blocks x 34 B = 68 B per row, 6800 B
	g.tensor("blk.0.attn_norm.weight", 0, 64)  // F32: 256 B
	g.tensor("blk.0.attn_q.weight", 3, 64, 64) // Q4_1: 2 blocks x 20 B = 40 B per row, 2560 B
	g.tensor("output_norm.weight", 0, 64)      // F32: 256 B
	return g
}

func TestReadGGUF(t *testing.T) {
	h, err := readGGUF(bytes.NewReader(tinyLlama().bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 3 || len(h.Tensors) != 4 {
		t.Fatalf("version %d, %d tensors; want 3, 4", h.Version, len(h.Tensors))
	}
	if got, _ := h.Meta["general.architecture"].(string); got != "llama" {
		t.Errorf("architecture %q", got)
	}
	if got, _ := h.Meta["llama.rope.freq_base"].(float64); got != 10000 {
		t.Errorf("rope.freq_base %v", got)
	}
	if _, ok := h.Meta["tokenizer.ggml.tokens"]; ok {
		t.Errorf("arrays should be skipped, not stored")
	}
	tests := []struct {
		i     int
		name  string
		bytes uint64
	}{
		{0, "token_embd.weight", 6800},
		{1, "blk.0.attn_norm.weight", 256},
		{2, "blk.0.attn_q.weight", 2560},
		{3, "output_norm.weight", 256},
	}
	for _, tc := range tests {
		tt := h.Tensors[tc.i]
		b, err := tt.Bytes()
		if tt.Name != tc.name || err != nil || b != tc.bytes {
			t.Errorf("tensor %d: %q %d bytes (err %v); want %q %d", tc.i, tt.Name, b, err, tc.name, tc.bytes)
		}
	}
}

func TestReadGGUFErrors(t *testing.T) {
	good := tinyLlama().bytes()
	badType := (&ggufBuilder{}).tensor("x", 99, 32).bytes()
	badBlock := (&ggufBuilder{}).tensor("blk.0.x", 2, 33, 2).bytes() // Q4_0 row of 33 elements
	tests := []struct {
		name, want string
		data       []byte
	}{
		{"magic", "bad magic", append([]byte("GGUX"), good[4:]...)},
		{"version", "unsupported GGUF version", append(append([]byte("GGUF"), 9, 0, 0, 0), good[8:]...)},
		{"unknown type", `tensor "x" has unknown type 99`, badType},
		{"empty", "magic", nil},
	}
	for _, tc := range tests {
		_, err := readGGUF(bytes.NewReader(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
	h, err := readGGUF(bytes.NewReader(badBlock))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Tensors[0].Bytes(); err == nil || !strings.Contains(err.Error(), "blk.0.x") {
		t.Errorf("row of 33 Q4_0 elements: err %v, want one naming the tensor", err)
	}
	// Every truncation of a valid header must fail cleanly, never panic or succeed.
	for n := range len(good) {
		if _, err := readGGUF(bytes.NewReader(good[:n])); err == nil {
			t.Fatalf("header truncated to %d of %d bytes parsed without error", n, len(good))
		}
	}
}
