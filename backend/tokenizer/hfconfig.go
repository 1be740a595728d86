package tokenizer

import (
	"encoding/json"
	"fmt"
)

// hfSentencePiece configures a non-byte-level model: Prepend/Replace normalizers (legacy Llama-2) or a
// Metaspace pre-tokenizer, and the Replace/ByteFallback/Fuse/Strip or Metaspace decoder.
func (t *Tokenizer) hfSentencePiece(norm, pre, dec *hfComponent) error {
	var norms []*hfComponent
	if norm != nil {
		if norm.Type == "Sequence" {
			for i, raw := range norm.Normalizers {
				c, err := parseComponent(raw)
				if err != nil {
					return fmt.Errorf("normalizer.normalizers[%d]: %w", i, err)
				}
				norms = append(norms, c)
			}
		} else {
			norms = append(norms, norm)
		}
	}
	for i, c := range norms {
		switch {
		case c == nil:
		case c.Type == "Prepend" && c.Prepend == "▁":
			t.prepend = prependNormalizer
		case c.Type == "Replace" && c.Pattern.String != nil && *c.Pattern.String == " " && string(c.Content) == `"▁"`:
		default:
			return fmt.Errorf("normalizer[%d]: unsupported %q (known: Prepend ▁, Replace ' '->▁)", i, c.Type)
		}
	}
	if pre != nil {
		if pre.Type != "Metaspace" || pre.Replacement != "▁" {
			return fmt.Errorf("pre_tokenizer: unsupported %q for a SentencePiece model (known: Metaspace ▁)", pre.Type)
		}
		switch pre.PrependScheme {
		case "always":
			t.prepend = prependAlways
		case "first":
			t.prepend = prependFirst
		case "never":
		case "":
			if pre.AddPrefixSpace == nil || *pre.AddPrefixSpace {
				t.prepend = prependAlways
			}
		default:
			return fmt.Errorf("pre_tokenizer: Metaspace prepend_scheme %q", pre.PrependScheme)
		}
		t.metaSplit = pre.Split == nil || *pre.Split
	}
	if dec == nil {
		return fmt.Errorf("decoder: missing (want ByteLevel, Metaspace or a Replace/ByteFallback/Fuse/Strip sequence)")
	}
	switch dec.Type {
	case "Metaspace":
		if dec.PrependScheme != "never" && (dec.AddPrefixSpace == nil || *dec.AddPrefixSpace) {
			t.stripLeading = 1
		}
	case "Sequence":
		for i, raw := range dec.Decoders {
			c, err := parseComponent(raw)
			if err != nil {
				return fmt.Errorf("decoder.decoders[%d]: %w", i, err)
			}
			switch c.Type {
			case "Replace", "ByteFallback", "Fuse":
			case "Strip":
				if string(c.Content) != `" "` {
					return fmt.Errorf("decoder.decoders[%d]: Strip of %s is not supported", i, c.Content)
				}
				t.stripLeading = c.Start
			default:
				return fmt.Errorf("decoder.decoders[%d]: unsupported %q", i, c.Type)
			}
		}
	default:
		return fmt.Errorf("decoder: unsupported %q", dec.Type)
	}
	return nil
}

// hfPost reads the post-processor's single-sequence template: special tokens before $A become the prefix,
// those after it the suffix.
func (t *Tokenizer) hfPost(c *hfComponent) error {
	if c == nil {
		return nil
	}
	switch c.Type {
	case "ByteLevel":
		return nil
	case "Sequence":
		for i, raw := range c.Processors {
			sub, err := parseComponent(raw)
			if err != nil {
				return fmt.Errorf("post_processor.processors[%d]: %w", i, err)
			}
			if err := t.hfPost(sub); err != nil {
				return fmt.Errorf("post_processor.processors[%d]: %w", i, err)
			}
		}
		return nil
	case "TemplateProcessing":
		t.prefix, t.suffix = nil, nil
		seenA := false
		for _, piece := range c.Single {
			switch {
			case piece.Sequence != nil:
				seenA = true
			case piece.SpecialToken != nil:
				st, ok := c.SpecialTokens[piece.SpecialToken.ID]
				if !ok {
					return fmt.Errorf("post_processor: template token %q has no special_tokens entry", piece.SpecialToken.ID)
				}
				for _, id := range st.IDs {
					if id < 0 || int(id) >= len(t.tokens) {
						return fmt.Errorf("post_processor: template token %q id %d out of range", piece.SpecialToken.ID, id)
					}
				}
				if seenA {
					t.suffix = append(t.suffix, st.IDs...)
				} else {
					t.prefix = append(t.prefix, st.IDs...)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("post_processor: unsupported %q", c.Type)
}

// hfConfig reads tokenizer_config.json: special token names, add_bos_token/add_eos_token (which, when given,
// decide the prefix/suffix as transformers' Llama tokenizers do) and chat_template.
func (t *Tokenizer) hfConfig(raw []byte) error {
	if len(raw) == 0 {
		return nil
	}
	var c struct {
		BOS          json.RawMessage `json:"bos_token"`
		EOS          json.RawMessage `json:"eos_token"`
		UNK          json.RawMessage `json:"unk_token"`
		PAD          json.RawMessage `json:"pad_token"`
		AddBOS       *bool           `json:"add_bos_token"`
		AddEOS       *bool           `json:"add_eos_token"`
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *int32
	}{{"bos_token", c.BOS, &t.bos}, {"eos_token", c.EOS, &t.eos}, {"unk_token", c.UNK, &t.unk}, {"pad_token", c.PAD, &t.pad}} {
		name, err := tokenName(f.raw)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if name == "" {
			continue
		}
		id, ok := t.vocab[name]
		if !ok {
			return fmt.Errorf("%s %q is not in the vocab", f.name, name)
		}
		*f.dst = id
	}
	if c.AddBOS != nil || c.AddEOS != nil {
		t.prefix, t.suffix = nil, nil
		if c.AddBOS != nil && *c.AddBOS && t.bos >= 0 {
			t.prefix = []int32{t.bos}
		}
		if c.AddEOS != nil && *c.AddEOS && t.eos >= 0 {
			t.suffix = []int32{t.eos}
		}
	}
	if len(c.ChatTemplate) > 0 && string(c.ChatTemplate) != "null" {
		var s string
		if err := json.Unmarshal(c.ChatTemplate, &s); err == nil {
			t.SetChatTemplate(s)
			return nil
		}
		var named []struct{ Name, Template string }
		if err := json.Unmarshal(c.ChatTemplate, &named); err != nil {
			return fmt.Errorf("chat_template: neither a string nor a list of {name, template}: %w", err)
		}
		for _, nt := range named {
			if nt.Name == "default" || t.chatTemplate == "" {
				t.SetChatTemplate(nt.Template)
			}
		}
	}
	return nil
}

// tokenName reads a special token given as "text" or {"content": "text", ...}.
func tokenName(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var o struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return "", err
	}
	return o.Content, nil
}
