package serve

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/sample"
)

// decodeOpts are the options DecodeGenRequest tests run with.
var decodeOpts = GenOptions{MaxTokensCap: 4096, DefaultTokens: 256}

// vllmReq builds a request as a vLLM backend client does: text_input, the sampling_parameters JSON (if
// any), extra tensors, and request parameters.
func vllmReq(sampling string, params map[string]Param, extra ...Tensor) *Request {
	in := []Tensor{StringTensor(InText, "hi")}
	if sampling != "" {
		in = append(in, StringTensor(InSampling, sampling))
	}
	if params == nil {
		params = map[string]Param{}
	}
	return &Request{Inputs: append(in, extra...), Params: params}
}

func str(s string) Param     { return Param{Kind: ParamString, Str: s} }
func i64(n int64) Param      { return Param{Kind: ParamInt, Int: n} }
func boolean(b bool) Param   { return Param{Kind: ParamBool, Bool: b} }
func double(x float64) Param { return Param{Kind: ParamDouble, Double: x} }

func TestDecodeGenRequestAccepts(t *testing.T) {
	def := sample.DefaultParams()
	def.Temperature, def.MaxTokens = 0, decodeOpts.DefaultTokens
	tests := []struct {
		name string
		req  *Request
		edit func(g *GenRequest) // turns the defaults into the expected request
	}{
		{"defaults", vllmReq("", nil), func(g *GenRequest) {}},
		{"vLLM sample client: strings in JSON and as parameters",
			vllmReq(`{"temperature": "0.1", "top_p": "0.95", "max_tokens": "100"}`,
				map[string]Param{"temperature": str("0.1"), "top_p": str("0.95"), "max_tokens": str("100")}),
			func(g *GenRequest) { g.Params.Temperature, g.Params.TopP, g.Params.MaxTokens = 0.1, 0.95, 100 }},
		{"every honoured key as a string",
			vllmReq(`{"temperature": "1", "top_k": "40", "min_p": "0.05", "seed": "7", "repetition_penalty": "1.1",
				"frequency_penalty": "0.5", "presence_penalty": "-0.5", "min_tokens": "3", "n": "2", "logprobs": "2",
				"ignore_eos": "True", "stop_token_ids": "[2, 13]", "stop": "[not a list]"}`, nil),
			func(g *GenRequest) {
				p := &g.Params
				p.Temperature, p.TopK, p.MinP, p.Seed, p.RepetitionPenalty = 1, 40, 0.05, 7, 1.1
				p.FrequencyPenalty, p.PresencePenalty, p.MinTokens, p.N, p.Logprobs = 0.5, -0.5, 3, 2, 2
				p.IgnoreEOS, p.StopTokenIDs, p.Stop, g.LogprobsSet = true, []int32{2, 13}, []string{"[not a list]"}, true
			}},
		{"native JSON types", vllmReq(`{"temperature": 0.5, "top_k": 5.0, "ignore_eos": false, "stop": ["a", "b"], "stop_token_ids": [7]}`, nil),
			func(g *GenRequest) {
				g.Params.Temperature, g.Params.TopK, g.Params.Stop, g.Params.StopTokenIDs = 0.5, 5, []string{"a", "b"}, []int32{7}
			}},
		{"bool strings any case", vllmReq(`{"ignore_eos": " FALSE "}`, map[string]Param{}), func(g *GenRequest) {}},
		{"vLLM's off values: top_k -1, seed -1", vllmReq(`{"top_k": -1, "seed": "-1"}`, nil), func(g *GenRequest) {}},
		{"null is not given", vllmReq(`{"temperature": null, "max_tokens": null, "logprobs": null, "stop": null, "seed": null}`, nil), func(g *GenRequest) {}},
		{"logprobs 0 asks for the chosen token", vllmReq(`{"logprobs": 0}`, nil), func(g *GenRequest) { g.LogprobsSet = true }},
		{"logprobs true is 1", vllmReq(`{"logprobs": true}`, nil), func(g *GenRequest) { g.LogprobsSet, g.Params.Logprobs = true, 1 }},
		{"parameters override the JSON", vllmReq(`{"temperature": 0.5, "top_k": 3}`, map[string]Param{"temperature": double(0.25), "top_k": i64(9)}),
			func(g *GenRequest) { g.Params.Temperature, g.Params.TopK = 0.25, 9 }},
		{"max_tokens input overrides both", vllmReq(`{"max_tokens": 5}`, map[string]Param{"max_tokens": i64(6)}, int32Scalar(InMaxTokens, 7)),
			func(g *GenRequest) { g.Params.MaxTokens = 7 }},
		{"lists as parameters", vllmReq("", map[string]Param{"stop": str(`["x", "y"]`), "stop_token_ids": str("[1, 2]")}),
			func(g *GenRequest) { g.Params.Stop, g.Params.StopTokenIDs = []string{"x", "y"}, []int32{1, 2} }},
		{"one stop and one stop id as parameters", vllmReq("", map[string]Param{"stop": str("."), "stop_token_ids": i64(5)}),
			func(g *GenRequest) { g.Params.Stop, g.Params.StopTokenIDs = []string{"."}, []int32{5} }},
		{"ignore_eos parameter", vllmReq("", map[string]Param{"ignore_eos": boolean(true)}), func(g *GenRequest) { g.Params.IgnoreEOS = true }},
		{"vLLM keys at neutral values",
			vllmReq(`{"best_of": 2, "n": 2, "temperature": 1, "use_beam_search": "false", "length_penalty": 1, "detokenize": true,
				"skip_special_tokens": "true", "spaces_between_special_tokens": true, "include_stop_str_in_output": false,
				"logit_bias": {}, "bad_words": [], "extra_args": {"x": 1}, "lora_name": null, "prompt_logprobs": null,
				"stream_interval": 4, "thinking_token_budget": -1, "skip_clone": true, "flat_logprobs": false}`, nil),
			func(g *GenRequest) { g.Params.N, g.Params.Temperature = 2, 1 }},
		{"best_of 1 is n", vllmReq(`{"best_of": "1"}`, map[string]Param{"use_beam_search": boolean(false), "logit_bias": str("{}")}), func(g *GenRequest) {}},
		{"return_* inputs false", vllmReq("", nil, boolTensor(InReturnFinish, false), boolTensor(InReturnCumLogprob, false),
			boolTensor(InReturnLogprobs, false), boolTensor(InReturnNumInput, false), boolTensor(InReturnNumOutput, false)),
			func(g *GenRequest) {}},
		// One return_* input at a time, so that crossed wires show.
		{InReturnFinish, vllmReq("", nil, boolTensor(InReturnFinish, true)), func(g *GenRequest) { g.Return.FinishReason = true }},
		{InReturnCumLogprob, vllmReq("", nil, boolTensor(InReturnCumLogprob, true)), func(g *GenRequest) { g.Return.CumulativeLogprob = true }},
		{InReturnLogprobs, vllmReq("", nil, boolTensor(InReturnLogprobs, true)), func(g *GenRequest) { g.Return.Logprobs = true }},
		{InReturnNumInput, vllmReq("", nil, boolTensor(InReturnNumInput, true)), func(g *GenRequest) { g.Return.NumInputTokens = true }},
		{InReturnNumOutput, vllmReq("", nil, boolTensor(InReturnNumOutput, true)), func(g *GenRequest) { g.Return.NumOutputTokens = true }},
		{"stream and exclude", vllmReq("", nil, boolTensor(InStream, true), boolTensor(InExclude, true)),
			func(g *GenRequest) { g.Stream, g.Exclude, g.ExcludeSet = true, true, true }},
		{"apply_chat_template input", vllmReq("", nil, boolTensor(InTemplate, false)),
			func(g *GenRequest) { g.Template, g.TemplateSet = false, true }},
		{"apply_chat_template parameter", vllmReq("", map[string]Param{InTemplate: boolean(true)}),
			func(g *GenRequest) { g.Template, g.TemplateSet = true, true }},
		{"return_* as parameters", vllmReq("", map[string]Param{InReturnLogprobs: boolean(true), InStream: boolean(true)}),
			func(g *GenRequest) { g.Return.Logprobs, g.Stream = true, true }},
		{"Triton's own parameters", vllmReq("", map[string]Param{"sequence_id": i64(4), "sequence_start": boolean(true), "sequence_end": boolean(false),
			"priority": i64(1), "timeout": i64(100), "id": str("r1"), "headers": str("{}"), "binary_data_output": boolean(true),
			"triton_enable_empty_final_response": boolean(true)}), func(g *GenRequest) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeGenRequest(tc.req, &decodeOpts)
			if err != nil {
				t.Fatalf("DecodeGenRequest: %v", err)
			}
			want := &GenRequest{Text: "hi", Params: def}
			tc.edit(want)
			if gj, wj := dump(got), dump(want); gj != wj {
				t.Fatalf("decoded\n %s\nwant\n %s", gj, wj)
			}
		})
	}
}

// dump shows a GenRequest field by field (json, so that float32 values print as decoded).
func dump(g *GenRequest) string {
	b, _ := json.Marshal(g)
	return string(b)
}

func TestDecodeGenRequestRefuses(t *testing.T) {
	tests := []struct {
		name string
		req  *Request
		want []string // the message must contain each
	}{
		{"number string", vllmReq(`{"temperature": "warm"}`, nil), []string{"temperature", `"warm"`, "not a number"}},
		{"NaN string", vllmReq(`{"top_p": "nan"}`, nil), []string{"top_p", "not finite"}},
		{"integer string", vllmReq(`{"max_tokens": "1.5"}`, nil), []string{"max_tokens", `"1.5"`, "not an integer"}},
		{"integer parameter string", vllmReq("", map[string]Param{"top_k": str("many")}), []string{"top_k", `"many"`}},
		{"bool string", vllmReq(`{"ignore_eos": "yes"}`, nil), []string{"ignore_eos", `"yes"`, "not true or false"}},
		{"bool number", vllmReq(`{"ignore_eos": 1}`, nil), []string{"ignore_eos", "want true or false"}},
		{"stop_token_ids bad JSON", vllmReq(`{"stop_token_ids": "[1, x]"}`, nil), []string{"stop_token_ids", "[1, x]"}},
		{"stop_token_ids element", vllmReq(`{"stop_token_ids": [1, "a"]}`, nil), []string{"stop_token_ids[1]", `"a"`}},
		{"stop_token_ids over INT32", vllmReq(`{"stop_token_ids": [3000000000]}`, nil), []string{"stop_token_ids[0]", "INT32"}},
		{"stop_token_ids negative", vllmReq(`{"stop_token_ids": [-1]}`, nil), []string{"stop_token_ids[0] must be >= 0"}},
		{"stop element", vllmReq(`{"stop": ["a", 1]}`, nil), []string{"stop[1]", "want a string"}},
		{"frequency_penalty", vllmReq(`{"frequency_penalty": 3}`, nil), []string{"frequency_penalty must be in [-2, 2]"}},
		{"presence_penalty string", vllmReq(`{"presence_penalty": "-2.5"}`, nil), []string{"presence_penalty must be in [-2, 2]"}},
		{"min_tokens negative", vllmReq(`{"min_tokens": -1}`, nil), []string{"min_tokens must be >= 0"}},
		{"min_tokens over max_tokens", vllmReq(`{"min_tokens": 10, "max_tokens": 5}`, nil), []string{"min_tokens must be <= max_tokens"}},
		{"n 0", vllmReq(`{"n": 0, "temperature": 1}`, nil), []string{"n: 0 is not an integer in [1, 16]"}},
		{"n 17", vllmReq(`{"n": 17, "temperature": 1}`, nil), []string{"n: 17"}},
		{"n greedy", vllmReq(`{"n": 2}`, nil), []string{"n must be 1 with greedy sampling"}},
		{"logprobs 21", vllmReq(`{"logprobs": 21}`, nil), []string{"logprobs must be in [0, 20]"}},
		{"logprobs -1 (whole vocabulary)", vllmReq(`{"logprobs": -1}`, nil), []string{"logprobs must be in [0, 20]"}},
		{"top_k -2", vllmReq(`{"top_k": -2}`, nil), []string{"top_k must be >= 0"}},
		{"best_of over n", vllmReq(`{"best_of": 2}`, nil), []string{"best_of=2", "not supported"}},
		{"beam search", vllmReq(`{"use_beam_search": true}`, nil), []string{"use_beam_search=true", "not supported"}},
		{"prompt_logprobs", vllmReq(`{"prompt_logprobs": 0}`, nil), []string{"prompt_logprobs=0", "not supported"}},
		{"lora_name", vllmReq(`{"lora_name": "sql"}`, nil), []string{`lora_name="sql"`, "not supported", "LoRA"}},
		{"lora_name parameter", vllmReq("", map[string]Param{"lora_name": str("sql")}), []string{"lora_name", "not supported"}},
		{"logit_bias", vllmReq(`{"logit_bias": {"5": 1}}`, nil), []string{"logit_bias", "not supported"}},
		{"detokenize false", vllmReq(`{"detokenize": "false"}`, nil), []string{"detokenize", "not supported"}},
		{"include_stop_str_in_output", vllmReq(`{"include_stop_str_in_output": true}`, nil), []string{"include_stop_str_in_output", "not supported"}},
		{"structured outputs", vllmReq(`{"structured_outputs": "{\"regex\": \"a+\"}"}`, nil), []string{"structured_outputs", "not supported"}},
		{"unknown sampling key", vllmReq(`{"temprature": 0.5}`, nil), []string{`unknown key "temprature"`, "temperature"}},
		{"unknown request parameter", vllmReq("", map[string]Param{"temprature": double(0.5)}),
			[]string{`unknown request parameter "temprature"`, "temperature", "sequence_id", InReturnLogprobs}},
		{"sampling_parameters as a parameter", vllmReq("", map[string]Param{InSampling: str("{}")}), []string{InSampling}},
		{"image input", vllmReq("", nil, StringTensor("image", "aGk=")), []string{"image", "not supported"}},
		{"return_logprobs as INT32", vllmReq("", nil, int32Scalar(InReturnLogprobs, 1)), []string{InReturnLogprobs, "BOOL"}},
		{"return_finish_reason parameter as string", vllmReq("", map[string]Param{InReturnFinish: str("true")}), []string{InReturnFinish}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeGenRequest(tc.req, &decodeOpts)
			if err == nil || CodeOf(err) != CodeInvalidArg {
				t.Fatalf("DecodeGenRequest: %v (code %v), want INVALID_ARG", err, CodeOf(err))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// The key tables agree: every honoured key has a kind, no key is both honoured and vLLM-only, and each
// vLLM-only key says what it accepts.
func TestSamplingKeyTables(t *testing.T) {
	if len(samplingKeys) != len(samplingKinds) {
		t.Fatalf("%d sampling keys, %d kinds", len(samplingKeys), len(samplingKinds))
	}
	for _, k := range samplingKeys {
		if _, ok := samplingKinds[k]; !ok {
			t.Errorf("sampling key %s has no kind", k)
		}
		if _, ok := vllmKeys[k]; ok {
			t.Errorf("%s is both honoured and vLLM-only", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(vllmKeys)) {
		if vllmKeys[k].accepts == "" {
			t.Errorf("vLLM key %s: no description of its neutral values", k)
		}
	}
}
