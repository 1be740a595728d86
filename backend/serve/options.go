package serve

import (
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

// GenOptions are the generation models' settings, read from config.pbtxt `parameters` and checked at model
// load: a bad value fails the load with an error naming the key.
type GenOptions struct {
	Weights       string          // absolute path of the model file or directory (inside the model directory)
	KVDType       compute.KVDType // kv_dtype: fp16 (default) or fp32
	MaxContext    int             // max_context: 0 = the model's trained context
	MaxSequences  int             // max_sequences: sequences decoding at once (default 32)
	MaxTokensCap  int             // max_tokens_cap: largest max_tokens a request may ask (default 4096)
	DefaultTokens int             // default_max_tokens: when a request gives none (default 256)
	StepTokens    int             // step_tokens: tokens per forward step incl. prefill chunks (default 256)
	ChatTemplate  bool            // chat_template: wrap text_input as a user turn with the model's template
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

// genKeys lists every key the generation modes read (others are rejected, so that a typo fails the load).
var genKeys = []string{"mode", "weights", "kv_dtype", "max_context", "max_sequences", "max_tokens_cap",
	"default_max_tokens", "step_tokens", "chat_template", "session_idle_timeout_s", "omnikv", "filter_layers",
	"wait_layers", "selector", "budget", "window", "max_sessions", "queue_timeout_s", "kv_resident_budget",
	"kv_offload_budget", "kv_free_watermark"}

// ParseGenOptions reads and validates the generation parameters of cfg. The OmniKV filter layers are checked
// against the model's depth later, when the model is loaded.
func ParseGenOptions(cfg Config) (GenOptions, error) {
	o := GenOptions{KVDType: compute.KVF16, MaxSequences: 32, MaxTokensCap: 4096, DefaultTokens: 256, StepTokens: 256, SessionIdle: 600 * time.Second,
		MaxSessions: 256, QueueTimeout: 30 * time.Second, FreeWatermark: 64 << 20}
	bad := func(key, format string, a ...any) error {
		return Errorf(CodeInvalidArg, "model %q: parameter %s: %s", cfg.Name, key, fmt.Sprintf(format, a...))
	}
	for k := range cfg.Params {
		if !slices.Contains(genKeys, k) {
			return o, bad(k, "unknown key (known: %s)", strings.Join(genKeys, ", "))
		}
	}
	get := func(key string) (string, bool) {
		v, ok := cfg.Params[key]
		return strings.TrimSpace(v), ok && strings.TrimSpace(v) != ""
	}
	intIn := func(key string, dst *int, lo, hi int) error {
		v, ok := get(key)
		if !ok {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return bad(key, "%q is not an integer in [%d, %d]", v, lo, hi)
		}
		*dst = n
		return nil
	}
	boolOf := func(key string, dst *bool) error {
		v, ok := get(key)
		if !ok {
			return nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return bad(key, "%q is not true or false", v)
		}
		*dst = b
		return nil
	}
	w, ok := get("weights")
	if !ok {
		return o, bad("weights", "missing: the model file (.gguf) or Hugging Face directory, relative to the model directory")
	}
	path, err := insideDir(cfg.RepositoryDir, w)
	if err != nil {
		return o, bad("weights", "%v", err)
	}
	if _, err := os.Stat(path); err != nil {
		return o, bad("weights", "%v", err)
	}
	o.Weights = path
	if v, ok := get("kv_dtype"); ok {
		if o.KVDType, err = compute.ParseKVDType(v); err != nil {
			return o, bad("kv_dtype", "%v", err)
		}
	}
	for _, e := range []error{
		intIn("max_context", &o.MaxContext, 1, 1<<22),
		intIn("max_sequences", &o.MaxSequences, 1, 4096),
		intIn("max_tokens_cap", &o.MaxTokensCap, 1, 1<<22),
		intIn("default_max_tokens", &o.DefaultTokens, 1, 1<<22),
		intIn("step_tokens", &o.StepTokens, 1, 1<<16),
		intIn("max_sessions", &o.MaxSessions, 1, 1<<20),
		boolOf("chat_template", &o.ChatTemplate),
	} {
		if e != nil {
			return o, e
		}
	}
	if _, set := get("default_max_tokens"); !set {
		o.DefaultTokens = min(o.DefaultTokens, o.MaxTokensCap)
	}
	if o.DefaultTokens > o.MaxTokensCap {
		return o, bad("default_max_tokens", "%d exceeds max_tokens_cap %d", o.DefaultTokens, o.MaxTokensCap)
	}
	for key, dst := range map[string]*time.Duration{"session_idle_timeout_s": &o.SessionIdle, "queue_timeout_s": &o.QueueTimeout} {
		if v, ok := get(key); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f > 0 && f <= 7*24*3600) {
				return o, bad(key, "%q is not a number of seconds in (0, 604800]", v)
			}
			*dst = time.Duration(f * float64(time.Second))
		}
	}
	for key, dst := range map[string]*int64{"kv_resident_budget": &o.ResidentBudget, "kv_offload_budget": &o.OffloadBudget, "kv_free_watermark": &o.FreeWatermark} {
		if v, ok := get(key); ok {
			if *dst, err = ParseBytes(v); err != nil {
				return o, bad(key, "%v", err)
			}
		}
	}
	if o.OmniKV, err = parseOmniKV(get); err != nil {
		return o, Errorf(CodeInvalidArg, "model %q: %w", cfg.Name, err)
	}
	return o, nil
}

// parseOmniKV reads the OmniKV keys; without "omnikv: true" the model is dense.
func parseOmniKV(get func(string) (string, bool)) (omnikv.Config, error) {
	var c omnikv.Config
	on, ok := get("omnikv")
	if !ok {
		return c, nil
	}
	enabled, err := strconv.ParseBool(on)
	if err != nil {
		return c, fmt.Errorf("parameter omnikv: %q is not true or false", on)
	}
	if !enabled {
		return c, nil
	}
	c = omnikv.DefaultConfig(30)
	c.FilterLayers = nil // from the model's depth at load, unless given
	if v, ok := get("filter_layers"); ok {
		if c.FilterLayers, err = omnikv.ParseLayers(v); err != nil {
			return c, fmt.Errorf("parameter filter_layers: %w", err)
		}
	}
	if v, ok := get("selector"); ok {
		if c.Selector, err = omnikv.ParseSelector(v); err != nil {
			return c, fmt.Errorf("parameter selector: %w", err)
		}
	}
	if v, ok := get("budget"); ok {
		if c.Budget, err = omnikv.ParseBudget(v); err != nil {
			return c, fmt.Errorf("parameter budget: %w", err)
		}
	}
	for key, dst := range map[string]*int{"wait_layers": &c.WaitLayers, "window": &c.Window} {
		if v, ok := get(key); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1<<20 {
				return c, fmt.Errorf("parameter %s: %q is not an integer >= 0", key, v)
			}
			*dst = n
		}
	}
	return c, nil
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
