package tokenizer

import (
	"fmt"
	"strings"
)

// GGUFVocab is a GGUF file's tokenizer metadata (the tokenizer.ggml.* keys), passed as plain values so that
// this package needs no GGUF reader. Ids are -1 when the file does not set them.
type GGUFVocab struct {
	Model          string    // tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece BPE)
	Pre            string    // tokenizer.ggml.pre: "default", "gpt2", "smollm", "llama-bpe", ... ("" = "default")
	Tokens         []string  // (vocab) tokenizer.ggml.tokens
	Merges         []string  // (merges) tokenizer.ggml.merges, "left right" (gpt2 only)
	Types          []int32   // (vocab) tokenizer.ggml.token_type; may be empty (all normal)
	Scores         []float32 // (vocab) tokenizer.ggml.scores (llama only)
	BOS, EOS       int32     // tokenizer.ggml.bos_token_id / eos_token_id
	UNK, PAD       int32     // tokenizer.ggml.unknown_token_id / padding_token_id
	AddBOS, AddEOS bool      // tokenizer.ggml.add_bos_token / add_eos_token
	AddSpacePrefix bool      // tokenizer.ggml.add_space_prefix (llama: "▁" before each text segment)
	ChatTemplate   string    // tokenizer.chat_template
}

// ggufPre maps tokenizer.ggml.pre names to pre-tokenizer pipelines and whether whole-word lookup comes first.
var ggufPre = map[string]struct {
	stages       []preStage
	ignoreMerges bool
}{
	"default":   {[]preStage{splitStage(splitGPT2)}, false},
	"gpt2":      {[]preStage{splitStage(splitGPT2)}, false},
	"smollm":    {[]preStage{digitsStage, splitStage(splitGPT2)}, false},
	"llama-bpe": {[]preStage{splitStage(splitLlama3)}, true},
	"llama3":    {[]preStage{splitStage(splitLlama3)}, true},
}

// FromGGUF builds a Tokenizer from GGUF vocabulary metadata. Control (3), user-defined (4) and unknown (2)
// tokens are matched verbatim in text; control and unknown ones are special.
func FromGGUF(v GGUFVocab) (*Tokenizer, error) {
	n := len(v.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("gguf vocab: tokenizer.ggml.tokens is empty")
	}
	if len(v.Types) != 0 && len(v.Types) != n {
		return nil, fmt.Errorf("gguf vocab: tokenizer.ggml.token_type has %d entries, tokens %d", len(v.Types), n)
	}
	t := newTokenizer(n)
	for i, tok := range v.Tokens {
		t.setToken(int32(i), tok)
	}
	if len(v.Types) == n {
		t.types = append([]int32(nil), v.Types...)
	}
	for i := 0; i < n && t.types != nil; i++ {
		switch t.types[i] {
		case ggufTypeControl, ggufTypeUnknown:
			t.special[i] = true
			fallthrough
		case ggufTypeUserDefined:
			t.added[i] = true
			t.matcher.add(addedToken{content: v.Tokens[i], id: int32(i)})
		}
	}
	for _, f := range []struct {
		name string
		id   int32
		dst  *int32
	}{{"bos_token_id", v.BOS, &t.bos}, {"eos_token_id", v.EOS, &t.eos}, {"unknown_token_id", v.UNK, &t.unk}, {"padding_token_id", v.PAD, &t.pad}} {
		if f.id < -1 || int(f.id) >= n {
			return nil, fmt.Errorf("gguf vocab: tokenizer.ggml.%s %d out of range [0,%d)", f.name, f.id, n)
		}
		*f.dst = f.id
	}
	switch v.Model {
	case "gpt2":
		t.kind = ByteLevel
		pre := v.Pre
		if pre == "" {
			pre = "default"
		}
		p, ok := ggufPre[pre]
		if !ok {
			return nil, fmt.Errorf("gguf vocab: tokenizer.ggml.pre %q is not supported (known: default, gpt2, smollm, llama-bpe, llama3)", v.Pre)
		}
		t.pre, t.ignoreMerges = p.stages, p.ignoreMerges
		pairs := make([][2]string, len(v.Merges))
		for i, l := range v.Merges {
			a, b, ok := strings.Cut(l, " ")
			if !ok {
				return nil, fmt.Errorf("gguf vocab: tokenizer.ggml.merges[%d] %q: want \"left right\"", i, l)
			}
			pairs[i] = [2]string{a, b}
		}
		if err := t.setMerges(pairs); err != nil {
			return nil, fmt.Errorf("gguf vocab: tokenizer.ggml.merges: %w", err)
		}
		// Like transformers' conversion of a gpt2 GGUF vocab, bytes without a token are dropped, not unk.
	case "llama":
		t.kind = SentencePiece
		if len(v.Scores) != n {
			return nil, fmt.Errorf("gguf vocab: tokenizer.ggml.scores has %d entries, tokens %d", len(v.Scores), n)
		}
		t.scores = append([]float32(nil), v.Scores...)
		t.byteFallback = true
		t.bpeUnk = t.unk
		if v.AddSpacePrefix {
			t.prepend = prependNormalizer
			t.stripLeading = 1
		}
	default:
		return nil, fmt.Errorf("gguf vocab: tokenizer.ggml.model %q is not supported (known: gpt2, llama)", v.Model)
	}
	if v.AddBOS && t.bos >= 0 {
		t.prefix = []int32{t.bos}
	}
	if v.AddEOS && t.eos >= 0 {
		t.suffix = []int32{t.eos}
	}
	t.SetChatTemplate(v.ChatTemplate)
	t.finish()
	if t.kind == SentencePiece && t.types != nil {
		for b, id := range t.byteIDs {
			if id >= 0 && t.types[id] != ggufTypeByte {
				t.byteIDs[b] = -1
			}
		}
	}
	return t, nil
}
