package main

import (
	"flag"
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
)

// okvFlags are the OmniKV flags shared by generate and bench.
type okvFlags struct {
	filter, selector, budget *string
	wait, window             *int
	dense                    *bool
	offloadDir               *string
	resident                 *bool
}

func addOKVFlags(fs *flag.FlagSet) *okvFlags {
	return &okvFlags{
		filter:   fs.String("filter-layers", "", "OmniKV filter layers, e.g. 2,8,18 (default: the model's preset)"),
		wait:     fs.Int("wait-layers", 1, "dense layers after each filter layer"),
		selector: fs.String("selector", "last", "OmniKV selector: last, softmax_before_last, uniform, exp (or the sink_recent baseline)"),
		budget:   fs.String("budget", "2048", "tokens each filter layer selects: a count (2048) or a fraction of the context (0.067)"),
		window:   fs.Int("window", 16, "observation window of the uniform and exp selectors"),
		dense:    fs.Bool("dense", false, "turn OmniKV off: every layer attends to the whole context"),
		offloadDir: fs.String("offload-dir", "", "keep the sparse layers' KV in a memory-mapped file in this directory "+
			"(contexts beyond RAM); default: host memory"),
		resident: fs.Bool("sparse-resident", false, "keep the sparse layers' KV in device memory (OmniKV without offload; "+
			"the selected rows are still staged, by a copy within the device)"),
	}
}

// config builds the OmniKV configuration for a model of the given depth.
func (f *okvFlags) config(layers int) (omnikv.Config, error) {
	if *f.dense {
		return omnikv.Config{}, nil
	}
	c := omnikv.DefaultConfig(layers)
	if *f.filter != "" {
		l, err := omnikv.ParseLayers(*f.filter)
		if err != nil {
			return c, fmt.Errorf("--filter-layers: %w", err)
		}
		c.FilterLayers = l
	}
	var err error
	if c.Selector, err = omnikv.ParseSelector(*f.selector); err != nil {
		return c, fmt.Errorf("--selector: %w", err)
	}
	if c.Budget, err = omnikv.ParseBudget(*f.budget); err != nil {
		return c, fmt.Errorf("--budget: %w", err)
	}
	c.WaitLayers, c.Window = *f.wait, *f.window
	return c, c.Validate(layers)
}

// apply configures the model.
func (f *okvFlags) apply(m *llama.Model) error {
	c, err := f.config(m.Layers)
	if err != nil {
		return err
	}
	return m.SetOmniKV(c)
}

// kvTier returns the kv cache options the flags ask for: the offload directory and whether the sparse layers'
// KV stays in device memory.
func (f *okvFlags) kvTier() (dir string, resident bool, err error) {
	if *f.resident && *f.offloadDir != "" {
		return "", false, fmt.Errorf("--sparse-resident and --offload-dir exclude each other")
	}
	return *f.offloadDir, *f.resident, nil
}
