package serve

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/omnikv-triton/omnikv-triton/backend/sample"
)

// Inputs and outputs of the generation models (the vLLM backend's names where they exist).
const (
	InText       = "text_input"              // BYTES (1): the prompt
	InIDs        = "input_ids"               // INT32 (-1): the prompt as token ids (instead of text_input)
	InStream     = "stream"                  // BOOL (1): stream deltas (default false: one response)
	InMaxTokens  = "max_tokens"              // INT32 (1)
	InSampling   = "sampling_parameters"     // BYTES (1): JSON object of sampling settings
	InExclude    = "exclude_input_in_output" // BOOL (1): leave the prompt out of text_output (default false)
	OutText      = "text_output"             // BYTES (1): text (a delta when streaming)
	OutIDs       = "output_ids"              // INT32 (-1): generated ids (the delta's when streaming)
	OutFinish    = "finish_reason"           // BYTES (1): stop, length or cancelled (last response)
	OutPromptN   = "prompt_tokens"           // INT32 (1) (last response)
	OutGenerated = "completion_tokens"       // INT32 (1) (last response)
)

// GenRequest is a decoded, validated generation request.
type GenRequest struct {
	Text      string  // the prompt text ("" when IDs are given)
	IDs       []int32 // the prompt ids (nil when Text is given)
	Stream    bool
	Exclude   bool
	IgnoreEOS bool // ignore_eos: generate max_tokens tokens whatever the model emits (benchmarks)
	Params    sample.Params
}

// samplingKeys are the keys sampling_parameters (and request parameters) may carry.
var samplingKeys = []string{"temperature", "top_p", "top_k", "min_p", "seed", "stop", "repetition_penalty", "max_tokens", "ignore_eos"}

// DecodeGenRequest reads a request's inputs and parameters. Every error is CodeInvalidArg and names the field.
func DecodeGenRequest(req *Request, o *GenOptions) (*GenRequest, error) {
	bad := func(format string, a ...any) error { return Errorf(CodeInvalidArg, format, a...) }
	g := &GenRequest{Params: sample.DefaultParams()}
	g.Params.Temperature = 0 // greedy unless asked
	g.Params.MaxTokens = o.DefaultTokens
	known := []string{InText, InIDs, InStream, InMaxTokens, InSampling, InExclude}
	for _, t := range req.Inputs {
		if !slices.Contains(known, t.Name) {
			return nil, bad("unknown input %q (known: %v)", t.Name, known)
		}
	}
	_, hasText := req.Input(InText)
	ids, hasIDs := req.Input(InIDs)
	switch {
	case hasText && hasIDs:
		return nil, bad("give either %s or %s, not both", InText, InIDs)
	case !hasText && !hasIDs:
		return nil, bad("missing prompt: give %s (STRING) or %s (INT32)", InText, InIDs)
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
	var err error
	if g.Stream, err = boolInput(req, InStream, false); err != nil {
		return nil, err
	}
	if g.Exclude, err = boolInput(req, InExclude, false); err != nil {
		return nil, err
	}
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
		for k := range fields {
			if !slices.Contains(samplingKeys, k) {
				return nil, bad("input %s: unknown key %q (known: %v)", InSampling, k, samplingKeys)
			}
		}
	}
	for _, k := range samplingKeys {
		if p, ok := req.Params[k]; ok {
			fields[k] = paramValue(p)
		}
	}
	if t, ok := req.Input(InMaxTokens); ok {
		v, err := t.Int32s()
		if err != nil || len(v) != 1 {
			return nil, bad("input %s: want one INT32 (%v)", InMaxTokens, err)
		}
		fields["max_tokens"] = json.Number(fmt.Sprint(v[0]))
	}
	if err := applySampling(&g.Params, fields); err != nil {
		return nil, err
	}
	if v, ok := fields["ignore_eos"]; ok {
		b, ok := v.(bool)
		if !ok {
			return nil, bad("ignore_eos: want true or false, got %T", v)
		}
		g.IgnoreEOS = b
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

// applySampling sets params from JSON-ish values, checking each type.
func applySampling(p *sample.Params, f map[string]any) error {
	num := func(key string) (float64, bool, error) {
		v, ok := f[key]
		if !ok {
			return 0, false, nil
		}
		var x float64
		switch n := v.(type) {
		case json.Number:
			var err error
			if x, err = n.Float64(); err != nil {
				return 0, false, Errorf(CodeInvalidArg, "%s: %q is not a number", key, n)
			}
		case float64:
			x = n
		case int64:
			x = float64(n)
		default:
			return 0, false, Errorf(CodeInvalidArg, "%s: want a number, got %T", key, v)
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, false, Errorf(CodeInvalidArg, "%s: %v is not finite", key, x)
		}
		return x, true, nil
	}
	integer := func(key string, dst *int, lo, hi float64) error {
		x, ok, err := num(key)
		if err != nil || !ok {
			return err
		}
		if x != math.Trunc(x) || x < lo || x > hi {
			return Errorf(CodeInvalidArg, "%s: %v is not an integer in [%v, %v]", key, x, lo, hi)
		}
		*dst = int(x)
		return nil
	}
	flt := func(key string, dst *float32) error {
		x, ok, err := num(key)
		if ok {
			*dst = float32(x)
		}
		return err
	}
	for _, e := range []error{
		flt("temperature", &p.Temperature), flt("top_p", &p.TopP), flt("min_p", &p.MinP),
		flt("repetition_penalty", &p.RepetitionPenalty),
		integer("top_k", &p.TopK, math.MinInt32, math.MaxInt32), integer("max_tokens", &p.MaxTokens, math.MinInt32, math.MaxInt32),
	} {
		if e != nil {
			return e
		}
	}
	if x, ok, err := num("seed"); err != nil {
		return err
	} else if ok {
		if x != math.Trunc(x) || x < 0 || x > 1<<53 {
			return Errorf(CodeInvalidArg, "seed: %v is not an integer in [0, 2^53]", x)
		}
		p.Seed = uint64(x)
	}
	if v, ok := f["stop"]; ok {
		switch s := v.(type) {
		case string:
			p.Stop = []string{s}
		case []any:
			for i, e := range s {
				str, ok := e.(string)
				if !ok {
					return Errorf(CodeInvalidArg, "stop[%d]: want a string, got %T", i, e)
				}
				p.Stop = append(p.Stop, str)
			}
		default:
			return Errorf(CodeInvalidArg, "stop: want a string or a list of strings, got %T", v)
		}
	}
	return nil
}

// paramValue converts a request parameter into the value applySampling expects.
func paramValue(p Param) any {
	switch p.Kind {
	case ParamInt:
		return p.Int
	case ParamDouble:
		return p.Double
	case ParamBool:
		return p.Bool
	}
	// A string parameter may hold a number or a JSON list (stop).
	var v any
	dec := json.NewDecoder(bytes.NewReader([]byte(p.Str)))
	dec.UseNumber()
	if dec.Decode(&v) == nil {
		return v
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
