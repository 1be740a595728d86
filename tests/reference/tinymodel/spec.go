package tinymodel

import (
	"fmt"
	"math"
)

// DType is the storage type of every tensor in a generated model.
type DType string

// Storage types a Spec may ask for.
const (
	Float32  DType = "float32"
	BFloat16 DType = "bfloat16"
)

// RopeScaling is the config.json rope_scaling object; nil in a Spec means plain RoPE.
type RopeScaling struct {
	Type                 string  // "llama3" or "linear"
	Factor               float64 // both types
	LowFreqFactor        float64 // llama3 only
	HighFreqFactor       float64 // llama3 only
	OriginalMaxPositions int     // llama3 only: original_max_position_embeddings
}

// Spec describes one tiny model. Weight values depend only on Seed and the tensor's name and shape; DType
// only changes how they are stored.
type Spec struct {
	Name         string // preset name, also the directory name make_goldens.py uses
	ModelType    string // config model_type: "llama" or "qwen2"
	Architecture string // config architectures[0]
	DType        DType
	Seed         uint64

	Hidden       int // hidden_size
	Layers       int // num_hidden_layers
	Heads        int // num_attention_heads
	KVHeads      int // num_key_value_heads
	HeadDim      int // head_dim
	Intermediate int // intermediate_size
	Vocab        int // vocab_size
	MaxPositions int // max_position_embeddings

	RopeTheta     float64
	RopeScaling   *RopeScaling
	RMSNormEps    float64
	QKVBias       bool // q_proj/k_proj/v_proj carry a bias (always true for qwen2)
	TieEmbeddings bool // no lm_head.weight: the output projection is model.embed_tokens.weight
	BOS, EOS      int

	// LogitGain scales lm_head so that logits have a standard deviation of about LogitGain (non-degenerate
	// argmaxes); the other matrices are scaled by 1/sqrt(fan_in) so activations stay O(1).
	LogitGain float64
}

// The presets. TinyLlamaBF16 and TinyLlamaLinearRope share TinyLlamaF32's seed, so their weights are the
// same numbers (rounded to bf16 in the first case).
var (
	TinyLlamaF32 = Spec{
		Name: "tiny_llama_f32", ModelType: "llama", Architecture: "LlamaForCausalLM", DType: Float32,
		Seed: 20260101, Hidden: 64, Layers: 4, Heads: 4, KVHeads: 2, HeadDim: 16, Intermediate: 176,
		Vocab: 512, MaxPositions: 2048, RopeTheta: 10000,
		RopeScaling: &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4,
			OriginalMaxPositions: 64},
		RMSNormEps: 1e-5, BOS: 1, EOS: 2, LogitGain: 3,
	}
	TinyLlamaBF16       = with(TinyLlamaF32, func(s *Spec) { s.Name, s.DType = "tiny_llama_bf16", BFloat16 })
	TinyLlamaLinearRope = with(TinyLlamaF32, func(s *Spec) {
		s.Name = "tiny_llama_linear_rope"
		s.RopeScaling = &RopeScaling{Type: "linear", Factor: 2}
	})
	TinyQwen2 = Spec{
		Name: "tiny_qwen2", ModelType: "qwen2", Architecture: "Qwen2ForCausalLM", DType: Float32,
		Seed: 20260202, Hidden: 64, Layers: 4, Heads: 4, KVHeads: 2, HeadDim: 16, Intermediate: 176,
		Vocab: 512, MaxPositions: 2048, RopeTheta: 1000000, RMSNormEps: 1e-6, QKVBias: true,
		BOS: 1, EOS: 2, LogitGain: 3,
	}
	// TinyQwen2Tied has no lm_head.weight (the output projection is the embedding). Random tied models fall
	// into repeating one token under greedy decoding, so its value is in the prefill logits.
	TinyQwen2Tied = with(TinyQwen2, func(s *Spec) { s.Name, s.TieEmbeddings = "tiny_qwen2_tied", true })
)

func with(s Spec, f func(*Spec)) Spec {
	if s.RopeScaling != nil {
		rs := *s.RopeScaling
		s.RopeScaling = &rs
	}
	f(&s)
	return s
}

// Presets lists every preset, in a fixed order.
func Presets() []Spec {
	return []Spec{TinyLlamaF32, TinyLlamaBF16, TinyQwen2, TinyQwen2Tied, TinyLlamaLinearRope}
}

// Preset returns the preset with the given name.
func Preset(name string) (Spec, error) {
	var names []string
	for _, s := range Presets() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Spec{}, fmt.Errorf("tinymodel: unknown preset %q (have %v)", name, names)
}

// Validate reports the first inconsistency in s.
func (s *Spec) Validate() error {
	for _, d := range []struct {
		name string
		v    int
	}{{"Hidden", s.Hidden}, {"Layers", s.Layers}, {"Heads", s.Heads}, {"KVHeads", s.KVHeads},
		{"HeadDim", s.HeadDim}, {"Intermediate", s.Intermediate}, {"Vocab", s.Vocab},
		{"MaxPositions", s.MaxPositions}} {
		if d.v <= 0 || d.v > 1<<20 {
			return fmt.Errorf("tinymodel: spec %q: %s = %d out of range (1..%d)", s.Name, d.name, d.v, 1<<20)
		}
	}
	switch {
	case s.Heads%s.KVHeads != 0:
		return fmt.Errorf("tinymodel: spec %q: Heads %d not a multiple of KVHeads %d", s.Name, s.Heads, s.KVHeads)
	case s.HeadDim%2 != 0:
		return fmt.Errorf("tinymodel: spec %q: HeadDim %d is odd (RoPE rotates pairs)", s.Name, s.HeadDim)
	case s.DType != Float32 && s.DType != BFloat16:
		return fmt.Errorf("tinymodel: spec %q: DType %q not float32 or bfloat16", s.Name, s.DType)
	case s.ModelType != "llama" && s.ModelType != "qwen2":
		return fmt.Errorf("tinymodel: spec %q: ModelType %q not llama or qwen2", s.Name, s.ModelType)
	case s.ModelType == "qwen2" && !s.QKVBias:
		return fmt.Errorf("tinymodel: spec %q: qwen2 always has q/k/v biases (QKVBias false)", s.Name)
	case !(s.RopeTheta > 0) || !(s.RMSNormEps > 0) || !(s.LogitGain > 0):
		return fmt.Errorf("tinymodel: spec %q: RopeTheta, RMSNormEps and LogitGain must be > 0", s.Name)
	case s.BOS < 0 || s.BOS >= s.Vocab || s.EOS < 0 || s.EOS >= s.Vocab:
		return fmt.Errorf("tinymodel: spec %q: BOS %d / EOS %d outside vocab %d", s.Name, s.BOS, s.EOS, s.Vocab)
	}
	if rs := s.RopeScaling; rs != nil {
		switch {
		case rs.Type != "llama3" && rs.Type != "linear":
			return fmt.Errorf("tinymodel: spec %q: rope_scaling type %q not llama3 or linear", s.Name, rs.Type)
		case !(rs.Factor > 0):
			return fmt.Errorf("tinymodel: spec %q: rope_scaling factor %v must be > 0", s.Name, rs.Factor)
		case rs.Type == "llama3" && (!(rs.LowFreqFactor > 0) || !(rs.HighFreqFactor > rs.LowFreqFactor) ||
			rs.OriginalMaxPositions <= 0):
			return fmt.Errorf("tinymodel: spec %q: llama3 rope_scaling needs 0 < low < high freq factor and "+
				"original_max_position_embeddings > 0", s.Name)
		}
	}
	return nil
}

// tensorSpec is one weight tensor and how its values are drawn.
type tensorSpec struct {
	name  string
	shape []int   // row-major, PyTorch order: (out, in) for a Linear weight
	std   float64 // value = std * N(0,1), or 1 + std * N(0,1) when norm
	norm  bool
}

// tensors lists the model's tensors (HF names and shapes) in file order (sorted by name is done by the writer).
func (s *Spec) tensors() []tensorSpec {
	h, q, kv := s.Hidden, s.Heads*s.HeadDim, s.KVHeads*s.HeadDim
	inv := func(fanIn int) float64 { return 1 / math.Sqrt(float64(fanIn)) }
	// Untied: embeddings of unit scale. Tied: the embedding is also the output projection, scaled like lm_head
	// so that logits are not dominated by the input token's own embedding (which would make greedy decoding
	// repeat the last token forever).
	embedStd := 1.0
	if s.TieEmbeddings {
		embedStd = s.LogitGain * inv(h)
	}
	ts := []tensorSpec{
		{name: "model.embed_tokens.weight", shape: []int{s.Vocab, h}, std: embedStd}, // (vocab, hidden)
		{name: "model.norm.weight", shape: []int{h}, std: 0.1, norm: true},           // (hidden)
	}
	if !s.TieEmbeddings {
		ts = append(ts, tensorSpec{name: "lm_head.weight", shape: []int{s.Vocab, h}, std: s.LogitGain * inv(h)})
	}
	for l := 0; l < s.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts,
			tensorSpec{name: p + "input_layernorm.weight", shape: []int{h}, std: 0.1, norm: true},
			tensorSpec{name: p + "post_attention_layernorm.weight", shape: []int{h}, std: 0.1, norm: true},
			tensorSpec{name: p + "self_attn.q_proj.weight", shape: []int{q, h}, std: inv(h)},  // (heads*headDim, hidden)
			tensorSpec{name: p + "self_attn.k_proj.weight", shape: []int{kv, h}, std: inv(h)}, // (kvHeads*headDim, hidden)
			tensorSpec{name: p + "self_attn.v_proj.weight", shape: []int{kv, h}, std: inv(h)}, // (kvHeads*headDim, hidden)
			tensorSpec{name: p + "self_attn.o_proj.weight", shape: []int{h, q}, std: inv(q)},  // (hidden, heads*headDim)
			tensorSpec{name: p + "mlp.gate_proj.weight", shape: []int{s.Intermediate, h}, std: inv(h)},
			tensorSpec{name: p + "mlp.up_proj.weight", shape: []int{s.Intermediate, h}, std: inv(h)},
			tensorSpec{name: p + "mlp.down_proj.weight", shape: []int{h, s.Intermediate}, std: inv(s.Intermediate)},
		)
		if s.QKVBias {
			ts = append(ts,
				tensorSpec{name: p + "self_attn.q_proj.bias", shape: []int{q}, std: 0.5},
				tensorSpec{name: p + "self_attn.k_proj.bias", shape: []int{kv}, std: 0.5},
				tensorSpec{name: p + "self_attn.v_proj.bias", shape: []int{kv}, std: 0.5},
			)
		}
	}
	return ts
}

// values draws a tensor's values. The float64 product is converted explicitly before the add so that no
// compiler may fuse it into an FMA (which would change the last bit on some platforms).
func (t *tensorSpec) values(seed uint64) []float32 {
	n := 1
	for _, d := range t.shape {
		n *= d
	}
	g := tensorRNG(seed, t.name)
	out := make([]float32, n)
	for i := range out {
		v := float64(t.std * g.normal())
		if t.norm {
			v += 1
		}
		out[i] = float32(v)
	}
	return out
}
