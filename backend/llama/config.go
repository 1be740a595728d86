package llama

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// Config holds a model's hyperparameters.
type Config struct {
	Arch        string // "llama", "qwen2", "mistral"
	Hidden      int
	Layers      int
	Heads       int
	KVHeads     int
	HeadDim     int
	FFN         int
	Vocab       int
	MaxContext  int // trained context length
	RMSEps      float32
	RopeTheta   float64
	RopeScaling RopeScaling
	// RopeInterleaved: rotate pairs (2i, 2i+1) (llama.cpp's GGUF layout, whose q/k rows are permuted so that
	// this equals Hugging Face's rotate-half) instead of (i, i+HeadDim/2).
	RopeInterleaved bool
	Tied            bool // output projection shares the embedding table
	QKVBias         bool
	BOS             int32   // -1 = none
	EOS             []int32 // ids that end generation
}

// RopeScaling is the rope_scaling of a Hugging Face config.
type RopeScaling struct {
	Type          string  // "", "linear", "llama3"
	Factor        float64 // positions are divided by this (linear) / low frequencies by this (llama3)
	LowFreq       float64 // llama3 low_freq_factor
	HighFreq      float64 // llama3 high_freq_factor
	OriginalMaxPE int     // llama3 original_max_position_embeddings
}

// KVDim is the width of a token's keys (and values): kvHeads * headDim.
func (c *Config) KVDim() int { return c.KVHeads * c.HeadDim }

func (c *Config) validate(src string) error {
	bad := func(field string, v any) error {
		return fmt.Errorf("%s: invalid %s: %v", src, field, v)
	}
	switch {
	case c.Hidden <= 0:
		return bad("hidden size", c.Hidden)
	case c.Layers <= 0:
		return bad("number of layers", c.Layers)
	case c.Heads <= 0:
		return bad("number of attention heads", c.Heads)
	case c.KVHeads <= 0 || c.Heads%c.KVHeads != 0:
		return bad("number of key/value heads (must divide the attention heads)", c.KVHeads)
	case c.HeadDim <= 0 || c.HeadDim%2 != 0:
		return bad("head dimension", c.HeadDim)
	case c.FFN <= 0:
		return bad("intermediate size", c.FFN)
	case c.Vocab <= 0:
		return bad("vocabulary size", c.Vocab)
	case c.MaxContext <= 0:
		return bad("context length", c.MaxContext)
	case !(c.RMSEps > 0):
		return bad("rms_norm_eps", c.RMSEps)
	case !(c.RopeTheta > 0):
		return bad("rope_theta", c.RopeTheta)
	}
	switch c.RopeScaling.Type {
	case "", "default":
	case "linear":
		if !(c.RopeScaling.Factor > 0) {
			return bad("rope_scaling.factor", c.RopeScaling.Factor)
		}
	case "llama3":
		r := c.RopeScaling
		if !(r.Factor > 0) || !(r.LowFreq > 0) || !(r.HighFreq > r.LowFreq) || r.OriginalMaxPE <= 0 {
			return bad("rope_scaling (llama3)", fmt.Sprintf("%+v", r))
		}
	default:
		return fmt.Errorf("%s: unsupported rope_scaling type %q (supported: linear, llama3)", src, c.RopeScaling.Type)
	}
	return nil
}

// hfConfig is the subset of a Hugging Face config.json this package reads.
type hfConfig struct {
	ModelType        string          `json:"model_type"`
	Architectures    []string        `json:"architectures"`
	Hidden           int             `json:"hidden_size"`
	Layers           int             `json:"num_hidden_layers"`
	Heads            int             `json:"num_attention_heads"`
	KVHeads          int             `json:"num_key_value_heads"`
	HeadDim          int             `json:"head_dim"`
	FFN              int             `json:"intermediate_size"`
	Vocab            int             `json:"vocab_size"`
	MaxPos           int             `json:"max_position_embeddings"`
	RMSEps           float64         `json:"rms_norm_eps"`
	RopeTheta        float64         `json:"rope_theta"`
	RopeScaling      json.RawMessage `json:"rope_scaling"`
	RopeParameters   json.RawMessage `json:"rope_parameters"`
	Tie              *bool           `json:"tie_word_embeddings"`
	AttentionBias    bool            `json:"attention_bias"`
	BOS              json.RawMessage `json:"bos_token_id"`
	EOS              json.RawMessage `json:"eos_token_id"`
	HiddenAct        string          `json:"hidden_act"`
	SlidingWindowUse bool            `json:"use_sliding_window"`
}

type hfRope struct {
	Type    string   `json:"rope_type"`
	Type2   string   `json:"type"`
	Theta   float64  `json:"rope_theta"`
	Factor  float64  `json:"factor"`
	Low     float64  `json:"low_freq_factor"`
	High    float64  `json:"high_freq_factor"`
	OrigMax int      `json:"original_max_position_embeddings"`
	Extra   *float64 `json:"attention_factor"`
}

// ConfigFromHF reads a Hugging Face config.json.
func ConfigFromHF(data []byte, src string) (*Config, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("%s: config.json: %w", src, err)
	}
	arch := h.ModelType
	switch arch {
	case "llama", "mistral", "qwen2":
	default:
		return nil, fmt.Errorf("%s: unsupported model_type %q (supported: llama, mistral, qwen2)", src, arch)
	}
	if h.HiddenAct != "" && h.HiddenAct != "silu" {
		return nil, fmt.Errorf("%s: unsupported hidden_act %q (want silu)", src, h.HiddenAct)
	}
	c := &Config{
		Arch: arch, Hidden: h.Hidden, Layers: h.Layers, Heads: h.Heads, KVHeads: h.KVHeads, HeadDim: h.HeadDim,
		FFN: h.FFN, Vocab: h.Vocab, MaxContext: h.MaxPos, RMSEps: float32(h.RMSEps), RopeTheta: h.RopeTheta,
		Tied: h.Tie != nil && *h.Tie, QKVBias: h.AttentionBias || arch == "qwen2", BOS: -1,
	}
	if h.Tie == nil {
		c.Tied = arch == "qwen2" // transformers' default for Qwen2 configs; Llama defaults to untied
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	for _, raw := range []json.RawMessage{h.RopeScaling, h.RopeParameters} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var r hfRope
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("%s: rope_scaling: %w", src, err)
		}
		if r.Theta > 0 {
			c.RopeTheta = r.Theta
		}
		t := r.Type
		if t == "" {
			t = r.Type2
		}
		if t != "" && t != "default" {
			c.RopeScaling = RopeScaling{Type: t, Factor: r.Factor, LowFreq: r.Low, HighFreq: r.High, OriginalMaxPE: r.OrigMax}
		}
	}
	if ids, err := tokenIDs(h.BOS); err != nil {
		return nil, fmt.Errorf("%s: bos_token_id: %w", src, err)
	} else if len(ids) > 0 {
		c.BOS = ids[0]
	}
	eos, err := tokenIDs(h.EOS)
	if err != nil {
		return nil, fmt.Errorf("%s: eos_token_id: %w", src, err)
	}
	c.EOS = eos
	return c, c.validate(src)
}

// tokenIDs reads null, an integer or a list of integers.
func tokenIDs(raw json.RawMessage) ([]int32, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int32
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int32{one}, nil
	}
	var many []int32
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, err
	}
	return many, nil
}

// ConfigFromGGUF reads GGUF metadata.
func ConfigFromGGUF(set *weights.Set) (*Config, error) {
	m, src := set.GGUF, set.Path
	arch, err := m.String("general.architecture")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	switch arch {
	case "llama", "qwen2":
	default:
		return nil, fmt.Errorf("%s: unsupported architecture %q (supported: llama, qwen2)", src, arch)
	}
	var firstErr error
	u := func(key string, def int) int {
		k := arch + "." + key
		if !m.Has(k) {
			if def < 0 && firstErr == nil {
				firstErr = fmt.Errorf("%s: missing metadata %s", src, k)
			}
			return def
		}
		v, err := m.Uint(k)
		if err != nil || v > math.MaxInt32 {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: metadata %s: bad value %d: %v", src, k, v, err)
			}
			return 0
		}
		return int(v)
	}
	f := func(key string, def float64) float64 {
		k := arch + "." + key
		if !m.Has(k) {
			return def
		}
		v, err := m.Float(k)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: metadata %s: %w", src, k, err)
		}
		return v
	}
	c := &Config{
		Arch: arch, Hidden: u("embedding_length", -1), Layers: u("block_count", -1), Heads: u("attention.head_count", -1),
		FFN: u("feed_forward_length", -1), MaxContext: u("context_length", -1),
		RMSEps: float32(f("attention.layer_norm_rms_epsilon", 1e-5)), RopeTheta: f("rope.freq_base", 10000),
		RopeInterleaved: arch == "llama", QKVBias: arch == "qwen2", BOS: -1,
	}
	c.KVHeads = u("attention.head_count_kv", c.Heads)
	if c.Heads > 0 {
		c.HeadDim = u("attention.key_length", c.Hidden/c.Heads)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if m.Has(arch + ".rope.scaling.type") {
		t, _ := m.String(arch + ".rope.scaling.type")
		switch t {
		case "none", "":
		case "linear":
			c.RopeScaling = RopeScaling{Type: "linear", Factor: f("rope.scaling.factor", 1)}
		default:
			return nil, fmt.Errorf("%s: unsupported rope scaling type %q", src, t)
		}
	}
	toks, err := m.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	c.Vocab = len(toks)
	if m.Has(arch + ".vocab_size") {
		c.Vocab = u("vocab_size", c.Vocab)
	}
	if m.Has("tokenizer.ggml.bos_token_id") {
		v, _ := m.Uint("tokenizer.ggml.bos_token_id")
		c.BOS = int32(v)
	}
	if m.Has("tokenizer.ggml.eos_token_id") {
		v, _ := m.Uint("tokenizer.ggml.eos_token_id")
		c.EOS = append(c.EOS, int32(v))
	}
	if m.Has("tokenizer.ggml.eot_token_id") {
		v, _ := m.Uint("tokenizer.ggml.eot_token_id")
		if len(c.EOS) == 0 || v != uint64(c.EOS[0]) {
			c.EOS = append(c.EOS, int32(v))
		}
	}
	_, hasOut := set.Tensors["output.weight"]
	c.Tied = !hasOut
	return c, c.validate(src)
}

// WeightMACs is the multiply-adds of one token through the weight matrices (every layer and the output
// head): the work a token costs apart from its attention.
func (c *Config) WeightMACs() int64 {
	q, kv := c.Heads*c.HeadDim, c.KVDim()
	perLayer := int64(c.Hidden)*int64(q+2*kv) + int64(q)*int64(c.Hidden) + 3*int64(c.Hidden)*int64(c.FFN)
	return int64(c.Layers)*perLayer + int64(c.Vocab)*int64(c.Hidden)
}
