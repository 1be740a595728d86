package openai

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/client/clienttest"
	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

// wireOf builds the Triton requests of body; it fails the test on a parse error.
func wireOf(t *testing.T, ep endpoint, body string) (*plan, []*pb.ModelInferRequest) {
	t.Helper()
	p, perr := parseRequest(ep, []byte(body))
	if perr != nil {
		t.Fatalf("parseRequest(%s): %v", body, perr)
	}
	var out []*pb.ModelInferRequest
	for _, j := range p.jobs {
		w, err := wireRequest(j.req)
		if err != nil {
			t.Fatalf("wireRequest: %v", err)
		}
		out = append(out, w)
	}
	return p, out
}

// sampling decodes the sampling_parameters input of w, without the seed when it was drawn.
func sampling(t *testing.T, w *pb.ModelInferRequest) map[string]any {
	t.Helper()
	s, ok, err := clienttest.InputString(w, "sampling_parameters")
	if err != nil || !ok {
		t.Fatalf("sampling_parameters: ok=%v err=%v", ok, err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("sampling_parameters %q: %v", s, err)
	}
	return m
}

func inputNames(w *pb.ModelInferRequest) []string {
	var names []string
	for _, in := range w.GetInputs() {
		names = append(names, in.GetName())
	}
	return names
}

func TestChatRequestToTriton(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		inputs   []string       // in order
		messages string         // the messages input
		sampling map[string]any // sampling_parameters, seed included when given
		maxTok   int32          // 0: no max_tokens input
		stream   bool
	}{
		{
			name:     "minimal: OpenAI's default temperature, a drawn seed",
			body:     `{"model": "omnikv", "messages": [{"role": "user", "content": "Hi"}]}`,
			inputs:   []string{"stream", "exclude_input_in_output", "sampling_parameters", "messages"},
			messages: `[{"role":"user","content":"Hi"}]`,
			sampling: map[string]any{"temperature": 1.0},
		},
		{
			name: "every honoured field",
			body: `{"model": "omnikv", "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
				{"role": "assistant", "content": "c", "tool_calls": []}], "temperature": 0, "top_p": 0.5, "max_tokens": 9, "max_completion_tokens": 7,
				"seed": 3, "stop": "\n", "frequency_penalty": 0.5, "presence_penalty": -1, "n": 2, "logprobs": true, "top_logprobs": 3, "stream": true,
				"stream_options": {"include_usage": true}, "top_k": 4, "min_p": 0.1, "repetition_penalty": 1.1, "min_tokens": 2, "ignore_eos": true,
				"stop_token_ids": [2], "user": "u1", "logit_bias": {}, "tools": [], "tool_choice": "none", "response_format": {"type": "text"}}`,
			inputs:   []string{"stream", "max_tokens", "exclude_input_in_output", "return_logprobs", "sampling_parameters", "messages"},
			messages: `[{"role":"system","content":"Be brief."},{"role":"user","content":"a\nb"},{"role":"assistant","content":"c"}]`,
			sampling: map[string]any{"temperature": 0.0, "top_p": 0.5, "seed": 3.0, "stop": []any{"\n"}, "frequency_penalty": 0.5,
				"presence_penalty": -1.0, "n": 2.0, "logprobs": 3.0, "top_k": 4.0, "min_p": 0.1, "repetition_penalty": 1.1, "min_tokens": 2.0,
				"ignore_eos": true, "stop_token_ids": []any{2.0}},
			maxTok: 7, // max_completion_tokens wins over max_tokens
			stream: true,
		},
		{
			name:     "logprobs without top_logprobs asks the backend for the chosen token only",
			body:     `{"model": "omnikv", "messages": [{"role": "user", "content": "x"}], "logprobs": true, "seed": 1, "stop": ["a", "b"]}`,
			inputs:   []string{"stream", "exclude_input_in_output", "return_logprobs", "sampling_parameters", "messages"},
			messages: `[{"role":"user","content":"x"}]`,
			sampling: map[string]any{"temperature": 1.0, "logprobs": 0.0, "seed": 1.0, "stop": []any{"a", "b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ws := wireOf(t, chatEndpoint, tt.body)
			if len(ws) != 1 {
				t.Fatalf("%d Triton requests, want 1", len(ws))
			}
			w := ws[0]
			if got := inputNames(w); !reflect.DeepEqual(got, tt.inputs) {
				t.Errorf("inputs %v, want %v", got, tt.inputs)
			}
			if m, _, _ := clienttest.InputString(w, "messages"); m != tt.messages {
				t.Errorf("messages %s, want %s", m, tt.messages)
			}
			s := sampling(t, w)
			if _, ok := tt.sampling["seed"]; !ok {
				if seed, ok := s["seed"].(float64); !ok || seed < 0 {
					t.Errorf("no drawn seed in %v", s)
				}
				delete(s, "seed")
			}
			if !reflect.DeepEqual(s, tt.sampling) {
				t.Errorf("sampling_parameters %v, want %v", s, tt.sampling)
			}
			if v, ok, _ := clienttest.InputInt32(w, "max_tokens"); v != tt.maxTok || ok != (tt.maxTok != 0) {
				t.Errorf("max_tokens %d (sent %v), want %d", v, ok, tt.maxTok)
			}
			if v, _, _ := clienttest.InputBool(w, "stream"); v != tt.stream {
				t.Errorf("stream %v, want %v", v, tt.stream)
			}
			if v, _, _ := clienttest.InputBool(w, "exclude_input_in_output"); !v {
				t.Errorf("exclude_input_in_output not true")
			}
			if _, ok := w.GetParameters()[ParamApplyChatTemplate]; ok {
				t.Errorf("chat request carries %s", ParamApplyChatTemplate)
			}
		})
	}
}

func TestCompletionRequestToTriton(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		inputs [][]string // per Triton request
		prompt []string   // text_input per request ("" for input_ids)
		first  []int      // first choice index per request
		echo   []string
	}{
		{"one string", `{"model": "m", "prompt": "Once"}`,
			[][]string{{"text_input", "stream", "exclude_input_in_output", "sampling_parameters"}}, []string{"Once"}, []int{0}, []string{""}},
		{"list of strings, n=2, echo", `{"model": "m", "prompt": ["A", "B"], "n": 2, "temperature": 0.5, "echo": true, "best_of": 2}`,
			[][]string{{"text_input", "stream", "exclude_input_in_output", "sampling_parameters"}, {"text_input", "stream", "exclude_input_in_output", "sampling_parameters"}},
			[]string{"A", "B"}, []int{0, 2}, []string{"A", "B"}},
		{"token ids", `{"model": "m", "prompt": [1, 2, 3], "logprobs": 2}`,
			[][]string{{"stream", "exclude_input_in_output", "return_logprobs", "sampling_parameters", "input_ids"}}, []string{""}, []int{0}, []string{""}},
		{"lists of token ids", `{"model": "m", "prompt": [[1], [2, 3]], "suffix": ""}`,
			[][]string{{"stream", "exclude_input_in_output", "sampling_parameters", "input_ids"}, {"stream", "exclude_input_in_output", "sampling_parameters", "input_ids"}},
			[]string{"", ""}, []int{0, 1}, []string{"", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ws := wireOf(t, completionEndpoint, tt.body)
			if len(ws) != len(tt.inputs) {
				t.Fatalf("%d Triton requests, want %d", len(ws), len(tt.inputs))
			}
			for i, w := range ws {
				if got := inputNames(w); !reflect.DeepEqual(got, tt.inputs[i]) {
					t.Errorf("request %d: inputs %v, want %v", i, got, tt.inputs[i])
				}
				if s, _, _ := clienttest.InputString(w, "text_input"); s != tt.prompt[i] {
					t.Errorf("request %d: text_input %q, want %q", i, s, tt.prompt[i])
				}
				if p.jobs[i].first != tt.first[i] || p.jobs[i].echo != tt.echo[i] {
					t.Errorf("request %d: first choice %d echo %q, want %d %q", i, p.jobs[i].first, p.jobs[i].echo, tt.first[i], tt.echo[i])
				}
				tmpl, ok := w.GetParameters()[ParamApplyChatTemplate]
				if !ok || tmpl.GetBoolParam() {
					t.Errorf("request %d: %s not sent as false: %v", i, ParamApplyChatTemplate, tmpl)
				}
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	tests := []struct {
		name  string
		ep    endpoint
		body  string
		param string
		code  string
		msg   string
	}{
		{"not JSON", chatEndpoint, `{"model": `, "", "", "must be a JSON object"},
		{"no model", chatEndpoint, `{"messages": [{"role": "user", "content": "x"}]}`, "model", "", "model is required"},
		{"no messages", chatEndpoint, `{"model": "m", "messages": []}`, "messages", "", "at least one message"},
		{"unknown field", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": "x"}], "temprature": 0}`, "temprature", "", "Unrecognized request argument supplied: temprature"},
		{"completion field in chat", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": "x"}], "echo": true}`, "echo", "", "Unrecognized"},
		{"tools", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}`, "tools", "unsupported_parameter", "not supported"},
		{"json mode", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}`, "response_format", "unsupported_parameter", `accepts only null or {"type":"text"}`},
		{"logit_bias", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": "x"}], "logit_bias": {"5": 10}}`, "logit_bias", "unsupported_parameter", "not supported"},
		{"image part", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}`, "messages[0].content[0].type", "unsupported_parameter", `"image_url" is not supported`},
		{"tool role", chatEndpoint, `{"model": "m", "messages": [{"role": "tool", "content": "x"}]}`, "messages[0].role", "unsupported_parameter", "no tool calling"},
		{"bad role", chatEndpoint, `{"model": "m", "messages": [{"role": "robot", "content": "x"}]}`, "messages[0].role", "", `"robot" is not one of`},
		{"bad content", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": 5}]}`, "messages[0].content", "", "must be a string or a list of text parts"},
		{"temperature type", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}`, "temperature", "", `temperature must be a number, got "hot"`},
		{"temperature range", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}`, "temperature", "", "must be in [0, 2]"},
		{"max_tokens 0", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}`, "max_tokens", "", "integer in [1,"},
		{"n fraction", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 1.5}`, "n", "", "must be an integer"},
		{"stop type", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": [1]}`, "stop", "", "string or a list of strings"},
		{"top_logprobs alone", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}`, "top_logprobs", "", "needs logprobs"},
		{"top_logprobs range", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 21}`, "top_logprobs", "", "[0, 20]"},
		{"stream_options without stream", chatEndpoint, `{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": true}}`, "stream_options", "", "only allowed when stream is true"},
		{"no prompt", completionEndpoint, `{"model": "m"}`, "prompt", "", "prompt is required"},
		{"empty prompt", completionEndpoint, `{"model": "m", "prompt": ""}`, "prompt", "", "prompt[0] is empty"},
		{"prompt type", completionEndpoint, `{"model": "m", "prompt": {"a": 1}}`, "prompt", "", "prompt must be a string"},
		{"best_of", completionEndpoint, `{"model": "m", "prompt": "x", "best_of": 3}`, "best_of", "unsupported_parameter", "best_of=3 is not supported"},
		{"suffix", completionEndpoint, `{"model": "m", "prompt": "x", "suffix": "end"}`, "suffix", "unsupported_parameter", "not supported"},
		{"echo ids", completionEndpoint, `{"model": "m", "prompt": [1, 2], "echo": true}`, "echo", "unsupported_parameter", "token-id prompts"},
		{"echo logprobs", completionEndpoint, `{"model": "m", "prompt": "x", "echo": true, "logprobs": 1}`, "echo", "unsupported_parameter", "prompt tokens"},
		{"chat field in completions", completionEndpoint, `{"model": "m", "prompt": "x", "messages": []}`, "messages", "", "Unrecognized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseRequest(tt.ep, []byte(tt.body))
			if err == nil {
				t.Fatalf("no error for %s", tt.body)
			}
			if err.Status != http.StatusBadRequest || err.Type != "invalid_request_error" || err.Param != tt.param || err.Code != tt.code {
				t.Errorf("got status %d type %q param %q code %q, want 400 invalid_request_error %q %q", err.Status, err.Type, err.Param, err.Code, tt.param, tt.code)
			}
			if !strings.Contains(err.Message, tt.msg) {
				t.Errorf("message %q does not contain %q", err.Message, tt.msg)
			}
		})
	}
}
