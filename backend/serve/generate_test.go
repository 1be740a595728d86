package serve

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omnikv-triton/omnikv-triton/backend/internal/testmodel"
)

// smolConfig builds a model directory holding a link to the default model and returns its config.
func smolConfig(t *testing.T, mode string, params map[string]string) Config {
	t.Helper()
	abs, err := filepath.Abs(testmodel.SmolLM2(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, filepath.Join(dir, "1", "model.gguf")); err != nil {
		t.Fatal(err)
	}
	p := map[string]string{"mode": mode, "weights": "1/model.gguf", "max_context": "1024", "max_tokens_cap": "64"}
	for k, v := range params {
		p[k] = v
	}
	return Config{Name: "omnikv_test", RepositoryDir: dir, Decoupled: true, Params: p}
}

func newGen(t *testing.T, mode string, params map[string]string) *Generator {
	t.Helper()
	m, err := NewModel(smolConfig(t, mode, params), Instance{Name: "i0", Kind: KindCPU}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m.(*Generator)
}

func boolTensor(name string, v bool) Tensor {
	b := byte(0)
	if v {
		b = 1
	}
	return Tensor{Name: name, DataType: TypeBool, Shape: []int64{1}, Data: []byte{b}}
}

func textReq(text string, extra ...Tensor) *Request {
	return &Request{Inputs: append([]Tensor{StringTensor(InText, text)}, extra...), Params: map[string]Param{}}
}

// run serves req and returns the concatenated text, ids, the final response and the error sent.
func run(t *testing.T, g *Generator, req *Request) (string, []int32, *Response, error) {
	t.Helper()
	if err := g.Check(req); err != nil {
		return "", nil, nil, err
	}
	rec := &recorder{}
	err := Serve(context.Background(), g, req, rec)
	if rec.finals() != 1 {
		t.Fatalf("%d final responses", rec.finals())
	}
	var text strings.Builder
	var ids []int32
	var final *Response
	for i := range rec.responses {
		r := &rec.responses[i]
		for _, o := range r.Outputs {
			switch o.Name {
			case OutText:
				s, _ := o.Strings()
				text.Write(s[0])
			case OutIDs:
				v, _ := o.Int32s()
				ids = append(ids, v...)
			}
		}
		if r.Final {
			final = r
		}
	}
	return text.String(), ids, final, err
}

func output(r *Response, name string) Tensor {
	for _, o := range r.Outputs {
		if o.Name == name {
			return o
		}
	}
	return Tensor{}
}

func TestGenerateStreamingMatchesOneResponse(t *testing.T) {
	g := newGen(t, "generate", map[string]string{"apply_chat_template": "false"}) // a completion prompt
	full, ids, final, err := run(t, g, textReq("The capital of France is", int32Scalar(InMaxTokens, 12), boolTensor(InExclude, true)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 12 || !strings.Contains(full, "Paris") {
		t.Fatalf("got %q (%d ids)", full, len(ids))
	}
	fin := output(final, OutFinish)
	fr, _ := fin.Strings()
	if string(fr[0]) != "length" {
		t.Fatalf("finish_reason %q", fr[0])
	}
	req := textReq("The capital of France is", int32Scalar(InMaxTokens, 12), boolTensor(InExclude, true), boolTensor(InStream, true))
	rec := &recorder{}
	if err := Serve(context.Background(), g, req, rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.responses) < 5 {
		t.Fatalf("streaming sent %d responses for 12 tokens", len(rec.responses))
	}
	streamText, streamIDs, _, _ := run(t, g, req)
	if streamText != full || !slices.Equal(streamIDs, ids) {
		t.Fatalf("streamed %q %v, one response %q %v", streamText, streamIDs, full, ids)
	}
	// Without exclude_input_in_output the prompt leads the text.
	withPrompt, _, _, err := run(t, g, textReq("The capital of France is", int32Scalar(InMaxTokens, 12)))
	if err != nil || withPrompt != "The capital of France is"+full {
		t.Fatalf("with prompt: %q, %v", withPrompt, err)
	}
}

func int32s(name string, v ...int32) Tensor { return Int32Tensor(name, v...) }

func TestGenerateBadInputs(t *testing.T) {
	g := newGen(t, "generate", nil)
	invalidUTF8 := string([]byte{'a', 0xff, 'b'})
	tests := []struct {
		name  string
		req   *Request
		field string // the message must name it
	}{
		{"no prompt", &Request{Inputs: []Tensor{int32Scalar(InMaxTokens, 4)}}, "text_input"},
		{"both prompts", &Request{Inputs: []Tensor{StringTensor(InText, "hi"), int32s(InIDs, 1, 2)}}, "input_ids"},
		{"text as INT32", &Request{Inputs: []Tensor{{Name: InText, DataType: TypeInt32, Shape: []int64{1}, Data: make([]byte, 4)}}}, "text_input"},
		{"two strings", &Request{Inputs: []Tensor{StringTensor(InText, "a", "b")}}, "text_input"},
		{"empty prompt", textReq(""), "text_input"},
		{"invalid UTF-8", textReq(invalidUTF8), "UTF-8"},
		{"empty ids", &Request{Inputs: []Tensor{int32s(InIDs)}}, "input_ids"},
		{"max_tokens 0", textReq("hi", int32Scalar(InMaxTokens, 0)), "max_tokens"},
		{"max_tokens negative", textReq("hi", int32Scalar(InMaxTokens, -3)), "max_tokens"},
		{"max_tokens over cap", textReq("hi", int32Scalar(InMaxTokens, 65)), "max_tokens"},
		{"max_tokens as BOOL", textReq("hi", boolTensor(InMaxTokens, true)), "max_tokens"},
		{"temperature < 0", textReq("hi", StringTensor(InSampling, `{"temperature": -0.5}`)), "temperature"},
		{"top_p 0", textReq("hi", StringTensor(InSampling, `{"top_p": 0}`)), "top_p"},
		{"top_p 1.5", textReq("hi", StringTensor(InSampling, `{"top_p": 1.5}`)), "top_p"},
		{"top_k < -1", textReq("hi", StringTensor(InSampling, `{"top_k": -2}`)), "top_k"}, // -1 is vLLM's "off"
		{"top_k fractional", textReq("hi", StringTensor(InSampling, `{"top_k": 2.5}`)), "top_k"},
		{"malformed JSON", textReq("hi", StringTensor(InSampling, `{"temperature": `)), "sampling_parameters"},
		{"unknown sampling key", textReq("hi", StringTensor(InSampling, `{"temprature": 1}`)), "temprature"},
		{"ignore_eos as a number", textReq("hi", StringTensor(InSampling, `{"ignore_eos": 1}`)), "ignore_eos"},
		{"stream as string", textReq("hi", StringTensor(InStream, "yes")), "stream"},
		{"unknown input", textReq("hi", StringTensor("prompt", "x")), "prompt"},
		{"temperature param < 0", &Request{Inputs: []Tensor{StringTensor(InText, "hi")}, Params: map[string]Param{"temperature": {Kind: ParamDouble, Double: -1}}}, "temperature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := g.Check(tc.req)
			if err == nil || CodeOf(err) != CodeInvalidArg || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Check: %v (code %v), want INVALID_ARG naming %q", err, CodeOf(err), tc.field)
			}
		})
	}
	// Checks that need the tokenizer or the vocabulary happen in Run and are answered as the final response.
	runTests := []struct {
		name, field string
		req         *Request
	}{
		{"ids outside the vocabulary", "vocabulary", &Request{Inputs: []Tensor{int32s(InIDs, 1, 49152)}}},
		{"negative id", "vocabulary", &Request{Inputs: []Tensor{int32s(InIDs, -1)}}},
		{"prompt over context", "context", textReq(strings.Repeat("word ", 1100), int32Scalar(InMaxTokens, 8))},
	}
	for _, tc := range runTests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := run(t, g, tc.req)
			if err == nil || CodeOf(err) != CodeInvalidArg || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Run: %v (code %v), want INVALID_ARG naming %q", err, CodeOf(err), tc.field)
			}
		})
	}
	// The model still answers.
	if text, _, _, err := run(t, g, textReq("Hello", int32Scalar(InMaxTokens, 3), boolTensor(InExclude, true))); err != nil || text == "" {
		t.Fatalf("after bad inputs: %q %v", text, err)
	}
}

// ignore_eos generates max_tokens tokens past an end-of-sequence token.
func TestIgnoreEOS(t *testing.T) {
	g := newGen(t, "generate", nil)
	// SmolLM2 answers "Hi" and ends its turn within a few tokens.
	finish := func(r *Response) string {
		o := output(r, OutFinish)
		s, _ := o.Strings()
		return string(s[0])
	}
	prompt := "<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n"
	_, _, final, err := run(t, g, textReq(prompt, int32Scalar(InMaxTokens, 40)))
	if err != nil || finish(final) != "stop" {
		t.Fatalf("without ignore_eos: %v; want finish stop", err)
	}
	_, ids, final, err := run(t, g, textReq(prompt, int32Scalar(InMaxTokens, 40), StringTensor(InSampling, `{"ignore_eos": true}`)))
	if err != nil || finish(final) != "length" || len(ids) != 40 {
		t.Fatalf("with ignore_eos: finish %q, %d tokens, %v; want length, 40", finish(final), len(ids), err)
	}
}

func TestGenerateConfigErrors(t *testing.T) {
	tests := []struct {
		key, value, want string
	}{
		{"weights", "../outside.gguf", "escapes"},
		{"weights", "/etc/passwd", "relative"},
		{"weights", "1/missing.gguf", "weights"},
		{"kv_dtype", "int4", "kv_dtype"},
		{"max_sequences", "0", "max_sequences"},
		{"max_tokens_cap", "lots", "max_tokens_cap"},
		{"omnikv", "maybe", "omnikv"},
		{"budget", "-1", "budget"},
		{"selector", "best", "selector"},
		{"sesion_idle_timeout_s", "5", "sesion_idle_timeout_s"},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			params := map[string]string{tc.key: tc.value}
			if tc.key == "budget" || tc.key == "selector" {
				params["omnikv"] = "true"
			}
			cfg := smolConfig(t, "generate", params)
			err := CheckConfig(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckConfig: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func seqReq(id uint64, start, end bool, ids ...int32) *Request {
	return &Request{CorrelationID: id, SequenceStart: start, SequenceEnd: end,
		Inputs: []Tensor{int32s(InIDs, ids...), int32Scalar(InMaxTokens, 8)}}
}

func TestChatSessions(t *testing.T) {
	for _, params := range []map[string]string{nil, {"omnikv": "true", "budget": "16"}} {
		name := "dense"
		if params != nil {
			name = "omnikv"
		}
		t.Run(name, func(t *testing.T) {
			chat := newGen(t, "chat", params)
			gen := newGen(t, "generate", params)
			turns := [][]int32{{1, 4093, 28, 9, 3015, 2}, {198, 1, 4093}, {28, 1303, 314, 2, 198, 1}}
			var conv, last []int32
			for i, turn := range turns {
				_, ids, _, err := run(t, chat, seqReq(42, i == 0, false, turn...))
				if err != nil {
					t.Fatalf("turn %d: %v", i, err)
				}
				conv = append(append(conv, turn...), ids...)
				last = ids
			}
			_, want, _, err := run(t, gen, &Request{Inputs: []Tensor{int32s(InIDs, conv[:len(conv)-len(last)]...), int32Scalar(InMaxTokens, 8)}})
			if err != nil || !slices.Equal(last, want) {
				t.Fatalf("turn 3 %v, stateless over the conversation %v (%v)", last, want, err)
			}
			// END frees the session; a later turn is refused with NOT_FOUND.
			if _, _, _, err := run(t, chat, seqReq(42, false, true, 13)); err != nil {
				t.Fatal(err)
			}
			if chat.eng.Sessions() != 0 || chat.eng.KVPagesInUse() != 0 {
				t.Fatalf("after END: %d sessions, %d pages", chat.eng.Sessions(), chat.eng.KVPagesInUse())
			}
			if err := chat.Check(seqReq(42, false, false, 13)); CodeOf(err) != CodeNotFound {
				t.Fatalf("turn after END: %v, want NOT_FOUND", err)
			}
			if err := chat.Check(&Request{Inputs: []Tensor{int32s(InIDs, 1)}}); err == nil || !strings.Contains(err.Error(), "sequence_id") {
				t.Fatalf("turn without a sequence id: %v", err)
			}
		})
	}
}

func TestChatSessionExpires(t *testing.T) {
	chat := newGen(t, "chat", map[string]string{"session_idle_timeout_s": "0.2"})
	if _, _, _, err := run(t, chat, seqReq(7, true, false, 1, 2, 3)); err != nil {
		t.Fatal(err)
	}
	if chat.eng.KVPagesInUse() == 0 {
		t.Fatal("the session holds no KV after its first turn")
	}
	deadline := time.Now().Add(5 * time.Second)
	for chat.eng.Sessions() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if chat.eng.Sessions() != 0 || chat.eng.KVPagesInUse() != 0 {
		t.Fatalf("idle session not reaped: %d sessions, %d pages", chat.eng.Sessions(), chat.eng.KVPagesInUse())
	}
	err := chat.Check(seqReq(7, false, false, 4))
	if CodeOf(err) != CodeNotFound || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("turn of an expired session: %v", err)
	}
}

func TestChatTemplateTurnsAndCloseTurn(t *testing.T) {
	chat := newGen(t, "chat", map[string]string{"chat_template": "true"})
	turn := func(start, end bool, text string) (string, error) {
		req := &Request{CorrelationID: 5, SequenceStart: start, SequenceEnd: end,
			Inputs: []Tensor{StringTensor(InText, text), int32Scalar(InMaxTokens, 24), boolTensor(InExclude, true)}}
		if err := chat.Check(req); err != nil {
			return "", err
		}
		out, _, _, err := run(t, chat, req)
		return out, err
	}
	a1, err := turn(true, false, "What is the capital of France?")
	if err != nil || !strings.Contains(a1, "Paris") {
		t.Fatalf("turn 1: %q %v", a1, err)
	}
	a2, err := turn(false, false, "And of Italy?")
	if err != nil || !strings.Contains(a2, "Rome") {
		t.Fatalf("turn 2: %q %v", a2, err)
	}
	if _, err := turn(false, true, ""); err != nil {
		t.Fatalf("closing turn: %v", err)
	}
	if chat.eng.Sessions() != 0 || chat.eng.KVPagesInUse() != 0 {
		t.Fatalf("after the closing turn: %d sessions, %d pages", chat.eng.Sessions(), chat.eng.KVPagesInUse())
	}
}

// A KIND_GPU instance asks the device registry for cuda:N; on a host that cannot open it (no cgo in this build,
// no driver, no GPU, no NVRTC) it fails to load with a message that says what is missing (and the CPU path is
// untouched).
func TestGPUInstanceFailsClearly(t *testing.T) {
	_, err := NewModel(smolConfig(t, "generate", nil), Instance{Name: "g0", Kind: KindGPU, DeviceID: 1}, zerolog.Nop())
	if err == nil {
		t.Fatal("a KIND_GPU instance loaded without a CUDA device")
	}
	for _, want := range []string{"cuda:1", "KIND_GPU", "use KIND_CPU"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// Why: what this host lacks (cgo, the driver, a GPU, NVRTC).
	if !strings.Contains(err.Error(), "NVRTC") && !strings.Contains(err.Error(), "no CUDA driver") &&
		!strings.Contains(err.Error(), "no cgo") && !strings.Contains(err.Error(), "cuInit") {
		t.Errorf("error %q does not say why", err)
	}
	if CodeOf(err) != CodeUnsupported {
		t.Errorf("error %v: code %v, want UNSUPPORTED", err, CodeOf(err))
	}
}
