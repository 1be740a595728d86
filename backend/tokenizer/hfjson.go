package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The subset of Hugging Face's tokenizer.json that the supported models use. Anything else is an error that
// names the field, so a new model family fails at load rather than tokenizing wrongly.

type hfFile struct {
	AddedTokens   []hfAdded       `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         hfModel         `json:"model"`
}

type hfAdded struct {
	ID         int32  `json:"id"`
	Content    string `json:"content"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	SingleWord bool   `json:"single_word"`
	Special    bool   `json:"special"`
}

type hfModel struct {
	Type                    string           `json:"type"`
	Vocab                   map[string]int32 `json:"vocab"`
	Merges                  json.RawMessage  `json:"merges"`
	UnkToken                *string          `json:"unk_token"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
	FuseUnk                 bool             `json:"fuse_unk"`
	ByteFallback            bool             `json:"byte_fallback"`
	IgnoreMerges            bool             `json:"ignore_merges"`
	Dropout                 *float64         `json:"dropout"`
}

// hfComponent is any normalizer / pre-tokenizer / post-processor / decoder node.
type hfComponent struct {
	Type          string            `json:"type"`
	Normalizers   []json.RawMessage `json:"normalizers"`
	PreTokenizers []json.RawMessage `json:"pretokenizers"`
	Processors    []json.RawMessage `json:"processors"`
	Decoders      []json.RawMessage `json:"decoders"`
	Prepend       string            `json:"prepend"`
	Pattern       struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	} `json:"pattern"`
	Content          json.RawMessage `json:"content"`
	Behavior         string          `json:"behavior"`
	Invert           bool            `json:"invert"`
	AddPrefixSpace   *bool           `json:"add_prefix_space"`
	UseRegex         *bool           `json:"use_regex"`
	IndividualDigits bool            `json:"individual_digits"`
	Replacement      string          `json:"replacement"`
	PrependScheme    string          `json:"prepend_scheme"`
	Split            *bool           `json:"split"`
	Start            int             `json:"start"`
	Single           []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
		Sequence *struct {
			ID string `json:"id"`
		} `json:"Sequence"`
	} `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int32 `json:"ids"`
	} `json:"special_tokens"`
}

func parseComponent(raw json.RawMessage) (*hfComponent, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c hfComponent
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Split patterns recognised by their exact text.
const (
	gpt2Pattern   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// FromTokenizerJSON builds a Tokenizer from a Hugging Face tokenizer.json and (optionally, may be nil) its
// tokenizer_config.json, which supplies bos/eos/unk/pad tokens, add_bos_token/add_eos_token and chat_template.
func FromTokenizerJSON(tokJSON, tokConfigJSON []byte) (*Tokenizer, error) {
	var f hfFile
	if err := json.Unmarshal(tokJSON, &f); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	m := f.Model
	if m.Type != "BPE" {
		return nil, fmt.Errorf("tokenizer.json: model.type %q: only BPE is supported", m.Type)
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" ||
		m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return nil, fmt.Errorf("tokenizer.json: model.continuing_subword_prefix/end_of_word_suffix are not supported")
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, fmt.Errorf("tokenizer.json: model.dropout %v is not supported", *m.Dropout)
	}
	n := 0
	for _, id := range m.Vocab {
		n = max(n, int(id)+1)
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("tokenizer.json: added token %q: negative id %d", a.Content, a.ID)
		}
		n = max(n, int(a.ID)+1)
	}
	t := newTokenizer(n)
	for tok, id := range m.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer.json: model.vocab[%q]: negative id %d", tok, id)
		}
		t.setToken(id, tok)
	}
	for _, a := range f.AddedTokens {
		if a.SingleWord {
			return nil, fmt.Errorf("tokenizer.json: added token %q: single_word is not supported", a.Content)
		}
		t.setToken(a.ID, a.Content)
		t.added[a.ID] = true
		t.special[a.ID] = a.Special
		t.matcher.add(addedToken{content: a.Content, id: a.ID, lstrip: a.LStrip, rstrip: a.RStrip})
	}
	for i, tok := range t.tokens {
		if tok == "" && !t.added[i] {
			return nil, fmt.Errorf("tokenizer.json: model.vocab has no token with id %d", i)
		}
	}
	merges, err := parseMerges(m.Merges)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: model.merges: %w", err)
	}
	if err := t.setMerges(merges); err != nil {
		return nil, fmt.Errorf("tokenizer.json: model.merges: %w", err)
	}
	t.fuseUnk, t.ignoreMerges = m.FuseUnk, m.IgnoreMerges
	if m.UnkToken != nil {
		id, ok := t.vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("tokenizer.json: model.unk_token %q is not in the vocab", *m.UnkToken)
		}
		t.unk, t.bpeUnk = id, id
	}
	if err := t.hfPipeline(&f, m.ByteFallback); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if err := t.hfConfig(tokConfigJSON); err != nil {
		return nil, fmt.Errorf("tokenizer_config.json: %w", err)
	}
	t.finish()
	return t, nil
}

func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var pairs [][2]string
	if err := json.Unmarshal(raw, &pairs); err == nil {
		return pairs, nil
	}
	var lines []string
	if err := json.Unmarshal(raw, &lines); err != nil {
		return nil, fmt.Errorf("neither [\"a b\"] nor [[\"a\",\"b\"]]: %w", err)
	}
	pairs = make([][2]string, len(lines))
	for i, l := range lines {
		a, b, ok := strings.Cut(l, " ")
		if !ok || strings.Contains(b, " ") {
			return nil, fmt.Errorf("merge %d %q: want two tokens separated by one space", i, l)
		}
		pairs[i] = [2]string{a, b}
	}
	return pairs, nil
}

// hfPipeline configures normalization, pre-tokenization, decoding and the post-processor template.
func (t *Tokenizer) hfPipeline(f *hfFile, byteFallback bool) error {
	norm, err := parseComponent(f.Normalizer)
	if err != nil {
		return fmt.Errorf("normalizer: %w", err)
	}
	pre, err := parseComponent(f.PreTokenizer)
	if err != nil {
		return fmt.Errorf("pre_tokenizer: %w", err)
	}
	dec, err := parseComponent(f.Decoder)
	if err != nil {
		return fmt.Errorf("decoder: %w", err)
	}
	byteLevel := dec != nil && dec.Type == "ByteLevel"
	if byteLevel {
		t.kind = ByteLevel
		if byteFallback {
			return fmt.Errorf("model.byte_fallback with a ByteLevel decoder is not supported")
		}
		if norm != nil {
			return fmt.Errorf("normalizer %q with a ByteLevel model is not supported", norm.Type)
		}
		if t.pre, err = hfPreStages(pre); err != nil {
			return fmt.Errorf("pre_tokenizer: %w", err)
		}
	} else {
		t.kind = SentencePiece
		t.byteFallback = byteFallback
		if err := t.hfSentencePiece(norm, pre, dec); err != nil {
			return err
		}
	}
	post, err := parseComponent(f.PostProcessor)
	if err != nil {
		return fmt.Errorf("post_processor: %w", err)
	}
	return t.hfPost(post)
}

// hfPreStages converts a ByteLevel model's pre-tokenizer tree to stages.
func hfPreStages(c *hfComponent) ([]preStage, error) {
	if c == nil {
		return nil, nil
	}
	switch c.Type {
	case "Sequence":
		var out []preStage
		for i, raw := range c.PreTokenizers {
			sub, err := parseComponent(raw)
			if err != nil {
				return nil, fmt.Errorf("pretokenizers[%d]: %w", i, err)
			}
			st, err := hfPreStages(sub)
			if err != nil {
				return nil, fmt.Errorf("pretokenizers[%d]: %w", i, err)
			}
			out = append(out, st...)
		}
		return out, nil
	case "ByteLevel":
		if c.AddPrefixSpace != nil && *c.AddPrefixSpace {
			return nil, fmt.Errorf("type ByteLevel: add_prefix_space=true is not supported")
		}
		if c.UseRegex == nil || *c.UseRegex {
			return []preStage{splitStage(splitGPT2)}, nil
		}
		return nil, nil // byte mapping alone: BPE always works on bytes
	case "Digits":
		if !c.IndividualDigits {
			return nil, fmt.Errorf("type Digits: individual_digits=false is not supported")
		}
		return []preStage{digitsStage}, nil
	case "Split":
		if c.Pattern.Regex == nil || c.Behavior != "Isolated" || c.Invert {
			return nil, fmt.Errorf("type Split: only an Isolated, non-inverted Regex pattern is supported")
		}
		switch *c.Pattern.Regex {
		case gpt2Pattern:
			return []preStage{splitStage(splitGPT2)}, nil
		case llama3Pattern:
			return []preStage{splitStage(splitLlama3)}, nil
		}
		return nil, fmt.Errorf("type Split: unsupported regex %q (known: GPT-2, Llama-3)", *c.Pattern.Regex)
	}
	return nil, fmt.Errorf("unsupported type %q", c.Type)
}
