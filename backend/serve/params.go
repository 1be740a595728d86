package serve

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
)

// ConfigParam is one config.pbtxt `parameters` key of the generation modes ("generate", "chat"). GenParams is the
// single source of truth for them: ParseGenOptions parses and validates with it, and docs/configuration.md is
// generated from it (ConfigReference; `go run ./backend/cmd/omnikv-configdoc`).
//
// To add a key: add a row to genParams (Key, Type, Default or DefaultDoc, Doc, set), a field to GenOptions,
// then run `go run ./backend/cmd/omnikv-configdoc` to regenerate the reference.
type ConfigParam struct {
	Key  string // the parameters key
	Type string // the value's form, as the reference shows it
	// Default is the value used when the key is absent or empty; ParseGenOptions applies it through set, so
	// it is checked by the same rules as a configured value. "" means the key has no plain default:
	// DefaultDoc says what happens instead.
	Default    string
	DefaultDoc string
	Required   string // non-empty: the key must be given, and a config without it fails with this text
	Modes      string // "" = both generation modes; "chat" = read only by the chat mode
	OmniKV     bool   // read only when omnikv is true
	Doc        string // one paragraph, Markdown
	// set parses and validates v (trimmed, non-empty) into o. cfg gives the model directory. Its error
	// names no key: ParseGenOptions adds "model %q: parameter <key>: ".
	set func(o *GenOptions, v string, cfg Config) error
}

// DefaultText is what the reference shows as the default.
func (p ConfigParam) DefaultText() string {
	if p.DefaultDoc != "" {
		return p.DefaultDoc
	}
	return "`" + p.Default + "`"
}

// GenParams returns the generation modes' parameters in the order ParseGenOptions applies them.
func GenParams() []ConfigParam { return append([]ConfigParam(nil), genParams...) }

// The setters' building blocks.

func intParam(dst func(*GenOptions) *int, lo, hi int) func(*GenOptions, string, Config) error {
	return func(o *GenOptions, v string, _ Config) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%q is not an integer in [%d, %d]", v, lo, hi)
		}
		*dst(o) = n
		return nil
	}
}

func boolParam(dst func(*GenOptions) *bool) func(*GenOptions, string, Config) error {
	return func(o *GenOptions, v string, _ Config) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*dst(o) = b
		return nil
	}
}

func secondsParam(dst func(*GenOptions) *time.Duration) func(*GenOptions, string, Config) error {
	return func(o *GenOptions, v string, _ Config) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0 && f <= 7*24*3600) {
			return fmt.Errorf("%q is not a number of seconds in (0, 604800]", v)
		}
		*dst(o) = time.Duration(f * float64(time.Second))
		return nil
	}
}

func bytesParam(dst func(*GenOptions) *int64) func(*GenOptions, string, Config) error {
	return func(o *GenOptions, v string, _ Config) error {
		n, err := ParseBytes(v)
		if err != nil {
			return err
		}
		*dst(o) = n
		return nil
	}
}

// omnikvParam wraps a setter of an OmniKV key: without "omnikv: true" the key is read but ignored.
func omnikvParam(set func(c *omnikv.Config, v string) error) func(*GenOptions, string, Config) error {
	return func(o *GenOptions, v string, _ Config) error {
		if !o.OmniKV.Enabled {
			return nil
		}
		return set(&o.OmniKV, v)
	}
}

func omnikvCount(dst func(*omnikv.Config) *int) func(*GenOptions, string, Config) error {
	return omnikvParam(func(c *omnikv.Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1<<20 {
			return fmt.Errorf("%q is not an integer >= 0", v)
		}
		*dst(c) = n
		return nil
	})
}

// defaultOmniKV is OmniKV's configuration when "omnikv" is true and no other OmniKV key is given.
var defaultOmniKV = omnikv.DefaultConfig(30)

// genParams: every key the generation modes read, in the order they are applied (the OmniKV keys after
// "omnikv", which decides whether they count). A key not listed here fails the load.
var genParams = []ConfigParam{
	{Key: "mode", Type: "`generate` \\| `chat` \\| `echo`", DefaultDoc: "(required)",
		Doc: "`generate`: stateless generation; `chat`: multi-turn sessions (needs `sequence_batching`); `echo`: the " +
			"plumbing test model (reads no other key). Checked by CheckConfig.",
		set: func(*GenOptions, string, Config) error { return nil }},
	{Key: "weights", Type: "path", DefaultDoc: "(required)",
		Required: "missing: the model file (.gguf) or Hugging Face directory, relative to the model directory",
		Doc: "The model file (`.gguf`) or Hugging Face directory (config.json + safetensors, with tokenizer.json), " +
			"relative to the model directory; absolute paths and `..` are refused, and the path must exist.",
		set: func(o *GenOptions, v string, cfg Config) error {
			path, err := insideDir(cfg.RepositoryDir, v)
			if err != nil {
				return err
			}
			if _, err := os.Stat(path); err != nil {
				return err
			}
			o.Weights = path
			return nil
		}},
	{Key: "kv_dtype", Type: "`fp16` \\| `fp32`", Default: "fp16",
		Doc: "Element type of the KV cache.",
		set: func(o *GenOptions, v string, _ Config) (err error) {
			o.KVDType, err = compute.ParseKVDType(v)
			return err
		}},
	{Key: "max_context", Type: "integer in [1, 4194304]", DefaultDoc: "the model's trained context",
		Doc: "Positions served (SmolLM2's trained context is 8192). A request whose prompt (plus a session's " +
			"cached tokens) plus `max_tokens` exceeds it is refused.",
		set: intParam(func(o *GenOptions) *int { return &o.MaxContext }, 1, 1<<22)},
	{Key: "max_sequences", Type: "integer in [1, 4096]", Default: "32",
		Doc: "Sequences the engine decodes at once, batched into one forward pass per step (more wait). Raise this, " +
			"not the instance count, for concurrency.",
		set: intParam(func(o *GenOptions) *int { return &o.MaxSequences }, 1, 4096)},
	{Key: "max_tokens_cap", Type: "integer in [1, 4194304]", Default: "4096",
		Doc: "The largest `max_tokens` a request may ask for.",
		set: intParam(func(o *GenOptions) *int { return &o.MaxTokensCap }, 1, 1<<22)},
	{Key: "default_max_tokens", Type: "integer in [1, 4194304]", Default: "256", DefaultDoc: "`256`, at most `max_tokens_cap`",
		Doc: "`max_tokens` of a request that gives none. A configured value above `max_tokens_cap` fails the load.",
		set: intParam(func(o *GenOptions) *int { return &o.DefaultTokens }, 1, 1<<22)},
	{Key: "step_tokens", Type: "integer in [1, 65536]", Default: "256",
		Doc: "Tokens per forward step, prompt chunks included. While sequences decode, a prompt is prefilled in " +
			"chunks sized so that a step costs at most 1.8 times the decode-only step (the engine's cost model, " +
			"`backend/engine/sched.go`); alone it takes whole steps.",
		set: intParam(func(o *GenOptions) *int { return &o.StepTokens }, 1, 1<<16)},
	{Key: "max_sessions", Type: "integer in [1, 1048576]", Default: "256", Modes: "chat",
		Doc: "Chat sessions held at once. A new session beyond it is refused at once with UNAVAILABLE (`session " +
			"limit reached: 256 chat sessions are open (max_sessions 256); ...`), never held back; keep Triton's " +
			"`max_candidate_sequences` above it.",
		set: intParam(func(o *GenOptions) *int { return &o.MaxSessions }, 1, 1<<20)},
	{Key: "apply_chat_template", Type: "`true` \\| `false`", Default: "true",
		Doc: "Wrap `text_input` as a user turn in the model's own chat template (its jinja " +
			"`tokenizer.chat_template`), as Hugging Face's `apply_chat_template(..., add_generation_prompt=True)` " +
			"renders it; a chat session keeps the conversation and renders it whole at every turn. A model " +
			"without a template serves the text as it is. A request overrides it with its `apply_chat_template` " +
			"BOOL input (or request parameter, or `sampling_parameters` key); `input_ids` are never templated. " +
			"Set `false` for clients that template the prompt themselves (as for vLLM).",
		set: boolParam(func(o *GenOptions) *bool { return &o.ChatTemplate })},
	{Key: "chat_template", Type: "`true` \\| `false`", DefaultDoc: "as `apply_chat_template`",
		Doc: "The former name of `apply_chat_template`, read when that key is absent.",
		set: func(o *GenOptions, v string, cfg Config) error {
			if strings.TrimSpace(cfg.Params["apply_chat_template"]) != "" {
				return nil
			}
			return boolParam(func(o *GenOptions) *bool { return &o.ChatTemplate })(o, v, cfg)
		}},
	{Key: "session_idle_timeout_s", Type: "seconds in (0, 604800]", Default: "600", Modes: "chat",
		Doc: "A chat session with no turn for this long is freed (fractional seconds allowed). Triton's own " +
			"`max_sequence_idle_microseconds` is separate and does not tell the backend.",
		set: secondsParam(func(o *GenOptions) *time.Duration { return &o.SessionIdle })},
	{Key: "queue_timeout_s", Type: "seconds in (0, 604800]", Default: "30",
		Doc: "How long a request that does not fit in the KV budgets waits for memory before UNAVAILABLE.",
		set: secondsParam(func(o *GenOptions) *time.Duration { return &o.QueueTimeout })},
	{Key: "kv_resident_budget", Type: "size", Default: "0",
		Doc: "KV memory of the resident tier: dense layers and OmniKV's staging (device memory on a GPU, RAM on " +
			"the CPU). `0` is unlimited. Sizes: bytes with an optional unit (`512MiB`, `2GB`, `1073741824`) or a " +
			"fraction of the machine's RAM (`0.25`, `25%`).",
		set: bytesParam(func(o *GenOptions) *int64 { return &o.ResidentBudget })},
	{Key: "kv_offload_budget", Type: "size", Default: "0",
		Doc: "KV memory of the offload tier (OmniKV's sparse layers: host RAM, or the offload file). `0` is " +
			"unlimited. Same forms as `kv_resident_budget`.",
		set: bytesParam(func(o *GenOptions) *int64 { return &o.OffloadBudget })},
	{Key: "kv_free_watermark", Type: "size", Default: "64MiB",
		Doc: "Free KV memory kept for reuse; above it free pages go back to the OS after sequences end.",
		set: bytesParam(func(o *GenOptions) *int64 { return &o.FreeWatermark })},
	{Key: "omnikv", Type: "`true` \\| `false`", Default: "false",
		Doc: "`true` turns on OmniKV dynamic context selection; the keys below count only then. A turn whose " +
			"context fits the budget decodes densely (selection would keep every token).",
		set: func(o *GenOptions, v string, _ Config) error {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			o.OmniKV = omnikv.Config{}
			if on {
				o.OmniKV = defaultOmniKV
				o.OmniKV.FilterLayers = nil // from the model's depth at load, unless given
			}
			return nil
		}},
	{Key: "filter_layers", Type: "ascending layer indices, e.g. `2,8,18`", OmniKV: true,
		DefaultDoc: fmt.Sprintf("`%s` of 30 layers, scaled to the model's depth", layersText(defaultOmniKV.FilterLayers)),
		Doc: "Layers that attend to the whole context and select the tokens the following sparse layers attend " +
			"to. Checked against the model's depth at load (each < the number of layers).",
		set: omnikvParam(func(c *omnikv.Config, v string) (err error) {
			c.FilterLayers, err = omnikv.ParseLayers(v)
			return err
		})},
	{Key: "selector", Type: "`last` \\| `softmax_before_last` \\| `uniform` \\| `exp` \\| `sink_recent`", OmniKV: true,
		Default: defaultOmniKV.Selector.String(),
		Doc: "How filter layers score context tokens (`sink_recent` is a static baseline, not OmniKV). " +
			"See docs/omnikv.md.",
		set: omnikvParam(func(c *omnikv.Config, v string) (err error) {
			c.Selector, err = omnikv.ParseSelector(v)
			return err
		})},
	{Key: "budget", Type: "token count, or a fraction in (0, 1]", OmniKV: true, Default: defaultOmniKV.Budget.String(),
		Doc: "Context tokens each filter layer selects: a count, or a fraction of the context.",
		set: omnikvParam(func(c *omnikv.Config, v string) (err error) {
			c.Budget, err = omnikv.ParseBudget(v)
			return err
		})},
	{Key: "wait_layers", Type: "integer >= 0", OmniKV: true, Default: strconv.Itoa(defaultOmniKV.WaitLayers),
		Doc: "Dense layers right after each filter layer (their KV stays resident).",
		set: omnikvCount(func(c *omnikv.Config) *int { return &c.WaitLayers })},
	{Key: "window", Type: "integer >= 0", OmniKV: true, Default: strconv.Itoa(defaultOmniKV.Window),
		Doc: "Observation window of the `uniform` and `exp` selectors.",
		set: omnikvCount(func(c *omnikv.Config) *int { return &c.Window })},
}

func layersText(l []int) string {
	s := ""
	for i, x := range l {
		if i > 0 {
			s += ","
		}
		s += strconv.Itoa(x)
	}
	return s
}
