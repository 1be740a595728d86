package synth

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// Shape is a model's hyperparameters: what a synthetic model copies from a real one.
type Shape struct {
	Name       string
	Layers     int
	Hidden     int
	Heads      int // query heads
	KVHeads    int
	HeadDim    int
	FFN        int
	Vocab      int
	MaxContext int // trained context length (a benchmark may ask for more)
	RopeTheta  float64
	Tied       bool // output head shares the embedding table
}

// shapes are the models this package can imitate.
var shapes = []Shape{
	// Meta-Llama-3-8B's config.json.
	{Name: "llama3-8b", Layers: 32, Hidden: 4096, Heads: 32, KVHeads: 8, HeadDim: 128, FFN: 14336, Vocab: 128256,
		MaxContext: 8192, RopeTheta: 500000},
	// SmolLM2-135M-Instruct (the model the tests run), for device comparisons without its file.
	{Name: "smollm2-135m", Layers: 30, Hidden: 576, Heads: 9, KVHeads: 3, HeadDim: 64, FFN: 1536, Vocab: 49152,
		MaxContext: 8192, RopeTheta: 100000, Tied: true},
	// A tiny shape for tests: every dim a multiple of 256 so that every type, q4_K included, applies.
	{Name: "tiny", Layers: 4, Hidden: 256, Heads: 4, KVHeads: 2, HeadDim: 64, FFN: 512, Vocab: 1024,
		MaxContext: 4096, RopeTheta: 10000},
}

// ShapeNames lists the known shapes.
func ShapeNames() []string {
	var out []string
	for _, s := range shapes {
		out = append(out, s.Name)
	}
	return out
}

// LookupShape returns the named shape.
func LookupShape(name string) (Shape, error) {
	for _, s := range shapes {
		if s.Name == name {
			return s, nil
		}
	}
	return Shape{}, fmt.Errorf("synth: unknown shape %q (known: %s)", name, strings.Join(ShapeNames(), ", "))
}

// types maps the spec's type names to the matrices' storage type.
var types = map[string]weights.DType{
	"bf16": weights.BF16, "f16": weights.F16, "f32": weights.F32, "q8_0": weights.Q8_0,
	"q4": weights.Q4_0, "q4_0": weights.Q4_0, "q4_1": weights.Q4_1, "q4k": weights.Q4_K, "q4_k": weights.Q4_K,
}

// Spec names one synthetic model: a shape, the matrices' storage type and the seed.
type Spec struct {
	Shape Shape
	Type  weights.DType // the layers' matrices
	Seed  uint64
}

// ParseSpec reads "SHAPE[:TYPE][@SEED]", e.g. "llama3-8b", "llama3-8b:q4", "tiny:f32@7". TYPE is bf16 (the
// default), f16, f32, q8_0, q4 (= q4_0), q4_1 or q4k (= q4_K); the seed defaults to 1.
func ParseSpec(s string) (Spec, error) {
	sp := Spec{Type: weights.BF16, Seed: 1}
	rest := s
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		seed, err := strconv.ParseUint(rest[i+1:], 10, 64)
		if err != nil {
			return sp, fmt.Errorf("synth: model %q: bad seed %q", s, rest[i+1:])
		}
		sp.Seed, rest = seed, rest[:i]
	}
	name, typ, hasType := strings.Cut(rest, ":")
	if hasType {
		t, ok := types[strings.ToLower(typ)]
		if !ok {
			names := make([]string, 0, len(types))
			for k := range types {
				names = append(names, k)
			}
			slices.Sort(names)
			return sp, fmt.Errorf("synth: model %q: unknown type %q (known: %s)", s, typ, strings.Join(names, ", "))
		}
		sp.Type = t
	}
	shape, err := LookupShape(name)
	if err != nil {
		return sp, err
	}
	sp.Shape = shape
	return sp, sp.check()
}

// String is the spec in ParseSpec's syntax.
func (s Spec) String() string {
	return fmt.Sprintf("%s:%s@%d", s.Shape.Name, strings.ToLower(s.Type.String()), s.Seed)
}

// tableType is the storage type of the embedding table and the output head: the matrices' own for float
// types, q8_0 for quantized ones (as llama.cpp's 4-bit files keep them wider; q8_0 is also a type every
// device's embedding lookup reads).
func (s Spec) tableType() weights.DType {
	switch s.Type {
	case weights.BF16, weights.F16, weights.F32:
		return s.Type
	}
	return weights.Q8_0
}

// tensorSpec is one tensor of the model: its HF name, type, shape and value scale.
type tensorSpec struct {
	name  string
	typ   weights.DType
	shape []int   // (rows, cols) or (n)
	sigma float32 // standard deviation of the values; a vector (norm weight) is 1 ± 0.5 uniform instead
}

// tensors lists the model's tensors in binding order, under the Hugging Face names llama.FromSet looks up.
func (s Spec) tensors() []tensorSpec {
	c := s.Shape
	q, kv := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	inv := func(n int) float32 { return float32(1 / sqrt(float64(n))) }
	// Logits of standard deviation ~4: a peaked distribution, like a trained model's, rather than near-ties.
	table := 4 * inv(c.Hidden)
	ts := []tensorSpec{
		{"model.embed_tokens.weight", s.tableType(), []int{c.Vocab, c.Hidden}, table},
		{"model.norm.weight", weights.F32, []int{c.Hidden}, 0},
	}
	if !c.Tied {
		ts = append(ts, tensorSpec{"lm_head.weight", s.tableType(), []int{c.Vocab, c.Hidden}, table})
	}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts,
			tensorSpec{p + "input_layernorm.weight", weights.F32, []int{c.Hidden}, 0},
			tensorSpec{p + "self_attn.q_proj.weight", s.Type, []int{q, c.Hidden}, inv(c.Hidden)},
			tensorSpec{p + "self_attn.k_proj.weight", s.Type, []int{kv, c.Hidden}, inv(c.Hidden)},
			tensorSpec{p + "self_attn.v_proj.weight", s.Type, []int{kv, c.Hidden}, inv(c.Hidden)},
			tensorSpec{p + "self_attn.o_proj.weight", s.Type, []int{c.Hidden, q}, inv(q)},
			tensorSpec{p + "post_attention_layernorm.weight", weights.F32, []int{c.Hidden}, 0},
			tensorSpec{p + "mlp.gate_proj.weight", s.Type, []int{c.FFN, c.Hidden}, inv(c.Hidden)},
			tensorSpec{p + "mlp.up_proj.weight", s.Type, []int{c.FFN, c.Hidden}, inv(c.Hidden)},
			tensorSpec{p + "mlp.down_proj.weight", s.Type, []int{c.Hidden, c.FFN}, inv(c.FFN)},
		)
	}
	return ts
}

// check reports a shape the type cannot store (rows of a whole number of blocks).
func (s Spec) check() error {
	for _, t := range s.tensors() {
		if _, err := t.typ.RowBytes(t.shape[len(t.shape)-1]); err != nil {
			return fmt.Errorf("synth: %s: tensor %s: %w", s, t.name, err)
		}
	}
	return nil
}

// WeightBytes is the size of all the model's tensors: the host memory the set takes, and what a device that
// copies the weights holds.
func (s Spec) WeightBytes() int64 {
	var n int64
	for _, t := range s.tensors() {
		rb, _ := t.typ.RowBytes(t.shape[len(t.shape)-1])
		rows := 1
		if len(t.shape) == 2 {
			rows = t.shape[0]
		}
		n += int64(rows) * int64(rb)
	}
	return n
}

// configJSON is the Hugging Face config.json that llama.ConfigFromHF reads for the shape.
func (s Spec) configJSON(maxContext int) []byte {
	c := s.Shape
	if maxContext <= 0 {
		maxContext = c.MaxContext
	}
	b, _ := json.Marshal(map[string]any{
		"model_type": "llama", "hidden_act": "silu", "hidden_size": c.Hidden, "num_hidden_layers": c.Layers,
		"num_attention_heads": c.Heads, "num_key_value_heads": c.KVHeads, "head_dim": c.HeadDim,
		"intermediate_size": c.FFN, "vocab_size": c.Vocab, "max_position_embeddings": maxContext,
		"rms_norm_eps": 1e-5, "rope_theta": c.RopeTheta, "tie_word_embeddings": c.Tied,
		"bos_token_id": 1, "eos_token_id": 2,
	})
	return b
}
