package tokenizer

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTinyEncodeDecode(t *testing.T) {
	tok := tinyByteLevel(t)
	cases := []struct {
		in         string
		addSpecial bool
		want       []int32
	}{
		{"hello", false, []int32{259}},
		{"hello", true, []int32{259, 260}},
		{"hell", false, []int32{258}},
		{"helo", false, []int32{256, 'l', 'o'}},
		{" hello", false, []int32{byteIDOf(' '), 259}},
		{"a<|end|>b", false, []int32{'a', 260, 'b'}},
		{"<tool><|end|>", false, []int32{261, 260}},
		{"<|end", false, []int32{'<', '|', 'e', 'n', 'd'}},
		{"", true, []int32{260}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%q/%v", c.in, c.addSpecial), func(t *testing.T) {
			got, err := tok.Encode(c.in, c.addSpecial)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("Encode = %v, want %v", got, c.want)
			}
			if dec := tok.Decode(got, false); dec != c.in+map[bool]string{true: "<|end|>"}[c.addSpecial] {
				t.Errorf("Decode = %q", dec)
			}
		})
	}
	if !tok.IsSpecial(260) || tok.IsSpecial(261) || tok.IsSpecial(-1) || tok.IsSpecial(1<<20) {
		t.Error("IsSpecial: want only 260")
	}
	if got := tok.Decode([]int32{'a', 260, 261, 'b'}, true); got != "a<tool>b" {
		t.Errorf("Decode(skipSpecial) = %q, want %q", got, "a<tool>b")
	}
	if tok.EOS() != 260 || tok.BOS() != -1 || !slices.Equal(tok.EOSIDs(), []int32{260}) || tok.VocabSize() != 262 {
		t.Errorf("EOS %d BOS %d EOSIDs %v VocabSize %d", tok.EOS(), tok.BOS(), tok.EOSIDs(), tok.VocabSize())
	}
	if tok.TokenString(259) != "hello" || tok.TokenString(-3) != "" {
		t.Errorf("TokenString")
	}
}

// byteIDOf is the id of a byte in tinyByteLevel.
func byteIDOf(b byte) int32 { return int32(b) }

func TestEncodeInvalidUTF8(t *testing.T) {
	tok := tinyByteLevel(t)
	for _, c := range []struct {
		in     string
		offset int
	}{{"abc\xffdef", 3}, {"\xc3", 0}, {"ok\xe6\x97", 2}, {"é\x80", 2}} {
		_, err := tok.Encode(c.in, false)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("byte offset %d", c.offset)) {
			t.Errorf("Encode(%q) error = %v, want one naming byte offset %d", c.in, err, c.offset)
		}
	}
}

func TestDecodeOutOfRangeAndInvalid(t *testing.T) {
	tok := tinyByteLevel(t)
	if got := tok.Decode([]int32{-1, 'a', 99999}, false); got != "\uFFFDa\uFFFD" {
		t.Errorf("Decode out of range = %q", got)
	}
	// 0xE6 0x97 is the start of a 3-byte character cut short: each byte becomes U+FFFD.
	if got := tok.Decode([]int32{0xE6, 0x97}, false); got != "\uFFFD\uFFFD" {
		t.Errorf("Decode cut character = %q", got)
	}
}

func TestStreamDecoder(t *testing.T) {
	tok := tinyByteLevel(t)
	ids, err := tok.Encode("é🙂<|end|>x", false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"", "é", "", "", "", "🙂", "", "x"}
	sd := NewStreamDecoder(tok)
	for i, id := range ids {
		if got := sd.Add(id); got != want[i] {
			t.Errorf("Add #%d (%d) = %q, want %q", i, id, got, want[i])
		}
	}
	if got := sd.Flush(); got != "" {
		t.Errorf("Flush = %q", got)
	}
	// A character left incomplete at the end comes out of Flush as U+FFFD per byte, then the decoder resets.
	if got := sd.Add(0xF0); got != "" {
		t.Errorf("Add(0xF0) = %q", got)
	}
	if got := sd.Flush(); got != "\uFFFD" {
		t.Errorf("Flush = %q", got)
	}
	if got := sd.Add('z'); got != "z" {
		t.Errorf("after Flush, Add = %q", got)
	}
	// An invalid byte that cannot start a character is replaced at once.
	if got := sd.Add(0x80); got != "\uFFFD" {
		t.Errorf("Add(0x80) = %q", got)
	}
}

func TestApplyChatErrors(t *testing.T) {
	tok := tinyByteLevel(t)
	cases := []struct{ name, tmpl, want string }{
		{"no template", "", "chat template: the model has none"},
		{"does not parse", "{% for m in messages %}\n{{ m.content }", "chat template: does not parse"},
		{"unclosed block", "a\n{% for m in messages %}{% if m %}x{% endif %}{% endfor %}\n{% if add_generation_prompt %}\nb",
			"chat template: does not parse: jinja parse: unclosed if block (the if opened at line 3)"},
		{"raises", "{{ bos_token }}\n{% if messages[0].role != 'user' %}\n{{ raise_exception('first must be user') }}{% endif %}",
			"chat template: first must be user (raise_exception at line 3)"},
		{"unknown filter", "x\n{{ messages | nosuchfilter }}", `chat template: unknown filter "nosuchfilter" (at line 2)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok.SetChatTemplate(c.tmpl)
			_, err := tok.ApplyChat([]Message{{"system", "hi"}}, true)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	// A template without add_generation_prompt renders what it renders (no prompt is made up).
	tok.SetChatTemplate("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}")
	got, err := tok.ApplyChat([]Message{{"user", "hi"}}, true)
	if want := "<|im_start|>user\nhi<|im_end|>\n"; err != nil || got != want {
		t.Errorf("plain ChatML = %q, %v; want %q", got, err, want)
	}
}

func TestFromGGUFErrors(t *testing.T) {
	good := func() GGUFVocab {
		return GGUFVocab{Model: "gpt2", Pre: "default", Tokens: []string{"a", "b", "ab"}, Merges: []string{"a b"},
			BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	}
	if _, err := FromGGUF(good()); err != nil {
		t.Fatalf("good vocab: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(v *GGUFVocab)
		want   string
	}{
		{"no tokens", func(v *GGUFVocab) { v.Tokens = nil }, "tokens is empty"},
		{"model", func(v *GGUFVocab) { v.Model = "bert" }, `tokenizer.ggml.model "bert"`},
		{"pre", func(v *GGUFVocab) { v.Pre = "qwen2" }, `tokenizer.ggml.pre "qwen2"`},
		{"merge token missing", func(v *GGUFVocab) { v.Merges = []string{"a c"} }, "merges"},
		{"merge without space", func(v *GGUFVocab) { v.Merges = []string{"ab"} }, "merges[0]"},
		{"types length", func(v *GGUFVocab) { v.Types = []int32{1} }, "token_type has 1 entries"},
		{"bos range", func(v *GGUFVocab) { v.BOS = 3 }, "bos_token_id 3 out of range"},
		{"llama scores", func(v *GGUFVocab) { v.Model = "llama" }, "scores has 0 entries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := good()
			c.mutate(&v)
			_, err := FromGGUF(v)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestFromTokenizerJSONErrors(t *testing.T) {
	cases := []struct {
		name, json, want string
	}{
		{"not json", `{`, "tokenizer.json"},
		{"model type", `{"model": {"type": "WordPiece", "vocab": {}}}`, `model.type "WordPiece"`},
		{"merge token missing", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}, "decoder": {"type": "ByteLevel"}}`, "merge 0"},
		{"regex", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "decoder": {"type": "ByteLevel"},
			"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated"}}`, "unsupported regex"},
		{"negative added id", `{"added_tokens": [{"id": -2, "content": "<x>"}], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "decoder": {"type": "ByteLevel"}}`, "negative id -2"},
		{"template id", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "decoder": {"type": "ByteLevel"},
			"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}], "special_tokens": {"<s>": {"ids": [7]}}}}`, "id 7 out of range"},
		{"vocab gap", `{"model": {"type": "BPE", "vocab": {"a": 0, "b": 2}, "merges": []}, "decoder": {"type": "ByteLevel"}}`, "no token with id 1"},
		{"normalizer", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "NFKC"},
			"decoder": {"type": "Metaspace", "replacement": "▁"}}`, `unsupported "NFKC"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromTokenizerJSON([]byte(c.json), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestConcurrentEncode shares one Tokenizer (and its word cache) between goroutines; run with -race.
func TestConcurrentEncode(t *testing.T) {
	tok := tinyByteLevel(t)
	want, _ := tok.Encode("hello hell he said, hello!", false)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				got, err := tok.Encode("hello hell he said, hello!", false)
				if err != nil || !slices.Equal(got, want) {
					t.Errorf("concurrent Encode = %v, %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestLongWord guards against quadratic merging: a word (no pre-tokenizer split) 16x longer must take far less
// than 256x as long (n log n with cache effects measures 20-70x; the best of 3 runs is compared).
func TestLongWord(t *testing.T) {
	tok := tinyByteLevel(t)
	timeIt := func(reps int) time.Duration {
		word := strings.Repeat("hello", reps)
		start := time.Now()
		ids, err := tok.Encode(word, false)
		d := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != reps || ids[0] != 259 || ids[len(ids)-1] != 259 {
			t.Fatalf("got %d ids, want %d x 259", len(ids), reps)
		}
		return d
	}
	best := func(reps int) time.Duration {
		d := timeIt(reps)
		for i := 0; i < 2; i++ {
			d = min(d, timeIt(reps))
		}
		return d
	}
	small, large := best(2500), best(40000)
	t.Logf("12.5 KB word: %v, 200 KB word: %v", small, large)
	if large > 120*small && large > 50*time.Millisecond {
		t.Fatalf("Encode of a 200 KB word took %v, of a 12.5 KB word %v: worse than n log n", large, small)
	}
}

func TestApplyChatVariants(t *testing.T) {
	const official = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
	const smol = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
	user := []Message{{"user", " hi\u00a0\n"}}
	cases := []struct {
		name, tmpl string
		msgs       []Message
		gen        bool
		want       string
	}{
		{"llama3 official without prompt", official, user, false, "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"},
		{"llama3 official with prompt", official, user, true,
			"<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"smol default system", smol, []Message{{"user", "a"}}, false,
			"<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\na<|im_end|>\n"},
		{"smol own system", smol, []Message{{"system", "S"}, {"user", "a"}}, true,
			"<|im_start|>system\nS<|im_end|>\n<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n"},
		{"smol no messages", smol, nil, true, "<|im_start|>assistant\n"},
	}
	tok := tinyByteLevel(t) // no BOS: the Llama-3 rendering starts with "" for bos_token
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok.SetChatTemplate(c.tmpl)
			got, err := tok.ApplyChat(c.msgs, c.gen)
			if err != nil || got != c.want {
				t.Errorf("ApplyChat = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}
