package synth

import (
	"fmt"
	"runtime/debug"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// NewSet builds the spec's tensors in memory (Spec.WeightBytes of it, filled in parallel) as a weights.Set
// with the config.json of the shape; maxContext sets max_position_embeddings (0: the shape's).
func NewSet(s Spec, maxContext int) (*weights.Set, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	specs := s.tensors()
	set := &weights.Set{Path: "synthetic:" + s.String(), Format: "synthetic", Tensors: make(map[string]*weights.Tensor, len(specs)),
		Config: s.configJSON(maxContext)}
	ts := make([]*weights.Tensor, len(specs))
	for i, sp := range specs {
		rows := 1
		if len(sp.shape) == 2 {
			rows = sp.shape[0]
		}
		rb, _ := sp.typ.RowBytes(sp.shape[len(sp.shape)-1]) // checked above
		ts[i] = &weights.Tensor{Name: sp.name, Type: sp.typ, Shape: sp.shape, Data: make([]byte, rows*rb)}
		set.Tensors[sp.name] = ts[i]
	}
	fillAll(ts, specs, s.Seed)
	return set, nil
}

// Load builds the spec's weights and binds them on dev. When dev keeps its own copy of the weights (not the
// CPU device, which computes from the host bytes), the host copy is given back once bound, so that a model
// never holds its weights twice in host memory.
func Load(s Spec, dev compute.Device, opt llama.Options) (*llama.Model, error) {
	set, err := NewSet(s, opt.MaxContext)
	if err != nil {
		return nil, err
	}
	m, err := llama.FromSet(set, dev, opt)
	if err != nil {
		return nil, fmt.Errorf("synth: binding %s on %s: %w", s, dev.Name(), err)
	}
	ReleaseHost(m)
	return m, nil
}

// ReleaseHost drops the set's references to the weights' host bytes and returns free memory to the system.
// A device that computes from the host bytes (the CPU device) still holds them through its weights, so this
// frees nothing there; a device that copied them to its own memory lets them go. The model must not read
// its Set's tensor data afterwards (a synthetic set has no tokenizer or RoPE factors to read).
func ReleaseHost(m *llama.Model) {
	for _, t := range m.Set.Tensors {
		t.Data = nil
	}
	debug.FreeOSMemory()
}

// RandomIDs returns n token ids drawn from the model's vocabulary with a seeded generator (a synthetic model
// has no tokenizer; its benchmarks and comparisons feed these).
func RandomIDs(vocab, n int, seed uint64) []int32 {
	r := &rng{state: seed ^ 0x5851f42d4c957f2d}
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(r.next() % uint64(vocab))
	}
	return ids
}
