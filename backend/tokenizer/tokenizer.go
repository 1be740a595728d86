package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kind is the family of BPE a Tokenizer runs.
type Kind int

const (
	// ByteLevel is GPT-2 style BPE over the bytes of pre-tokenized words (GPT-2, SmolLM2, Llama-3).
	ByteLevel Kind = iota
	// SentencePiece is BPE over characters with "▁" for spaces and <0xNN> byte fallback (Llama-2, Mistral).
	SentencePiece
)

// prependScheme says where SentencePiece normalization puts its "▁" prefix.
type prependScheme int

const (
	prependNever      prependScheme = iota
	prependNormalizer               // every segment between added tokens, unconditionally (Prepend normalizer, Llama-2)
	prependAlways                   // every segment not already starting with "▁" (Metaspace "always")
	prependFirst                    // like prependAlways, only for a segment that starts the text (Metaspace "first")
)

// Tokenizer converts text to token ids and back. Build one with FromTokenizerJSON or FromGGUF.
type Tokenizer struct {
	kind   Kind
	tokens []string         // (vocab) token strings as the vocabulary spells them (byte-level or "▁" form)
	vocab  map[string]int32 // token string -> id
	merges map[uint64]merge // (left id, right id) -> merge; nil in score mode
	scores []float32        // (vocab) SentencePiece scores; non-nil selects score-mode merging
	types  []int32          // (vocab) GGUF token types, or nil

	special []bool // (vocab) special token: dropped by Decode(skipSpecial) and the StreamDecoder
	added   []bool // (vocab) added token: matched in raw text before pre-tokenization, decoded verbatim
	matcher addedMatcher

	pre          []preStage // ByteLevel: pre-tokenizer pipeline applied to each text segment
	ignoreMerges bool       // a word that is itself a token is emitted whole (Llama-3)

	prepend      prependScheme // SentencePiece: "▁" prefix
	metaSplit    bool          // SentencePiece: split words before each "▁" (Metaspace split=true)
	byteFallback bool          // SentencePiece: unknown characters become <0xNN> tokens
	fuseUnk      bool          // consecutive unknown symbols become one unk
	byteIDs      [256]int32    // ids of <0xNN> tokens, -1 when absent
	stripLeading int           // decoder removes this many leading spaces (SentencePiece)

	bos, eos, unk, pad int32   // -1 = none (from the config or GGUF ids; informational)
	bpeUnk             int32   // the model's unknown token for symbols not in the vocab, or -1: dropped
	eosIDs             []int32 // ids that end generation
	prefix, suffix     []int32 // added around the text when Encode's addSpecial is set

	chatTemplate string     // the jinja chat template ("" when none)
	chat         *chatCache // chatTemplate compiled on first use (SetChatTemplate)
	cache        wordCache
}

// VocabSize is the number of token ids (the embedding rows the ids index).
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// Kind reports the BPE family.
func (t *Tokenizer) Kind() Kind { return t.kind }

// BOS is the beginning-of-sequence id, or -1.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS is the end-of-sequence id, or -1.
func (t *Tokenizer) EOS() int32 { return t.eos }

// EOSIDs lists the ids that end generation: EOS plus the end-of-turn tokens the vocabulary has
// (<|im_end|>, <|eot_id|>, <|eom_id|>, <|end_of_text|>, <|endoftext|>, </s>).
func (t *Tokenizer) EOSIDs() []int32 { return append([]int32(nil), t.eosIDs...) }

// IsSpecial reports whether id is a special token (false for ids out of range).
func (t *Tokenizer) IsSpecial(id int32) bool {
	return id >= 0 && int(id) < len(t.special) && t.special[id]
}

// TokenString is the vocabulary's spelling of id ("" for ids out of range).
func (t *Tokenizer) TokenString(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// TokenID looks a token up by its vocabulary spelling.
func (t *Tokenizer) TokenID(tok string) (int32, bool) {
	id, ok := t.vocab[tok]
	return id, ok
}

// Encode turns text into token ids. Added and special tokens written in the text (e.g. "<|im_start|>") are
// matched first, longest first, and become their ids; the rest is normalized, pre-tokenized and merged. With
// addSpecial, the model's BOS/EOS are added as its settings say (as Hugging Face's AutoTokenizer does by
// default). Text that is not valid UTF-8 is an error naming the byte offset.
func (t *Tokenizer) Encode(text string, addSpecial bool) ([]int32, error) {
	if !utf8.ValidString(text) {
		for i, r := range text {
			if r == utf8.RuneError {
				if _, w := utf8.DecodeRuneInString(text[i:]); w == 1 {
					return nil, fmt.Errorf("tokenizer: encode: invalid UTF-8 at byte offset %d", i)
				}
			}
		}
	}
	out := make([]int32, 0, len(text)/3+len(t.prefix)+len(t.suffix)+1)
	if addSpecial {
		out = append(out, t.prefix...)
	}
	t.matcher.split(text, func(seg string, start int, id int32) {
		if id >= 0 {
			out = append(out, id)
			return
		}
		out = t.encodeSegment(out, seg, start == 0)
	})
	if addSpecial {
		out = append(out, t.suffix...)
	}
	return out, nil
}

// encodeSegment appends the ids of a run of text that holds no added token.
func (t *Tokenizer) encodeSegment(out []int32, seg string, atStart bool) []int32 {
	if t.kind == ByteLevel {
		runPipeline(t.pre, seg, func(w string) { out = t.encodeWord(out, w) })
		return out
	}
	if seg == "" {
		return out
	}
	norm := strings.ReplaceAll(seg, " ", "▁")
	switch {
	case t.prepend == prependNormalizer:
		norm = "▁" + norm
	case t.prepend == prependAlways || t.prepend == prependFirst && atStart:
		if !strings.HasPrefix(norm, "▁") {
			norm = "▁" + norm
		}
	}
	if !t.metaSplit {
		return t.encodeWord(out, norm)
	}
	start := 0
	for i := 1; i < len(norm); i++ {
		if strings.HasPrefix(norm[i:], "▁") {
			out = t.encodeWord(out, norm[start:i])
			start = i
		}
	}
	return t.encodeWord(out, norm[start:])
}

// encodeWord appends the BPE ids of one pre-tokenized word (raw bytes for ByteLevel, "▁" text otherwise).
func (t *Tokenizer) encodeWord(out []int32, w string) []int32 {
	if ids, ok := t.cache.get(w); ok {
		return append(out, ids...)
	}
	var sym []int32
	if t.kind == ByteLevel {
		if t.ignoreMerges {
			if id, ok := t.vocab[byteLevelString(w)]; ok {
				t.cache.put(w, []int32{id})
				return append(out, id)
			}
		}
		sym = make([]int32, 0, len(w))
		for i := 0; i < len(w); i++ {
			if id, ok := t.vocab[byteSym[w[i]]]; ok {
				sym = append(sym, id)
			} else {
				sym = t.appendUnk(sym)
			}
		}
	} else {
		if t.ignoreMerges {
			if id, ok := t.vocab[w]; ok {
				t.cache.put(w, []int32{id})
				return append(out, id)
			}
		}
		sym = make([]int32, 0, len(w))
		for i, r := range w {
			n := utf8.RuneLen(r)
			if id, ok := t.vocab[w[i:i+n]]; ok && (t.types == nil || t.types[id] != ggufTypeUnused) {
				sym = append(sym, id)
				continue
			}
			if t.byteFallback && t.hasBytes(w[i:i+n]) {
				for j := i; j < i+n; j++ {
					sym = append(sym, t.byteIDs[w[j]])
				}
				continue
			}
			sym = t.appendUnk(sym)
		}
	}
	sym = t.bpe(sym)
	t.cache.put(w, sym)
	return append(out, sym...)
}

func (t *Tokenizer) hasBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if t.byteIDs[s[i]] < 0 {
			return false
		}
	}
	return true
}

// appendUnk adds the unknown token (fused with a preceding one when fuse_unk is set); without an unk token the
// symbol is dropped, as Hugging Face's BPE does.
func (t *Tokenizer) appendUnk(sym []int32) []int32 {
	if t.bpeUnk < 0 {
		return sym
	}
	if t.fuseUnk && len(sym) > 0 && sym[len(sym)-1] == t.bpeUnk {
		return sym
	}
	return append(sym, t.bpeUnk)
}
