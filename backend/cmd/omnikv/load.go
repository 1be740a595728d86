package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/omnikv-triton/omnikv-triton/backend/compute/devices"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
)

// addDeviceFlag adds --device.
func addDeviceFlag(fs *flag.FlagSet) *string {
	return fs.String("device", "cpu", "compute device by name: "+strings.Join(devices.Kinds(), ", ")+" (kind:ordinal for several)")
}

// loadModel opens the model on a device and its tokenizer, reporting progress on stderr.
func loadModel(path, device string, maxContext int, quiet bool) (*llama.Model, *tokenizer.Tokenizer, error) {
	if path == "" {
		return nil, nil, fmt.Errorf("--model is required")
	}
	t0 := time.Now()
	say := func(format string, a ...any) {
		if !quiet {
			fmt.Fprintf(os.Stderr, format, a...)
		}
	}
	dev, err := devices.Open(device)
	if err != nil {
		return nil, nil, fmt.Errorf("--device: %w", err)
	}
	say("loading %s on %s ...\n", path, dev.Name())
	m, err := llama.Load(path, dev, llama.Options{MaxContext: maxContext})
	if err != nil {
		return nil, nil, err
	}
	say("  %v (%d tensors mapped, %.0f ms)\n", m, len(m.Set.Tensors), ms(time.Since(t0)))
	tok, err := llama.LoadTokenizer(m.Set)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	say("  tokenizer: %d tokens (%.0f ms total)\n", tok.VocabSize(), ms(time.Since(t0)))
	return m, tok, nil
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
