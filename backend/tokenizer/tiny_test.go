package tokenizer

import (
	"encoding/json"
	"testing"
)

// tinyByteLevel builds a small byte-level tokenizer in memory: the 256 byte symbols, a few merges
// ("h e", "l l", "he ll", "hell o"), the special token <|end|> and the non-special added token <tool>.
func tinyByteLevel(t testing.TB) *Tokenizer {
	t.Helper()
	vocab := map[string]int32{}
	for b := 0; b < 256; b++ {
		vocab[byteSym[b]] = int32(b)
	}
	merges := []string{"h e", "l l", "he ll", "hell o"}
	for i, m := range []string{"he", "ll", "hell", "hello"} {
		vocab[m] = int32(256 + i)
	}
	doc := map[string]any{
		"added_tokens": []map[string]any{
			{"id": 260, "content": "<|end|>", "special": true},
			{"id": 261, "content": "<tool>", "special": false},
		},
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		"decoder":       map[string]any{"type": "ByteLevel"},
		"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": merges},
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := []byte(`{"eos_token": "<|end|>", "add_eos_token": true, "chat_template": "{% for m in messages %}{{ m }}{% endfor %}"}`)
	tok, err := FromTokenizerJSON(raw, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
