package serve

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
)

// GenOptions are the generation models' settings, read from config.pbtxt `parameters` (the table genParams
// in params.go defines the keys, defaults and checks) at model load: a bad value fails the load with an error
// naming the key.
type GenOptions struct {
	Weights       string          // absolute path of the model file or directory (inside the model directory)
	KVDType       compute.KVDType // kv_dtype: fp16 (default) or fp32
	MaxContext    int             // max_context: 0 = the model's trained context
	MaxSequences  int             // max_sequences: sequences decoding at once (default 32)
	MaxTokensCap  int             // max_tokens_cap: largest max_tokens a request may ask (default 4096)
	DefaultTokens int             // default_max_tokens: when a request gives none (default 256)
	StepTokens    int             // step_tokens: tokens per forward step incl. prefill chunks (default 256)
	ChatTemplate  bool            // apply_chat_template (or chat_template): wrap text_input as a user turn with the model's template
	SessionIdle   time.Duration   // session_idle_timeout_s (chat): idle sessions are freed (default 600 s)
	MaxSessions   int             // max_sessions (chat): sessions held at once; a new one beyond is refused (default 256)
	QueueTimeout  time.Duration   // queue_timeout_s: how long a request may wait for KV memory (default 30 s)
	// KV memory budgets in bytes (0 = unlimited): kv_resident_budget (device memory; RAM on the CPU) and
	// kv_offload_budget (host RAM or the offload file), each as bytes ("512MiB", "2GB", "1073741824") or a
	// fraction of the machine's RAM ("0.25", "25%"); kv_free_watermark: free KV memory kept above it is given
	// back to the OS (default 64MiB).
	ResidentBudget, OffloadBudget, FreeWatermark int64
	OmniKV                                       omnikv.Config // omnikv, filter_layers, wait_layers, selector, budget, window
}

// ParseGenOptions reads and validates the generation parameters of cfg with the table genParams (params.go):
// every key must be one of it; each value, or the key's default, goes through its row's parser. The OmniKV
// filter layers are checked against the model's depth later, when the model is loaded.
func ParseGenOptions(cfg Config) (GenOptions, error) {
	var o GenOptions
	bad := func(key string, err error) error {
		return Errorf(CodeInvalidArg, "model %q: parameter %s: %w", cfg.Name, key, err)
	}
	for k := range cfg.Params {
		if !slices.ContainsFunc(genParams, func(p ConfigParam) bool { return p.Key == k }) {
			keys := make([]string, len(genParams))
			for i, p := range genParams {
				keys[i] = p.Key
			}
			return o, bad(k, fmt.Errorf("unknown key (known: %s)", strings.Join(keys, ", ")))
		}
	}
	for _, p := range genParams {
		v := strings.TrimSpace(cfg.Params[p.Key])
		if v == "" && p.Required != "" {
			return o, bad(p.Key, errors.New(p.Required))
		}
		if v == "" {
			v = p.Default
		}
		if v == "" {
			continue
		}
		if err := p.set(&o, v, cfg); err != nil {
			return o, bad(p.Key, err)
		}
	}
	if strings.TrimSpace(cfg.Params["default_max_tokens"]) == "" {
		o.DefaultTokens = min(o.DefaultTokens, o.MaxTokensCap)
	}
	if o.DefaultTokens > o.MaxTokensCap {
		return o, bad("default_max_tokens", fmt.Errorf("%d exceeds max_tokens_cap %d", o.DefaultTokens, o.MaxTokensCap))
	}
	return o, nil
}

// insideDir resolves rel against dir and refuses a path that leaves dir (absolute paths, "..").
func insideDir(dir, rel string) (string, error) {
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("%q must be relative to the model directory", rel)
	}
	clean := filepath.Clean(rel)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%q escapes the model directory", rel)
	}
	return filepath.Join(dir, clean), nil
}

// ParseBytes reads a memory size: bytes with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB; "512MiB",
// "1.5GB", "1073741824"), or a fraction of the machine's RAM ("0.25", "25%"). "0" is 0.
func ParseBytes(v string) (int64, error) {
	s := strings.TrimSpace(v)
	frac := -1.0
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(f > 0 && f <= 100) {
			return 0, fmt.Errorf("%q is not a percentage in (0, 100]", v)
		}
		frac = f / 100
	} else if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && f <= 1 && strings.Contains(s, ".") {
		frac = f
	}
	if frac > 0 {
		ram, err := physicalRAM()
		if err != nil {
			return 0, fmt.Errorf("%q is a fraction of RAM, but %v", v, err)
		}
		return int64(frac * float64(ram)), nil
	}
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := 1.0
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || f*mult > 1<<60 {
		return 0, fmt.Errorf("%q is not a size (bytes with an optional unit such as 512MiB or 2GB, or a fraction of RAM such as 0.25 or 25%%)", v)
	}
	return int64(f * mult), nil
}

// physicalRAM returns the machine's memory in bytes (Linux: /proc/meminfo MemTotal).
func physicalRAM() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("the machine's RAM is unknown: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb << 10, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("the machine's RAM is unknown: no MemTotal in /proc/meminfo")
}
