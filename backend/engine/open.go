package engine

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/compute/devices"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
)

// ModelSpec says which model to serve and where: what Open needs besides the engine's Options.
type ModelSpec struct {
	Weights    string        // model file (.gguf) or Hugging Face directory
	Device     string        // "cpu" or "cuda:N"
	MaxContext int           // positions served; 0 = the model's trained context
	OmniKV     omnikv.Config // Enabled false: dense; FilterLayers nil: the default for the model's depth
}

// Open opens the device, loads the model and its tokenizer, applies OmniKV and starts an engine on them.
// Close closes the model too. Errors say which part failed (KindUnavailable: the device; KindInvalid: the
// model file or the OmniKV settings).
func Open(spec ModelSpec, opt Options) (*Engine, error) {
	dev, err := devices.Open(spec.Device)
	if err != nil {
		return nil, errorf(KindUnavailable, "device %s: %w", spec.Device, err)
	}
	m, err := llama.Load(spec.Weights, dev, llama.Options{MaxContext: spec.MaxContext})
	if err != nil {
		return nil, errorf(KindInvalid, "weights: %w", err)
	}
	fail := func(err error) (*Engine, error) { m.Close(); return nil, err }
	tok, err := llama.LoadTokenizer(m.Set)
	if err != nil {
		return fail(errorf(KindInvalid, "tokenizer: %w", err))
	}
	if spec.OmniKV.Enabled {
		if spec.OmniKV.FilterLayers == nil {
			spec.OmniKV.FilterLayers = omnikv.DefaultConfig(m.Layers).FilterLayers
		}
		if err := m.SetOmniKV(spec.OmniKV); err != nil {
			return fail(errorf(KindInvalid, "%w", err))
		}
	}
	opt.Tokenizer = tok
	e, err := New(m, opt)
	if err != nil {
		return fail(errorf(KindInvalid, "%w", err))
	}
	e.ownsModel = true
	return e, nil
}

// Describe returns a one-line description of the model, its device and its OmniKV settings (logs).
func (e *Engine) Describe() string {
	return fmt.Sprintf("%s on %s, omnikv %s", e.model, e.model.Device().Name(), e.model.OmniKV())
}
