package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
)

// The chat template's inputs of the generation models:
//
//   - messages (BYTES (1)): the prompt as a JSON array of {"role": string, "content": string} objects,
//     rendered with the model's chat template and the generation prompt (an OpenAI chat request's
//     messages). It replaces text_input and input_ids; a model without a chat template refuses it.
//   - apply_chat_template (BOOL (1), or the request parameter or sampling_parameters key of that name):
//     whether text_input is wrapped as a user turn in the model's chat template. Unset, the model's
//     apply_chat_template parameter decides (true by default); a model without a template serves text as it
//     is. input_ids are never templated.

// switchGiven reports whether a BOOL input or the request parameter of that name was given.
func switchGiven(req *Request, name string) bool {
	if _, ok := req.Input(name); ok {
		return true
	}
	_, ok := req.Params[name]
	return ok
}

// templateKey takes apply_chat_template out of the sampling_parameters fields; it counts when neither the
// input nor the request parameter gave the switch.
func templateKey(g *GenRequest, req *Request, fields map[string]any) error {
	v, ok := fields[InTemplate]
	if !ok {
		return nil
	}
	delete(fields, InTemplate)
	if v == nil || switchGiven(req, InTemplate) {
		return nil
	}
	b, err := convert(InSampling+": "+InTemplate, kBool, v)
	if err != nil {
		return err
	}
	g.Template, g.TemplateSet = b.(bool), true
	return nil
}

// decodeMessages reads the messages input: a non-empty JSON array of {"role", "content"} objects, both
// strings, the role non-empty. Errors are CodeInvalidArg and say which message and field is wrong.
func decodeMessages(req *Request) ([]tokenizer.Message, error) {
	bad := func(format string, a ...any) error {
		return Errorf(CodeInvalidArg, "input %s: %s", InMessages, fmt.Sprintf(format, a...))
	}
	s, err := req.InputString(InMessages)
	if err != nil {
		return nil, err
	}
	if !utf8.ValidString(s) {
		return nil, bad("not valid UTF-8 (first bad byte at offset %d)", firstInvalid(s))
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	var raw []map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, bad(`malformed JSON (want a list of {"role": ..., "content": ...} objects): %v`, err)
	}
	if dec.More() {
		return nil, bad("trailing data after the JSON list")
	}
	if len(raw) == 0 {
		return nil, bad("empty: give at least one message")
	}
	msgs := make([]tokenizer.Message, len(raw))
	for i, m := range raw {
		if m == nil {
			return nil, bad("message %d is not an object", i)
		}
		for k := range m {
			if k != "role" && k != "content" {
				return nil, bad(`message %d: unknown key %q (known: "role", "content")`, i, k)
			}
		}
		for _, f := range []struct {
			key string
			dst *string
		}{{"role", &msgs[i].Role}, {"content", &msgs[i].Content}} {
			v, ok := m[f.key]
			if !ok {
				return nil, bad("message %d: missing %q", i, f.key)
			}
			if err := json.Unmarshal(v, f.dst); err != nil || string(v) == "null" {
				return nil, bad("message %d: %q must be a string, got %s", i, f.key, v)
			}
		}
		if msgs[i].Role == "" {
			return nil, bad("message %d: empty role", i)
		}
	}
	return msgs, nil
}
