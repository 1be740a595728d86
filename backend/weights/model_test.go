package weights

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/internal/testmodel"
)

// TestSmolLM2 reads the real SmolLM2-135M-Instruct Q4_1 GGUF: every tensor with its type and shape, and
// the metadata the model loader relies on.
func TestSmolLM2(t *testing.T) {
	s, err := Open(testmodel.SmolLM2(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const hidden, ffn, kvDim, vocab, layers = 576, 1536, 192, 49152, 30
	want := map[string]struct {
		typ   DType
		shape []int
	}{
		"token_embd.weight":  {Q8_0, []int{vocab, hidden}},
		"output_norm.weight": {F32, []int{hidden}},
	}
	for l := range layers {
		p := fmt.Sprintf("blk.%d.", l)
		want[p+"attn_norm.weight"] = struct {
			typ   DType
			shape []int
		}{F32, []int{hidden}}
		want[p+"ffn_norm.weight"] = want[p+"attn_norm.weight"]
		for name, shape := range map[string][]int{
			"attn_q.weight": {hidden, hidden}, "attn_k.weight": {kvDim, hidden}, "attn_v.weight": {kvDim, hidden},
			"attn_output.weight": {hidden, hidden}, "ffn_gate.weight": {ffn, hidden},
			"ffn_up.weight": {ffn, hidden}, "ffn_down.weight": {hidden, ffn},
		} {
			want[p+name] = struct {
				typ   DType
				shape []int
			}{Q4_1, shape}
		}
	}
	if len(s.Tensors) != len(want) {
		t.Errorf("%d tensors, want %d", len(s.Tensors), len(want))
	}
	for name, w := range want {
		tt, err := s.Tensor(name, w.shape...)
		if err != nil {
			t.Error(err)
			continue
		}
		if tt.Type != w.typ {
			t.Errorf("%s: type %v, want %v", name, tt.Type, w.typ)
		}
		rb, _ := tt.Type.RowBytes(tt.Cols())
		if len(tt.Data) != tt.Rows()*rb || len(tt.Row(tt.Rows()-1)) != rb {
			t.Errorf("%s: %d data bytes for %d rows of %d", name, len(tt.Data), tt.Rows(), rb)
		}
	}
	if _, err := s.Tensor("output.weight"); err == nil {
		t.Error("output.weight present; the model ties embeddings")
	}
	if _, err := s.Tensor("token_embd.weight", hidden, vocab); err == nil {
		t.Error("transposed shape accepted")
	}

	m := s.GGUF
	for key, want := range map[string]uint64{
		"llama.block_count": layers, "llama.embedding_length": hidden, "llama.feed_forward_length": ffn,
		"llama.attention.head_count": 9, "llama.attention.head_count_kv": 3, "llama.context_length": 8192,
		"llama.rope.dimension_count": 64, "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
	} {
		if got, err := m.Uint(key); err != nil || got != want {
			t.Errorf("%s = %d, %v; want %d", key, got, err, want)
		}
	}
	if eps, err := m.Float("llama.attention.layer_norm_rms_epsilon"); err != nil || math.Abs(eps-1e-5) > 1e-12 {
		t.Errorf("rms eps %v, %v", eps, err)
	}
	if theta, err := m.Float("llama.rope.freq_base"); err != nil || theta != 100000 {
		t.Errorf("rope theta %v, %v", theta, err)
	}
	if arch, err := m.String("general.architecture"); err != nil || arch != "llama" {
		t.Errorf("architecture %q, %v", arch, err)
	}
	if pre, err := m.String("tokenizer.ggml.pre"); err != nil || pre != "smollm" {
		t.Errorf("tokenizer pre %q, %v", pre, err)
	}
	if bos, err := m.Bool("tokenizer.ggml.add_bos_token"); err != nil || bos {
		t.Errorf("add_bos_token %v, %v", bos, err)
	}
	toks, err := m.Strings("tokenizer.ggml.tokens")
	if err != nil || len(toks) != vocab || toks[1] != "<|im_start|>" {
		t.Errorf("tokens: %d, %v", len(toks), err)
	}
	types, err := m.Int32s("tokenizer.ggml.token_type")
	if err != nil || len(types) != vocab {
		t.Errorf("token types: %d, %v", len(types), err)
	}
	if merges, err := m.Strings("tokenizer.ggml.merges"); err != nil || len(merges) < 40000 {
		t.Errorf("merges: %d, %v", len(merges), err)
	}

	// Dequantize a whole matrix and the embeddings of a few tokens: values must be finite and not all zero.
	for _, name := range []string{"blk.0.attn_q.weight", "token_embd.weight"} {
		tt, _ := s.Tensor(name)
		row := make([]float32, tt.Cols())
		var sum float64
		for i := 0; i < tt.Rows(); i += 97 {
			if err := DequantizeRow(tt.Type, tt.Row(i), row); err != nil {
				t.Fatalf("%s row %d: %v", name, i, err)
			}
			for _, v := range row {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s row %d: non-finite %v", name, i, v)
				}
				sum += math.Abs(float64(v))
			}
		}
		if sum == 0 {
			t.Errorf("%s: all zero", name)
		}
	}
}

// TestOpenDoesNotReadData opens the 98 MB model: the Go heap must grow by a few MB at most (the
// tokenizer metadata), because tensor data stays mapped, not read.
func TestOpenDoesNotReadData(t *testing.T) {
	path := testmodel.SmolLM2(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	var dataBytes int
	for _, tt := range s.Tensors {
		dataBytes += len(tt.Data)
	}
	t.Logf("heap grew by %.2f MB while opening %.1f MB of tensor data", float64(grown)/(1<<20), float64(dataBytes)/(1<<20))
	if dataBytes < 90<<20 {
		t.Fatalf("only %d bytes of tensor data", dataBytes)
	}
	if grown > 6<<20 {
		t.Errorf("heap grew by %d bytes; Open must map, not read, tensor data", grown)
	}
	runtime.KeepAlive(s)
}

func BenchmarkOpenSmolLM2(b *testing.B) {
	path := testmodel.SmolLM2(b)
	for b.Loop() {
		s, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
