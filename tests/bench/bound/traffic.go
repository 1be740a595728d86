package main

import (
	"fmt"
	"strings"
)

// modelShape is what the traffic model needs to know about a Llama-family model.
type modelShape struct {
	Arch     string
	Layers   int // n_layer
	Hidden   int // embedding length
	Heads    int // query heads
	KVHeads  int // key/value heads
	HeadDim  int // Hidden / Heads unless the file says otherwise
	Vocab    int
	TiedHead bool // no output.weight: the output head is token_embd

	MatrixBytes   uint64 // every blk.* tensor and output.weight, stored size (norms included)
	MatrixElems   uint64 // elements of the 2-D tensors a token multiplies with (blk.* matrices + head)
	EmbedRowBytes uint64 // one row of token_embd (the lookup of the current token)
	HeadBytes     uint64 // the output head: output.weight, or token_embd when tied
	OtherBytes    uint64 // top-level tensors other than token_embd/output (output_norm, rope factors)
}

// shapeFromGGUF derives the model shape and its per-token weight traffic from a GGUF header.
func shapeFromGGUF(h *ggufHeader) (*modelShape, error) {
	arch, _ := h.Meta["general.architecture"].(string)
	if arch == "" {
		return nil, fmt.Errorf("metadata %q missing", "general.architecture")
	}
	s := &modelShape{Arch: arch}
	var err error
	for _, f := range []struct {
		key string
		dst *int
	}{
		{"block_count", &s.Layers},
		{"embedding_length", &s.Hidden},
		{"attention.head_count", &s.Heads},
		{"attention.head_count_kv", &s.KVHeads},
	} {
		if *f.dst, err = h.metaInt(arch + "." + f.key); err != nil {
			return nil, err
		}
	}
	if s.Layers <= 0 || s.Hidden <= 0 || s.Heads <= 0 || s.KVHeads <= 0 {
		return nil, fmt.Errorf("implausible hyperparameters: layers %d hidden %d heads %d kv heads %d",
			s.Layers, s.Hidden, s.Heads, s.KVHeads)
	}
	if s.HeadDim, err = h.metaInt(arch + ".attention.key_length"); err != nil {
		s.HeadDim = s.Hidden / s.Heads
	}
	var embd, head *ggufTensor
	for i := range h.Tensors {
		t := &h.Tensors[i]
		b, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		switch {
		case t.Name == "token_embd.weight":
			embd = t
		case t.Name == "output.weight":
			head = t
			s.MatrixBytes += b
		case strings.HasPrefix(t.Name, "blk."):
			s.MatrixBytes += b
			if len(t.Dims) == 2 {
				s.MatrixElems += t.Elements()
			}
		default:
			s.OtherBytes += b
		}
	}
	if embd == nil || len(embd.Dims) != 2 {
		return nil, fmt.Errorf("tensor %q missing or not 2-D", "token_embd.weight")
	}
	s.Vocab = int(embd.Dims[1])
	row, err := embd.Type.RowBytes(int(embd.Dims[0]))
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", embd.Name, err)
	}
	s.EmbedRowBytes = uint64(row)
	if head == nil {
		s.TiedHead = true
		head = embd
	}
	if s.HeadBytes, err = head.Bytes(); err != nil {
		return nil, err
	}
	if s.TiedHead {
		s.MatrixBytes += s.HeadBytes // counted once: the head reads the whole embedding table
	}
	s.MatrixElems += head.Elements()
	return s, nil
}

// WeightBytesPerToken is the weight bytes a decode step reads once per token: every layer tensor, the
// output head, one embedding row and the small top-level tensors.
func (s *modelShape) WeightBytesPerToken() uint64 {
	return s.MatrixBytes + s.EmbedRowBytes + s.OtherBytes
}

// KVBytesPerToken is the KV cache a decode step reads at context ctx, with elemBytes bytes per element:
// layers x {K, V} x kvHeads x headDim x ctx x elemBytes.
func (s *modelShape) KVBytesPerToken(ctx int, elemBytes float64) uint64 {
	return uint64(float64(s.Layers*2*s.KVHeads*s.HeadDim*ctx) * elemBytes)
}

// DecodeFLOPs is the arithmetic of one decode step at context ctx: a multiply-add (2 FLOPs) per matrix
// element, plus attention scores and the weighted sum of values over ctx positions for every query head
// (2 x 2 x heads x headDim x ctx per layer). Norms, RoPE and softmax are left out (a few percent at most).
func (s *modelShape) DecodeFLOPs(ctx int) float64 {
	return 2*float64(s.MatrixElems) + 4*float64(s.Layers*s.Heads*s.HeadDim)*float64(ctx)
}

// PrefillFLOPsPerToken is the mean arithmetic per prompt token of a causal prefill of ctx tokens: token i
// attends to i+1 positions, so on average (ctx+1)/2.
func (s *modelShape) PrefillFLOPsPerToken(ctx int) float64 {
	return 2*float64(s.MatrixElems) + 4*float64(s.Layers*s.Heads*s.HeadDim)*float64(ctx+1)/2
}

// contextBound is the bound at one context length.
type contextBound struct {
	Context          int     `json:"context"`
	WeightBytes      uint64  `json:"weight_bytes_per_token"`
	KVBytes          uint64  `json:"kv_bytes_per_token"`
	DecodeMsBW       float64 `json:"decode_ms_bound_bandwidth"`  // (weights + KV) / read bandwidth
	DecodeMsCompute  float64 `json:"decode_ms_bound_compute"`    // decode FLOPs / peak FLOP rate
	DecodeMsBound    float64 `json:"decode_ms_per_token_bound"`  // the larger of the two
	PrefillTokSBound float64 `json:"prefill_tokens_per_s_bound"` // peak FLOP rate / mean prefill FLOPs
}

// boundAt computes the decode and prefill bounds at context ctx for read bandwidth bw (bytes/s) and peak
// arithmetic rate flops (FLOP/s).
func (s *modelShape) boundAt(ctx int, kvElemBytes, bw, flops float64) contextBound {
	b := contextBound{Context: ctx, WeightBytes: s.WeightBytesPerToken(), KVBytes: s.KVBytesPerToken(ctx, kvElemBytes)}
	if bw > 0 {
		b.DecodeMsBW = float64(b.WeightBytes+b.KVBytes) / bw * 1e3
	}
	if flops > 0 {
		b.DecodeMsCompute = s.DecodeFLOPs(ctx) / flops * 1e3
		b.PrefillTokSBound = flops / s.PrefillFLOPsPerToken(ctx)
	}
	b.DecodeMsBound = max(b.DecodeMsBW, b.DecodeMsCompute)
	return b
}
