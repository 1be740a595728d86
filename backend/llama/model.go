package llama

import (
	"fmt"
	"strings"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// Model is a loaded model bound to a device.
type Model struct {
	Config
	Path string
	Set  *weights.Set // the mapped file(s); closed by Close
	dev  compute.Device

	embed  *compute.Weight // (vocab, hidden)
	norm   *compute.Weight // (1, hidden)
	output *compute.Weight // (vocab, hidden); the embedding table when tied
	layers []layer
	rope   *compute.RoPE
	okv    omnikv.Config // OmniKV (Enabled false: dense)
	plan   *omnikv.Plan  // nil when dense
}

type layer struct {
	attnNorm   *compute.Weight    // (1, hidden)
	q, k, v, o *compute.Weight    // (heads*headDim, hidden), (kvDim, hidden), (kvDim, hidden), (hidden, heads*headDim)
	qb, kb, vb *compute.Weight    // (1, heads*headDim), (1, kvDim), (1, kvDim); nil without biases
	ffnNorm    *compute.Weight    // (1, hidden)
	gate, up   *compute.Weight    // (ffn, hidden)
	down       *compute.Weight    // (hidden, ffn)
	qkv        [3]*compute.Weight // q, k, v: the weights of one MatMuls
	gateUp     [2]*compute.Weight // gate, up
}

// Options tune loading.
type Options struct {
	// MaxContext caps the positions the model serves (0 = the trained context length). Longer is allowed: RoPE
	// tables are built for it, quality beyond the trained length is the model's own.
	MaxContext int
}

// Load opens a .gguf file or a Hugging Face model directory (config.json + safetensors) and binds its weights.
func Load(path string, dev compute.Device, opt Options) (*Model, error) {
	set, err := weights.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := FromSet(set, dev, opt)
	if err != nil {
		set.Close()
		return nil, err
	}
	return m, nil
}

// FromSet binds an opened weight set; the model owns the set afterwards.
func FromSet(set *weights.Set, dev compute.Device, opt Options) (*Model, error) {
	var cfg *Config
	var err error
	switch {
	case set.GGUF != nil:
		cfg, err = ConfigFromGGUF(set)
	case set.Config != nil:
		cfg, err = ConfigFromHF(set.Config, set.Path)
	default:
		err = fmt.Errorf("%s: no GGUF metadata and no config.json: cannot tell the model's hyperparameters", set.Path)
	}
	if err != nil {
		return nil, err
	}
	m := &Model{Config: *cfg, Path: set.Path, Set: set, dev: dev}
	if opt.MaxContext > 0 {
		m.MaxContext = opt.MaxContext
	}
	if err := m.bind(); err != nil {
		return nil, err
	}
	return m, nil
}

// Close frees the model's device memory and unmaps its files.
func (m *Model) Close() error {
	for _, w := range m.weightList() {
		m.dev.Free(w)
	}
	if m.rope != nil {
		m.dev.Free(m.rope.Table)
	}
	return m.Set.Close()
}

// weightList returns every bound weight once.
func (m *Model) weightList() []*compute.Weight {
	ws := []*compute.Weight{m.embed, m.norm}
	if m.output != m.embed {
		ws = append(ws, m.output)
	}
	for i := range m.layers {
		l := &m.layers[i]
		ws = append(ws, l.attnNorm, l.q, l.k, l.v, l.o, l.qb, l.kb, l.vb, l.ffnNorm, l.gate, l.up, l.down)
	}
	out := ws[:0]
	for _, w := range ws {
		if w != nil {
			out = append(out, w)
		}
	}
	return out
}

// Device returns the device the model is bound to.
func (m *Model) Device() compute.Device { return m.dev }

// names maps the logical weight names to the file's naming scheme.
func (m *Model) name(logical string, layer int) string {
	if m.Set.GGUF != nil {
		gg := map[string]string{
			"embed": "token_embd.weight", "norm": "output_norm.weight", "output": "output.weight",
			"attn_norm": "attn_norm.weight", "q": "attn_q.weight", "k": "attn_k.weight", "v": "attn_v.weight",
			"o": "attn_output.weight", "qb": "attn_q.bias", "kb": "attn_k.bias", "vb": "attn_v.bias",
			"ffn_norm": "ffn_norm.weight", "gate": "ffn_gate.weight", "up": "ffn_up.weight", "down": "ffn_down.weight",
		}[logical]
		if layer >= 0 {
			return fmt.Sprintf("blk.%d.%s", layer, gg)
		}
		return gg
	}
	hf := map[string]string{
		"embed": "model.embed_tokens.weight", "norm": "model.norm.weight", "output": "lm_head.weight",
		"attn_norm": "input_layernorm.weight", "q": "self_attn.q_proj.weight", "k": "self_attn.k_proj.weight",
		"v": "self_attn.v_proj.weight", "o": "self_attn.o_proj.weight", "qb": "self_attn.q_proj.bias",
		"kb": "self_attn.k_proj.bias", "vb": "self_attn.v_proj.bias", "ffn_norm": "post_attention_layernorm.weight",
		"gate": "mlp.gate_proj.weight", "up": "mlp.up_proj.weight", "down": "mlp.down_proj.weight",
	}[logical]
	if layer >= 0 {
		return fmt.Sprintf("model.layers.%d.%s", layer, hf)
	}
	return hf
}

func (m *Model) bind() error {
	c := &m.Config
	var firstErr error
	get := func(logical string, layer int, shape ...int) *compute.Weight {
		if firstErr != nil {
			return nil
		}
		name := m.name(logical, layer)
		t, err := m.Set.Tensor(name, shape...)
		if err != nil {
			firstErr = err
			return nil
		}
		if len(shape) == 1 && t.Type != weights.F32 {
			// Norm weights and biases are used as float32 vectors: convert the few small ones that are stored
			// otherwise (f16/bf16) once, and bind the converted vector.
			vec := make([]float32, t.NumElements())
			if err := weights.DequantizeRow(t.Type, t.Data, vec); err != nil {
				firstErr = fmt.Errorf("%s: tensor %s: %w", m.Path, name, err)
				return nil
			}
			t = &weights.Tensor{Name: t.Name, Type: weights.F32, Shape: []int{len(vec)}, Data: f32Bytes(vec)}
		}
		w, err := m.dev.Bind(t)
		if err != nil {
			firstErr = fmt.Errorf("%s: %w", m.Path, err)
			return nil
		}
		return w
	}
	qDim, kvDim := c.Heads*c.HeadDim, c.KVDim()
	m.embed = get("embed", -1, c.Vocab, c.Hidden)
	m.norm = get("norm", -1, c.Hidden)
	if c.Tied {
		m.output = m.embed
	} else {
		m.output = get("output", -1, c.Vocab, c.Hidden)
	}
	m.layers = make([]layer, c.Layers)
	for i := range m.layers {
		l := &m.layers[i]
		l.attnNorm = get("attn_norm", i, c.Hidden)
		l.q = get("q", i, qDim, c.Hidden)
		l.k = get("k", i, kvDim, c.Hidden)
		l.v = get("v", i, kvDim, c.Hidden)
		l.o = get("o", i, c.Hidden, qDim)
		if c.QKVBias {
			l.qb = get("qb", i, qDim)
			l.kb = get("kb", i, kvDim)
			l.vb = get("vb", i, kvDim)
		}
		l.ffnNorm = get("ffn_norm", i, c.Hidden)
		l.gate = get("gate", i, c.FFN, c.Hidden)
		l.up = get("up", i, c.FFN, c.Hidden)
		l.down = get("down", i, c.Hidden, c.FFN)
		l.qkv, l.gateUp = [3]*compute.Weight{l.q, l.k, l.v}, [2]*compute.Weight{l.gate, l.up}
	}
	if firstErr != nil {
		return firstErr
	}
	var ropeFreqs []float32
	if t, ok := m.Set.Tensors["rope_freqs.weight"]; ok {
		ropeFreqs = make([]float32, t.NumElements())
		if err := weights.DequantizeRow(t.Type, t.Data, ropeFreqs); err != nil {
			return fmt.Errorf("%s: tensor rope_freqs.weight: %w", m.Path, err)
		}
	}
	freq := invFreq(c, ropeFreqs)
	table, err := m.dev.NewTensor(compute.F32, m.MaxContext, c.HeadDim)
	if err != nil {
		return fmt.Errorf("%s: RoPE table for %d positions: %w", m.Path, m.MaxContext, err)
	}
	m.dev.Write(table, 0, ropeTable(freq, m.MaxContext))
	m.rope = &compute.RoPE{Heads: c.Heads, HeadDim: c.HeadDim, Interleaved: c.RopeInterleaved, Table: table}
	return nil
}

// String describes the model in one line.
func (m *Model) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d layers, hidden %d, %d heads (%d kv) x %d, ffn %d, vocab %d, context %d",
		m.Arch, m.Layers, m.Hidden, m.Heads, m.KVHeads, m.HeadDim, m.FFN, m.Vocab, m.MaxContext)
	if m.RopeScaling.Type != "" {
		fmt.Fprintf(&b, ", rope %s x%g", m.RopeScaling.Type, m.RopeScaling.Factor)
	}
	if m.Tied {
		b.WriteString(", tied embeddings")
	}
	return b.String()
}

// WeightBytes is the size of the weight matrices a forward step reads (every layer's and the output head):
// the bytes a decode step streams from memory however many tokens it has.
func (m *Model) WeightBytes() int64 {
	var n int64
	for i := range m.layers {
		l := &m.layers[i]
		for _, w := range []*compute.Weight{l.q, l.k, l.v, l.o, l.gate, l.up, l.down} {
			n += weightBytes(w)
		}
	}
	return n + weightBytes(m.output)
}

func weightBytes(w *compute.Weight) int64 {
	rb, _ := w.Type.RowBytes(w.Cols)
	return int64(w.Rows) * int64(rb)
}
