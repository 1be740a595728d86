package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/omnikv-triton/omnikv-triton/client"
)

// Names of the omnikv model's inputs and request parameters this gateway adds to package client's.
const (
	// InputMessages is the chat input: BYTES [1] holding a JSON array of {"role", "content"}; the
	// model renders it with its chat template and the generation prompt.
	InputMessages = "messages"
	// InputReturnLogprobs is the BOOL [1] switch of the model's logprobs output.
	InputReturnLogprobs = "return_logprobs"
	// ParamApplyChatTemplate is the request parameter (bool) that turns the model's chat template
	// off for /v1/completions, whose prompt is raw text as in OpenAI's API.
	ParamApplyChatTemplate = "apply_chat_template"
)

// maxLogprobs is the most top tokens per position the backend returns (its logprobs 0..20).
const maxLogprobs = 20

type endpoint int

const (
	chatEndpoint endpoint = iota
	completionEndpoint
)

// plan is a checked request: one Triton request per prompt (chat: one), each giving n choices.
type plan struct {
	endpoint     endpoint
	model        string
	stream       bool
	includeUsage bool // stream_options.include_usage
	n            int  // choices per Triton request
	// topLogprobs >= 0 asks for log-probabilities: chat, the top_logprobs most likely tokens at
	// each position; completions, the chosen token and the logprobs most likely ones. -1: none.
	topLogprobs int
	jobs        []job
}

// job is one Triton request; its choices are indexed from first.
type job struct {
	req   client.GenerateRequest
	first int    // index of its first choice
	echo  string // completions with echo: the prompt text, put before the answer
}

// fields holds a request body's top-level keys, undecoded; JSON null counts as absent.
type fields map[string]json.RawMessage

func (f fields) has(key string) bool {
	v, ok := f[key]
	return ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

// get decodes key into dst (a pointer) when present; false when absent or null.
func (f fields) get(key string, dst any, want string) (bool, *Error) {
	if !f.has(key) {
		return false, nil
	}
	if err := json.Unmarshal(f[key], dst); err != nil {
		return false, invalid(key, "%s must be %s, got %s", key, want, f[key])
	}
	return true, nil
}

func (f fields) number(key string, lo, hi float64) (*float64, *Error) {
	var v float64
	if ok, err := f.get(key, &v, "a number"); !ok {
		return nil, err
	}
	if v < lo || v > hi {
		return nil, invalid(key, "%s must be in [%g, %g], got %g", key, lo, hi, v)
	}
	return &v, nil
}

func (f fields) integer(key string, lo, hi int64) (*int64, *Error) {
	var v float64 // 2.0 is an integer in JSON's eyes
	if ok, err := f.get(key, &v, "an integer"); !ok {
		return nil, err
	}
	if v != math.Trunc(v) || v < float64(lo) || v > float64(hi) {
		return nil, invalid(key, "%s must be an integer in [%d, %d], got %s", key, lo, hi, f[key])
	}
	n := int64(v)
	return &n, nil
}

// neutral says which values a field this gateway cannot honour may take (it then means nothing).
type neutral struct {
	ok      func(raw json.RawMessage) bool
	accepts string
}

func oneOf(values ...string) neutral {
	return neutral{func(raw json.RawMessage) bool {
		var c bytes.Buffer
		if json.Compact(&c, raw) != nil {
			return false
		}
		return slices.Contains(values, c.String())
	}, strings.Join(values, " or ")}
}

var anything = neutral{func(json.RawMessage) bool { return true }, "anything (ignored)"}

// Keys of both endpoints: honoured, or accepted at neutral values only.
var (
	commonKeys = []string{"model", "stream", "stream_options", "temperature", "top_p", "max_tokens", "n", "seed", "stop",
		"frequency_penalty", "presence_penalty",
		// extensions, as vLLM's OpenAI server takes them
		"top_k", "min_p", "repetition_penalty", "min_tokens", "ignore_eos", "stop_token_ids"}
	chatKeys       = []string{"messages", "max_completion_tokens", "logprobs", "top_logprobs"}
	completionKeys = []string{"prompt", "logprobs", "echo"}
	commonNeutral  = map[string]neutral{
		"logit_bias": oneOf("{}"),
		"user":       anything, "metadata": anything, "store": anything, "service_tier": anything,
		"safety_identifier": anything, "prompt_cache_key": anything,
	}
	chatNeutral = map[string]neutral{
		"tools": oneOf("[]"), "tool_choice": oneOf(`"none"`, `"auto"`), "functions": oneOf("[]"),
		"function_call": oneOf(`"none"`, `"auto"`), "parallel_tool_calls": anything,
		"response_format": oneOf(`{"type":"text"}`), "modalities": oneOf(`["text"]`), "audio": oneOf(),
		"prediction": oneOf(), "reasoning_effort": oneOf(), "web_search_options": oneOf(), "verbosity": oneOf(),
	}
	completionNeutral = map[string]neutral{"suffix": oneOf(`""`)}
)

// parseRequest reads a request body of ep into a plan. Every error is an *Error naming the field.
func parseRequest(ep endpoint, body []byte) (*plan, *Error) {
	var f fields
	if err := json.Unmarshal(body, &f); err != nil || f == nil {
		return nil, invalid("", "the request body must be a JSON object: %v", errOrNull(err))
	}
	keys, refused := slices.Concat(commonKeys, chatKeys), maps.Clone(commonNeutral)
	maps.Copy(refused, chatNeutral)
	if ep == completionEndpoint {
		keys, refused = slices.Concat(commonKeys, completionKeys, []string{"best_of"}), maps.Clone(commonNeutral)
		maps.Copy(refused, completionNeutral)
	}
	for _, k := range slices.Sorted(maps.Keys(f)) {
		if slices.Contains(keys, k) {
			continue
		}
		spec, known := refused[k]
		if !known {
			return nil, invalid(k, "Unrecognized request argument supplied: %s", k)
		}
		if f.has(k) && !spec.ok(f[k]) {
			accepts := "null"
			if spec.accepts != "" {
				accepts += " or " + spec.accepts
			}
			return nil, unsupported(k, "%s=%s is not supported by this server (it accepts only %s)", k, f[k], accepts)
		}
	}
	p := &plan{endpoint: ep, n: 1, topLogprobs: -1}
	if ok, err := f.get("model", &p.model, "a string"); err != nil {
		return nil, err
	} else if !ok || p.model == "" {
		return nil, invalid("model", "model is required")
	}
	if _, err := f.get("stream", &p.stream, "true or false"); err != nil {
		return nil, err
	}
	if f.has("stream_options") {
		if !p.stream {
			return nil, invalid("stream_options", "stream_options is only allowed when stream is true")
		}
		var so map[string]json.RawMessage
		if _, err := f.get("stream_options", &so, "an object"); err != nil {
			return nil, err
		}
		for k, v := range so {
			switch k {
			case "include_usage":
				if err := json.Unmarshal(v, &p.includeUsage); err != nil {
					return nil, invalid("stream_options.include_usage", "stream_options.include_usage must be true or false, got %s", v)
				}
			case "include_obfuscation": // an OpenAI side-channel padding; nothing to pad here
			default:
				return nil, invalid("stream_options."+k, "Unrecognized stream option: %s (known: include_usage)", k)
			}
		}
	}
	sampling, maxTokens, err := parseSampling(ep, f, p)
	if err != nil {
		return nil, err
	}
	base := client.GenerateRequest{Model: p.model, Stream: p.stream, MaxTokens: maxTokens, ExcludeInput: client.Ptr(true)}
	if p.topLogprobs >= 0 {
		base.Inputs = append(base.Inputs, client.BoolTensor(InputReturnLogprobs, true))
	}
	js, jerr := json.Marshal(sampling)
	if jerr != nil {
		return nil, &Error{Status: 500, Type: "server_error", Message: fmt.Sprintf("sampling_parameters: %v", jerr)}
	}
	base.Inputs = append(base.Inputs, client.StringTensor(client.InputSampling, string(js)))
	if ep == chatEndpoint {
		msgs, err := parseMessages(f)
		if err != nil {
			return nil, err
		}
		r := base
		r.Inputs = append(slices.Clip(r.Inputs), client.StringTensor(InputMessages, msgs))
		// package client always sends text_input; the chat request has none.
		p.jobs = []job{{req: r}}
		return p, nil
	}
	return p, parsePrompts(f, p, base)
}

func errOrNull(err error) any {
	if err == nil {
		return "got null"
	}
	return err
}

// parseSampling reads the sampling fields into the sampling_parameters JSON, and returns
// max_tokens (0: the model's default).
func parseSampling(ep endpoint, f fields, p *plan) (map[string]any, int, *Error) {
	s := map[string]any{}
	put := func(key string, v any) {
		if v != nil {
			s[key] = v
		}
	}
	temp, err := f.number("temperature", 0, 2)
	if err != nil {
		return nil, 0, err
	}
	if temp == nil {
		temp = client.Ptr(1.0) // OpenAI's default; the backend's own is 0 (greedy)
	}
	s["temperature"] = *temp
	for _, k := range []struct {
		key    string
		lo, hi float64
	}{{"top_p", 0, 1}, {"frequency_penalty", -2, 2}, {"presence_penalty", -2, 2}, {"min_p", 0, 1}, {"repetition_penalty", 0, math.MaxFloat32}} {
		v, err := f.number(k.key, k.lo, k.hi)
		if err != nil {
			return nil, 0, err
		}
		if v != nil {
			put(k.key, *v)
		}
	}
	ints := map[string]*int64{}
	for _, k := range []struct {
		key    string
		lo, hi int64
	}{{"max_tokens", 1, math.MaxInt32}, {"max_completion_tokens", 1, math.MaxInt32}, {"n", 1, math.MaxInt32},
		{"seed", math.MinInt64, math.MaxInt64}, {"top_k", -1, math.MaxInt32}, {"min_tokens", 0, math.MaxInt32}} {
		v, err := f.integer(k.key, k.lo, k.hi)
		if err != nil {
			return nil, 0, err
		}
		ints[k.key] = v
	}
	maxTokens := 0
	if v := ints["max_completion_tokens"]; v != nil {
		maxTokens = int(*v)
	} else if v := ints["max_tokens"]; v != nil {
		maxTokens = int(*v)
	}
	if v := ints["n"]; v != nil {
		p.n = int(*v)
		s["n"] = p.n
	}
	if v := ints["seed"]; v != nil {
		s["seed"] = *v
	} else {
		s["seed"] = rand.Int64N(1 << 53) // OpenAI: no seed, no repeat; the backend's default seed is 0
	}
	for _, k := range []string{"top_k", "min_tokens"} {
		if v := ints[k]; v != nil {
			s[k] = *v
		}
	}
	var ignoreEOS bool
	if ok, err := f.get("ignore_eos", &ignoreEOS, "true or false"); err != nil {
		return nil, 0, err
	} else if ok {
		s["ignore_eos"] = ignoreEOS
	}
	var stopIDs []int32
	if ok, err := f.get("stop_token_ids", &stopIDs, "a list of token ids"); err != nil {
		return nil, 0, err
	} else if ok {
		s["stop_token_ids"] = stopIDs
	}
	if f.has("stop") {
		var one string
		var list []string
		if json.Unmarshal(f["stop"], &one) == nil {
			list = []string{one}
		} else if json.Unmarshal(f["stop"], &list) != nil {
			return nil, 0, invalid("stop", "stop must be a string or a list of strings, got %s", f["stop"])
		}
		for i, x := range list {
			if x == "" {
				return nil, 0, invalid("stop", "stop[%d] is empty", i)
			}
		}
		if len(list) > 0 {
			s["stop"] = list
		}
	}
	if err := parseLogprobs(ep, f, p); err != nil {
		return nil, 0, err
	}
	if p.topLogprobs >= 0 {
		s["logprobs"] = p.topLogprobs
	}
	if ep == completionEndpoint {
		bo, err := f.integer("best_of", 1, math.MaxInt32)
		if err != nil {
			return nil, 0, err
		}
		if bo != nil && int(*bo) != p.n {
			return nil, 0, unsupported("best_of", "best_of=%d is not supported: it must be null or equal to n (%d); this server returns every completion it generates", *bo, p.n)
		}
	}
	return s, maxTokens, nil
}

// parseLogprobs reads chat's logprobs (bool) and top_logprobs, or completions' logprobs (int).
func parseLogprobs(ep endpoint, f fields, p *plan) *Error {
	if ep == completionEndpoint {
		v, err := f.integer("logprobs", 0, maxLogprobs)
		if err != nil || v == nil {
			return err
		}
		p.topLogprobs = int(*v)
		return nil
	}
	var want bool
	if _, err := f.get("logprobs", &want, "true or false"); err != nil {
		return err
	}
	top, err := f.integer("top_logprobs", 0, maxLogprobs)
	if err != nil {
		return err
	}
	switch {
	case top != nil && !want:
		return invalid("top_logprobs", "top_logprobs needs logprobs set to true")
	case want && top != nil:
		p.topLogprobs = int(*top)
	case want:
		p.topLogprobs = 0
	}
	return nil
}

// parsePrompts reads /v1/completions' prompt (a string, a list of strings, a list of token ids, or
// a list of such lists) into one job per prompt, each with the chat template off.
func parsePrompts(f fields, p *plan, base client.GenerateRequest) *Error {
	var echo bool
	if _, err := f.get("echo", &echo, "true or false"); err != nil {
		return err
	}
	if !f.has("prompt") {
		return invalid("prompt", "prompt is required")
	}
	// Each form is tried into its own variable: a failed json.Unmarshal may leave a partial result.
	var texts, manyTexts []string
	var ids, manyIDs [][]int32
	var one string
	var oneIDs []int32
	switch raw := f["prompt"]; {
	case json.Unmarshal(raw, &one) == nil:
		texts = []string{one}
	case json.Unmarshal(raw, &manyTexts) == nil:
		texts = manyTexts
	case json.Unmarshal(raw, &oneIDs) == nil:
		ids = [][]int32{oneIDs}
	case json.Unmarshal(raw, &manyIDs) == nil:
		ids = manyIDs
	default:
		return invalid("prompt", "prompt must be a string, a list of strings, a list of token ids or a list of such lists, got %s", raw)
	}
	if len(texts) == 0 && len(ids) == 0 {
		return invalid("prompt", "prompt is empty")
	}
	if echo && len(ids) > 0 {
		return unsupported("echo", "echo with token-id prompts is not supported (this server cannot turn ids back into text)")
	}
	if echo && p.topLogprobs >= 0 {
		return unsupported("echo", "echo with logprobs is not supported (the backend gives no log-probabilities of prompt tokens)")
	}
	add := func(r client.GenerateRequest, echoText string) {
		r.Parameters = map[string]any{ParamApplyChatTemplate: false}
		p.jobs = append(p.jobs, job{req: r, first: len(p.jobs) * p.n, echo: echoText})
	}
	for i, t := range texts {
		if t == "" {
			return invalid("prompt", "prompt[%d] is empty", i)
		}
		r := base
		r.Prompt = t
		add(r, map[bool]string{true: t}[echo])
	}
	for i, v := range ids {
		if len(v) == 0 {
			return invalid("prompt", "prompt[%d] holds no token ids", i)
		}
		r := base
		r.Inputs = append(slices.Clip(r.Inputs), client.Int32Tensor("input_ids", v...))
		add(r, "")
	}
	return nil
}
