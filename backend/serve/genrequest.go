package serve

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/omnikv-triton/omnikv-triton/backend/sample"
	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
)

// Inputs and outputs of the generation models (the vLLM backend's names where they exist).
const (
	InText       = "text_input"              // BYTES (1): the prompt
	InIDs        = "input_ids"               // INT32 (-1): the prompt as token ids (instead of text_input)
	InStream     = "stream"                  // BOOL (1): stream deltas (default false: one response)
	InMaxTokens  = "max_tokens"              // INT32 (1)
	InSampling   = "sampling_parameters"     // BYTES (1): JSON object of sampling settings
	InExclude    = "exclude_input_in_output" // BOOL (1): leave the prompt out of text_output (default: see Exclude)
	InMessages   = "messages"                // BYTES (1): the prompt as a JSON conversation (chatinputs.go)
	InTemplate   = "apply_chat_template"     // BOOL (1): render text_input with the chat template (chatinputs.go)
	OutText      = "text_output"             // BYTES (1): text (a delta when streaming)
	OutIDs       = "output_ids"              // INT32 (-1): generated ids (the delta's when streaming)
	OutFinish    = "finish_reason"           // BYTES (1): stop, length or cancelled (last response)
	OutPromptN   = "prompt_tokens"           // INT32 (1) (last response)
	OutGenerated = "completion_tokens"       // INT32 (1) (last response)

	// The vLLM backend's optional BOOL (1) inputs asking for its additional outputs (see Returns).
	InReturnFinish     = "return_finish_reason"
	InReturnCumLogprob = "return_cumulative_logprob"
	InReturnLogprobs   = "return_logprobs"
	InReturnNumInput   = "return_num_input_tokens"
	InReturnNumOutput  = "return_num_output_tokens"
)

// genInputs are the inputs a generation request may carry.
var genInputs = []string{InText, InIDs, InMessages, InStream, InMaxTokens, InSampling, InExclude, InTemplate,
	InReturnFinish, InReturnCumLogprob, InReturnLogprobs, InReturnNumInput, InReturnNumOutput}

// vllmInputs are the vLLM backend's inputs this backend does not serve, with the reason. Triton refuses
// them first unless a config lists them.
var vllmInputs = map[string]string{
	"image":             "images are not supported (text-only models)",
	"embedding_request": "embedding requests are not supported",
}

// Returns says which of the vLLM backend's additional outputs a request asked for, through its return_*
// BOOL inputs (or request parameters of the same names); all false by default.
type Returns struct {
	FinishReason      bool // return_finish_reason
	CumulativeLogprob bool // return_cumulative_logprob
	Logprobs          bool // return_logprobs
	NumInputTokens    bool // return_num_input_tokens
	NumOutputTokens   bool // return_num_output_tokens
}

// GenRequest is a decoded, validated generation request.
type GenRequest struct {
	Text     string              // the prompt text ("" when IDs or Messages are given)
	IDs      []int32             // the prompt ids (nil when Text or Messages are given)
	Messages []tokenizer.Message // the prompt as a conversation (messages input), or nil
	// Template is the request's apply_chat_template switch; TemplateSet reports that it was given (else
	// the model's apply_chat_template parameter decides).
	Template, TemplateSet bool
	Stream                bool
	// Exclude leaves the prompt out of text_output; ExcludeSet reports that exclude_input_in_output was
	// given (a templated prompt is left out unless it was given false: see Generator.prepare).
	Exclude, ExcludeSet bool
	Return              Returns
	// LogprobsSet reports that the logprobs sampling key was given, 0 included: per-token log-probabilities
	// are wanted (vLLM: logprobs 0 means the chosen token's alone; Params.Logprobs counts the extra top
	// tokens). Without it the vLLM backend's logprobs output holds JSON null.
	LogprobsSet bool
	// Params are the sampling parameters, ignore_eos (IgnoreEOS) among them. Embedded so that the field
	// is still named Params and gr.IgnoreEOS, once a GenRequest field of its own, now reads
	// Params.IgnoreEOS; write gr.Params.IgnoreEOS in new code.
	sample.Params
}

// samplingKeys are the keys of sampling_parameters (and request parameters) this backend honours.
var samplingKeys = []string{"temperature", "top_p", "top_k", "min_p", "seed", "stop", "repetition_penalty", "max_tokens", "ignore_eos",
	"frequency_penalty", "presence_penalty", "min_tokens", "stop_token_ids", "n", "logprobs"}

// tritonParams are request parameters Triton itself may pass through to a backend: the HTTP generate
// endpoints turn every top-level key that is not an input into a request parameter (so the request "id"
// and the names Triton reserves arrive as parameters there), and gRPC passes binary_data_output through.
// Keys starting with "triton_" are Triton's too.
var tritonParams = []string{"id", "sequence_id", "sequence_start", "sequence_end", "priority", "timeout", "headers", "binary_data_output"}

// boolParams are the BOOL inputs that may also come as request parameters.
var boolParams = []string{InStream, InExclude, InTemplate, InReturnFinish, InReturnCumLogprob, InReturnLogprobs, InReturnNumInput, InReturnNumOutput}

// DecodeGenRequest reads a request's inputs and parameters. Every error is CodeInvalidArg and names the field.
func DecodeGenRequest(req *Request, o *GenOptions) (*GenRequest, error) {
	bad := func(format string, a ...any) error { return Errorf(CodeInvalidArg, format, a...) }
	g := &GenRequest{Params: sample.DefaultParams()}
	g.Params.Temperature = 0 // greedy unless asked
	g.Params.MaxTokens = o.DefaultTokens
	for _, t := range req.Inputs {
		if why, ok := vllmInputs[t.Name]; ok {
			return nil, bad("input %s is not supported: %s", t.Name, why)
		}
		if !slices.Contains(genInputs, t.Name) {
			return nil, bad("unknown input %q (known: %v)", t.Name, genInputs)
		}
	}
	_, hasText := req.Input(InText)
	ids, hasIDs := req.Input(InIDs)
	if _, hasMsgs := req.Input(InMessages); hasMsgs {
		if hasText || hasIDs {
			return nil, bad("give either %s or %s/%s, not both", InMessages, InText, InIDs)
		}
		msgs, err := decodeMessages(req)
		if err != nil {
			return nil, err
		}
		g.Messages = msgs
	}
	switch {
	case g.Messages != nil:
	case hasText && hasIDs:
		return nil, bad("give either %s or %s, not both", InText, InIDs)
	case !hasText && !hasIDs:
		return nil, bad("missing prompt: give %s (STRING), %s (INT32) or %s (STRING: a JSON list of messages)", InText, InIDs, InMessages)
	case hasText:
		s, err := req.InputString(InText)
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, bad("input %s is empty", InText)
		}
		if !utf8.ValidString(s) {
			return nil, bad("input %s is not valid UTF-8 (first bad byte at offset %d)", InText, firstInvalid(s))
		}
		g.Text = s
	default:
		v, err := ids.Int32s()
		if err != nil {
			return nil, bad("input %s: %v", InIDs, err)
		}
		if len(v) == 0 {
			return nil, bad("input %s is empty", InIDs)
		}
		g.IDs = v
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{InStream, &g.Stream}, {InExclude, &g.Exclude}, {InTemplate, &g.Template}, {InReturnFinish, &g.Return.FinishReason},
		{InReturnCumLogprob, &g.Return.CumulativeLogprob}, {InReturnLogprobs, &g.Return.Logprobs},
		{InReturnNumInput, &g.Return.NumInputTokens}, {InReturnNumOutput, &g.Return.NumOutputTokens},
	} {
		var err error
		if *b.dst, err = boolInput(req, b.name, false); err != nil {
			return nil, err
		}
	}
	g.TemplateSet, g.ExcludeSet = switchGiven(req, InTemplate), switchGiven(req, InExclude)
	// Sampling settings: the JSON input, then request parameters of the same names, then the max_tokens input.
	fields := map[string]any{}
	if _, ok := req.Input(InSampling); ok {
		s, err := req.InputString(InSampling)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(s)))
		dec.UseNumber()
		if err := dec.Decode(&fields); err != nil {
			return nil, bad("input %s: malformed JSON: %v", InSampling, err)
		}
		if dec.More() {
			return nil, bad("input %s: trailing data after the JSON object", InSampling)
		}
		if err := templateKey(g, req, fields); err != nil {
			return nil, err
		}
		for k := range fields {
			if !isSamplingKey(k) {
				return nil, bad("input %s: unknown key %q (known: %v; vLLM's other SamplingParams keys only at neutral values)", InSampling, k, samplingKeys)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(req.Params)) {
		switch {
		case isSamplingKey(k):
			fields[k] = paramValue(k, req.Params[k])
		case slices.Contains(boolParams, k), slices.Contains(tritonParams, k), strings.HasPrefix(k, "triton_"):
			// read by boolInput above, or Triton's own
		default:
			return nil, bad("unknown request parameter %q (known: sampling keys %v, inputs %v, Triton's %v; vLLM's other SamplingParams keys only at neutral values)",
				k, samplingKeys, boolParams, tritonParams)
		}
	}
	if t, ok := req.Input(InMaxTokens); ok {
		v, err := t.Int32s()
		if err != nil || len(v) != 1 {
			return nil, bad("input %s: want one INT32 (%v)", InMaxTokens, err)
		}
		fields["max_tokens"] = json.Number(fmt.Sprint(v[0]))
	}
	if err := applySampling(g, fields); err != nil {
		return nil, err
	}
	if g.Params.MaxTokens <= 0 {
		return nil, bad("max_tokens must be > 0, got %d", g.Params.MaxTokens)
	}
	if g.Params.MaxTokens > o.MaxTokensCap {
		return nil, bad("max_tokens %d exceeds this model's cap of %d", g.Params.MaxTokens, o.MaxTokensCap)
	}
	if err := g.Params.Validate(); err != nil {
		return nil, bad("sampling parameters: %v", err)
	}
	return g, nil
}

// kind is the type a sampling key takes. A string converts as the vLLM backend converts it: "0.7" to a
// number, "100" to an integer, "true"/"false" (any case) to a boolean; a list may come as JSON text.
type kind uint8

const (
	kFloat   kind = iota // a number
	kInt                 // an integer
	kBool                // true or false
	kStrings             // a string (one) or a list of strings
	kInts                // a list of integers (or one)
	kAny                 // any JSON value, left as decoded
)

// samplingKinds gives the kind of each of samplingKeys.
var samplingKinds = map[string]kind{"temperature": kFloat, "top_p": kFloat, "top_k": kInt, "min_p": kFloat, "seed": kInt,
	"stop": kStrings, "repetition_penalty": kFloat, "max_tokens": kInt, "ignore_eos": kBool, "frequency_penalty": kFloat,
	"presence_penalty": kFloat, "min_tokens": kInt, "stop_token_ids": kInts, "n": kInt, "logprobs": kInt}

// vllmKey is a field of vLLM's SamplingParams (or the vLLM backend's lora_name) that this backend does not
// implement: a request may give it at a neutral value (asking for nothing this backend does not do) and is
// refused otherwise. null is neutral for every key.
type vllmKey struct {
	kind    kind
	neutral func(v any, n int) bool // v converted to kind; n is the request's number of completions
	accepts string                  // the neutral values, for the error
}

func is(want any) func(any, int) bool { return func(v any, _ int) bool { return v == want } }
func anyValue(any, int) bool          { return true }
func onlyNull(any, int) bool          { return false }
func empty(v any, _ int) bool {
	switch x := v.(type) {
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// vllmKeys are vLLM's other SamplingParams fields (current and recent releases) and lora_name.
var vllmKeys = map[string]vllmKey{
	"best_of":                       {kInt, func(v any, n int) bool { return v == int64(n) }, "null, or equal to n"},
	"use_beam_search":               {kBool, is(false), "false"},
	"length_penalty":                {kFloat, is(1.0), "1 (beam search only)"},
	"early_stopping":                {kBool, is(false), "false (beam search only)"},
	"prompt_logprobs":               {kAny, onlyNull, "null"},
	"prompt_logprob_token_ids":      {kAny, onlyNull, "null"},
	"prompt_logprob_start":          {kAny, onlyNull, "null"},
	"logprob_token_ids":             {kAny, onlyNull, "null"},
	"flat_logprobs":                 {kBool, is(false), "false"},
	"detokenize":                    {kBool, is(true), "true"},
	"skip_special_tokens":           {kBool, is(true), "true: special tokens are always left out of text_output"},
	"spaces_between_special_tokens": {kBool, is(true), "true"},
	"include_stop_str_in_output":    {kBool, is(false), "false: a stop string is never returned"},
	"output_kind":                   {kAny, onlyNull, "null"},
	"stream_interval":               {kInt, func(v any, _ int) bool { return v.(int64) >= 1 }, "null or >= 1 (a hint: every token is streamed)"},
	"skip_clone":                    {kBool, anyValue, "true or false (ignored)"},
	"skip_reading_prefix_cache":     {kBool, anyValue, "true or false (ignored)"},
	"extra_args":                    {kAny, anyValue, "anything (ignored, as vLLM's own samplers do)"},
	"structured_outputs":            {kAny, onlyNull, "null"},
	"guided_decoding":               {kAny, onlyNull, "null"},
	"logit_bias":                    {kAny, empty, "null or {}"},
	"allowed_token_ids":             {kAny, onlyNull, "null"},
	"bad_words":                     {kAny, empty, "null or []"},
	"thinking_token_budget":         {kInt, is(int64(-1)), "null or -1"},
	"repetition_detection":          {kAny, onlyNull, "null"},
	"routed_experts_prompt_start":   {kInt, is(int64(0)), "0"},
	"trace_decode_token_ids":        {kAny, onlyNull, "null"},
	"truncate_prompt_tokens":        {kAny, onlyNull, "null"},
	"logits_processors":             {kAny, onlyNull, "null"},
	"lora_name":                     {kAny, onlyNull, "null: LoRA adapters are not supported"},
}

// isSamplingKey reports whether key may appear in sampling_parameters or as a request parameter.
func isSamplingKey(key string) bool {
	_, honoured := samplingKinds[key]
	_, vllm := vllmKeys[key]
	return honoured || vllm
}

// keyKind returns the kind of a sampling key.
func keyKind(key string) kind {
	if k, ok := samplingKinds[key]; ok {
		return k
	}
	return vllmKeys[key].kind
}

// applySampling sets g's sampling parameters from JSON-ish values (json.Number, float64, int64, bool,
// string, []any, map[string]any; nil means not given), checking each type, then checks the keys this
// backend honours only at neutral values.
func applySampling(g *GenRequest, f map[string]any) error {
	p := &g.Params
	get := func(key string) (any, bool, error) {
		v, ok := f[key]
		if !ok || v == nil {
			return nil, false, nil
		}
		x, err := convert(key, keyKind(key), v)
		return x, err == nil, err
	}
	flt := func(key string, dst *float32) error {
		x, ok, err := get(key)
		if ok {
			*dst = float32(x.(float64))
		}
		return err
	}
	integer := func(key string, dst *int, lo, hi int64) error {
		x, ok, err := get(key)
		if !ok {
			return err
		}
		if n := x.(int64); n < lo || n > hi {
			return Errorf(CodeInvalidArg, "%s: %v is not an integer in [%v, %v]", key, n, lo, hi)
		}
		*dst = int(x.(int64))
		return nil
	}
	boolean := func(key string, dst *bool) error {
		x, ok, err := get(key)
		if ok {
			*dst = x.(bool)
		}
		return err
	}
	if b, ok := f["logprobs"].(bool); ok { // vLLM reads true as 1 (and int(False) is 0)
		f["logprobs"] = json.Number(map[bool]string{false: "0", true: "1"}[b])
	}
	for _, e := range []error{
		flt("temperature", &p.Temperature), flt("top_p", &p.TopP), flt("min_p", &p.MinP),
		flt("repetition_penalty", &p.RepetitionPenalty), flt("frequency_penalty", &p.FrequencyPenalty),
		flt("presence_penalty", &p.PresencePenalty),
		integer("top_k", &p.TopK, math.MinInt32, math.MaxInt32), integer("max_tokens", &p.MaxTokens, math.MinInt32, math.MaxInt32),
		integer("min_tokens", &p.MinTokens, math.MinInt32, math.MaxInt32), integer("n", &p.N, 1, sample.MaxN),
		integer("logprobs", &p.Logprobs, math.MinInt32, math.MaxInt32), boolean("ignore_eos", &p.IgnoreEOS),
	} {
		if e != nil {
			return e
		}
	}
	if p.TopK == -1 {
		p.TopK = 0 // vLLM: -1 is off, as 0
	}
	if v, ok := f["logprobs"]; ok && v != nil {
		g.LogprobsSet = true
	}
	if x, ok, err := get("seed"); err != nil {
		return err
	} else if ok && x.(int64) != -1 { // vLLM: -1 is no seed
		if n := x.(int64); n < 0 || n > 1<<53 {
			return Errorf(CodeInvalidArg, "seed: %v is not an integer in [0, 2^53]", n)
		}
		p.Seed = uint64(x.(int64))
	}
	if x, ok, err := get("stop"); err != nil {
		return err
	} else if ok {
		p.Stop = x.([]string)
	}
	if x, ok, err := get("stop_token_ids"); err != nil {
		return err
	} else if ok {
		p.StopTokenIDs = x.([]int32)
	}
	for _, key := range slices.Sorted(maps.Keys(vllmKeys)) {
		x, ok, err := get(key)
		if err != nil {
			return err
		}
		if spec := vllmKeys[key]; ok && !spec.neutral(x, max(p.N, 1)) {
			shown, _ := json.Marshal(f[key])
			return Errorf(CodeInvalidArg, "sampling parameter %s=%s is not supported by this backend (it accepts only %s)", key, shown, spec.accepts)
		}
	}
	return nil
}

// convert turns a sampling value into its kind: float64 (finite), int64, bool, []string, []int32, or the
// value itself for kAny. Errors are CodeInvalidArg and name the key and the value.
func convert(key string, k kind, v any) (any, error) {
	bad := func(format string, a ...any) error { return Errorf(CodeInvalidArg, key+": "+format, a...) }
	switch k {
	case kFloat:
		var x float64
		var err error
		switch n := v.(type) {
		case json.Number:
			if x, err = n.Float64(); err != nil {
				return nil, bad("%q is not a number", n)
			}
		case float64:
			x = n
		case int64:
			x = float64(n)
		case string:
			if x, err = strconv.ParseFloat(strings.TrimSpace(n), 64); err != nil {
				return nil, bad("%q is not a number", n)
			}
		default:
			return nil, bad("want a number, got %T", v)
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, bad("%v is not finite", x)
		}
		return x, nil
	case kInt:
		switch n := v.(type) {
		case json.Number:
			if i, err := n.Int64(); err == nil {
				return i, nil
			}
			if x, err := n.Float64(); err == nil && x == math.Trunc(x) && math.Abs(x) < 1<<62 {
				return int64(x), nil
			}
			return nil, bad("%s is not an integer", n)
		case float64:
			if n != math.Trunc(n) || math.Abs(n) >= 1<<62 {
				return nil, bad("%v is not an integer", n)
			}
			return int64(n), nil
		case int64:
			return n, nil
		case string:
			i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
			if err != nil {
				return nil, bad("%q is not an integer", n)
			}
			return i, nil
		}
		return nil, bad("want an integer, got %T", v)
	case kBool:
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			if t := strings.TrimSpace(b); strings.EqualFold(t, "true") || strings.EqualFold(t, "false") {
				return strings.EqualFold(t, "true"), nil
			}
			return nil, bad("%q is not true or false", b)
		}
		return nil, bad("want true or false, got %T", v)
	case kStrings:
		switch s := v.(type) {
		case string:
			return []string{s}, nil
		case []any:
			out := make([]string, len(s))
			for i, e := range s {
				str, ok := e.(string)
				if !ok {
					return nil, Errorf(CodeInvalidArg, "%s[%d]: want a string, got %T", key, i, e)
				}
				out[i] = str
			}
			return out, nil
		}
		return nil, bad("want a string or a list of strings, got %T", v)
	case kInts:
		switch s := v.(type) {
		case string:
			var list any
			dec := json.NewDecoder(strings.NewReader(s))
			dec.UseNumber()
			if dec.Decode(&list) != nil || dec.More() {
				return nil, bad("%q is not a JSON list of integers", s)
			}
			if _, ok := list.([]any); !ok {
				return nil, bad("%q is not a JSON list of integers", s)
			}
			return convert(key, k, list)
		case []any:
			out := make([]int32, len(s))
			for i, e := range s {
				x, err := convert(fmt.Sprintf("%s[%d]", key, i), kInt, e)
				if err != nil {
					return nil, err
				}
				if n := x.(int64); n < math.MinInt32 || n > math.MaxInt32 {
					return nil, Errorf(CodeInvalidArg, "%s[%d]: %v is not an INT32", key, i, n)
				}
				out[i] = int32(x.(int64))
			}
			return out, nil
		case json.Number, float64, int64:
			return convert(key, k, []any{s})
		}
		return nil, bad("want a list of integers, got %T", v)
	}
	return v, nil
}

// paramValue converts a request parameter into the value applySampling expects. A string parameter stays a
// string (converted with the key's kind later, as in sampling_parameters), except that a list or object,
// which a request parameter can only carry as JSON text, is decoded for the keys that take one.
func paramValue(key string, p Param) any {
	switch p.Kind {
	case ParamInt:
		return p.Int
	case ParamDouble:
		return p.Double
	case ParamBool:
		return p.Bool
	}
	if k := keyKind(key); k == kStrings || k == kAny {
		var v any
		dec := json.NewDecoder(strings.NewReader(p.Str))
		dec.UseNumber()
		if dec.Decode(&v) == nil && !dec.More() {
			switch v.(type) {
			case []any, string:
				return v
			}
			if k == kAny {
				return v
			}
		}
	}
	return p.Str
}

// boolInput reads an optional BOOL (1) input, or the request parameter of the same name.
func boolInput(req *Request, name string, def bool) (bool, error) {
	if t, ok := req.Input(name); ok {
		if t.DataType != TypeBool {
			return false, Errorf(CodeInvalidArg, "input %s: want BOOL, got %v", name, t.DataType)
		}
		if err := t.Validate(); err != nil {
			return false, Errorf(CodeInvalidArg, "input %s: %v", name, err)
		}
		if len(t.Data) != 1 {
			return false, Errorf(CodeInvalidArg, "input %s: want one BOOL, got %d", name, len(t.Data))
		}
		return t.Data[0] != 0, nil
	}
	if p, ok := req.Params[name]; ok {
		if p.Kind != ParamBool {
			return false, Errorf(CodeInvalidArg, "parameter %s: want a BOOL, got %v", name, p)
		}
		return p.Bool, nil
	}
	return def, nil
}

func firstInvalid(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return len(s)
}

// int32Scalar builds an INT32 (1) tensor.
func int32Scalar(name string, v int) Tensor {
	return Tensor{Name: name, DataType: TypeInt32, Shape: []int64{1}, Data: binary.LittleEndian.AppendUint32(nil, uint32(v))}
}
