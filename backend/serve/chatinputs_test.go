package serve

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

func promptTokens(t *testing.T, r *Response) int {
	t.Helper()
	o := output(r, OutPromptN)
	if len(o.Data) != 4 {
		t.Fatalf("no %s in %v", OutPromptN, r)
	}
	return int(int32(binary.LittleEndian.Uint32(o.Data)))
}

// The omnikv model wraps text_input in the model's chat template by default; apply_chat_template=false (the
// input, the request parameter or the sampling_parameters key) serves the text as it is; messages render a
// conversation. What the prompt was is told by prompt_tokens and by the answer.
func TestChatTemplateSwitch(t *testing.T) {
	const q = "What is 2+2?"
	g := newGen(t, "generate", nil)
	raw := newGen(t, "generate", map[string]string{"apply_chat_template": "false"})
	msgs := StringTensor(InMessages, `[{"role": "user", "content": "What is 2+2?"}]`)
	max := int32Scalar(InMaxTokens, 16)
	withParam := func(r *Request, k string, v bool) *Request {
		r.Params[k] = Param{Kind: ParamBool, Bool: v}
		return r
	}
	type result struct {
		text   string
		ids    []int32
		prompt int
	}
	do := func(t *testing.T, g *Generator, r *Request) result {
		t.Helper()
		text, ids, final, err := run(t, g, r)
		if err != nil {
			t.Fatal(err)
		}
		return result{text, ids, promptTokens(t, final)}
	}
	templated := do(t, g, textReq(q, max))
	plain := do(t, g, textReq(q, max, boolTensor(InTemplate, false)))
	if templated.prompt <= plain.prompt+5 || len(templated.ids) < 2 {
		t.Fatalf("templated prompt %d tokens (answer %v), raw %d: the template was not applied", templated.prompt, templated.ids, plain.prompt)
	}
	if strings.HasPrefix(templated.text, q) || !strings.Contains(templated.text, "4") {
		t.Fatalf("templated answer %q: want the answer alone (a templated prompt is not echoed)", templated.text)
	}
	if !strings.HasPrefix(plain.text, q) {
		t.Fatalf("raw answer %q: the vLLM default echoes the prompt", plain.text)
	}
	cases := []struct {
		name string
		g    *Generator
		req  *Request
		want result
		echo bool // text_output starts with text_input
	}{
		{"raw by request parameter", g, withParam(textReq(q, max), InTemplate, false), plain, true},
		{"raw by sampling_parameters", g, textReq(q, max, StringTensor(InSampling, `{"apply_chat_template": false}`)), plain, true},
		{"raw by sampling_parameters string", g, textReq(q, max, StringTensor(InSampling, `{"apply_chat_template": "False"}`)), plain, true},
		{"input beats sampling_parameters", g, textReq(q, max, boolTensor(InTemplate, true), StringTensor(InSampling, `{"apply_chat_template": false}`)), templated, false},
		{"raw by the model's parameter", raw, textReq(q, max), plain, true},
		{"templated on a raw model by request", raw, textReq(q, max, boolTensor(InTemplate, true)), templated, false},
		{"messages", g, &Request{Inputs: []Tensor{msgs, max}}, templated, false},
		{"messages on a raw model", raw, &Request{Inputs: []Tensor{msgs, max}}, templated, false},
		{"templated, prompt asked back", g, textReq(q, max, boolTensor(InExclude, false)), templated, true},
		{"raw, prompt left out", g, textReq(q, max, boolTensor(InTemplate, false), boolTensor(InExclude, true)), plain, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.req.Params == nil {
				c.req.Params = map[string]Param{}
			}
			got := do(t, c.g, c.req)
			if got.prompt != c.want.prompt || !slices.Equal(got.ids, c.want.ids) {
				t.Fatalf("prompt %d tokens, answer %v; want %d, %v", got.prompt, got.ids, c.want.prompt, c.want.ids)
			}
			if echo := strings.HasPrefix(got.text, q); echo != c.echo {
				t.Fatalf("text_output %q: echo %v, want %v", got.text, echo, c.echo)
			}
		})
	}
}

func TestChatTemplateInputErrors(t *testing.T) {
	g := newGen(t, "generate", nil)
	chat := newGen(t, "chat", nil)
	m := func(s string) Tensor { return StringTensor(InMessages, s) }
	cases := []struct {
		name string
		g    *Generator
		req  *Request
		want string
	}{
		{"malformed JSON", g, &Request{Inputs: []Tensor{m(`[{"role": "user"`)}}, "input messages: malformed JSON"},
		{"not a list", g, &Request{Inputs: []Tensor{m(`{"role": "user", "content": "hi"}`)}}, "input messages: malformed JSON"},
		{"empty list", g, &Request{Inputs: []Tensor{m(`[]`)}}, "input messages: empty"},
		{"null message", g, &Request{Inputs: []Tensor{m(`[null]`)}}, "message 0 is not an object"},
		{"no content", g, &Request{Inputs: []Tensor{m(`[{"role": "user"}]`)}}, `message 0: missing "content"`},
		{"content not a string", g, &Request{Inputs: []Tensor{m(`[{"role": "user", "content": "a"}, {"role": "assistant", "content": 3}]`)}}, `message 1: "content" must be a string, got 3`},
		{"null content", g, &Request{Inputs: []Tensor{m(`[{"role": "user", "content": null}]`)}}, `"content" must be a string`},
		{"empty role", g, &Request{Inputs: []Tensor{m(`[{"role": "", "content": "a"}]`)}}, "message 0: empty role"},
		{"unknown key", g, &Request{Inputs: []Tensor{m(`[{"role": "user", "content": "a", "name": "x"}]`)}}, `unknown key "name"`},
		{"trailing data", g, &Request{Inputs: []Tensor{m(`[{"role": "user", "content": "a"}] x`)}}, "trailing data"},
		{"messages and text_input", g, &Request{Inputs: []Tensor{m(`[{"role": "user", "content": "a"}]`), StringTensor(InText, "a")}}, "give either messages or text_input/input_ids"},
		{"messages and input_ids", g, &Request{Inputs: []Tensor{m(`[{"role": "user", "content": "a"}]`), int32s(InIDs, 1)}}, "give either messages"},
		{"messages, template off", g, &Request{Inputs: []Tensor{m(`[{"role": "user", "content": "a"}]`), boolTensor(InTemplate, false)}}, "always rendered with the chat template"},
		{"ids, template on", g, &Request{Inputs: []Tensor{int32s(InIDs, 1, 2), boolTensor(InTemplate, true)}}, "input_ids are never templated"},
		{"switch not BOOL", g, &Request{Inputs: []Tensor{StringTensor(InText, "a"), int32Scalar(InTemplate, 1)}}, "input apply_chat_template: want BOOL"},
		{"sampling key not a bool", g, &Request{Inputs: []Tensor{StringTensor(InText, "a"), StringTensor(InSampling, `{"apply_chat_template": "yes"}`)}}, `apply_chat_template: "yes" is not true or false`},
		{"parameter not a bool", g, &Request{Inputs: []Tensor{StringTensor(InText, "a")}, Params: map[string]Param{InTemplate: {Kind: ParamString, Str: "yes"}}}, "parameter apply_chat_template: want a BOOL"},
		{"a template that raises", g, &Request{Inputs: []Tensor{m(`[{"role": "user", "content": "a"}]`)}}, ""},
		{"messages in a chat session", chat, &Request{CorrelationID: 9, SequenceStart: true, Inputs: []Tensor{m(`[{"role": "user", "content": "a"}]`)}}, "messages are for stateless requests"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.req.Params == nil {
				c.req.Params = map[string]Param{}
			}
			if c.want == "" { // SmolLM2's template raises nothing: a good request for contrast
				if _, _, _, err := run(t, c.g, c.req); err != nil {
					t.Fatal(err)
				}
				return
			}
			_, _, _, err := run(t, c.g, c.req)
			if CodeOf(err) != CodeInvalidArg || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v (%v), want INVALID_ARG containing %q", err, CodeOf(err), c.want)
			}
		})
	}
}
