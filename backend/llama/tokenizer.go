package llama

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// LoadTokenizer builds the tokenizer stored with the model: the GGUF vocabulary metadata, or tokenizer.json
// (with tokenizer_config.json) of a Hugging Face directory.
func LoadTokenizer(set *weights.Set) (*tokenizer.Tokenizer, error) {
	if m := set.GGUF; m != nil {
		v := tokenizer.GGUFVocab{BOS: -1, EOS: -1, UNK: -1, PAD: -1}
		var err error
		if v.Model, err = m.String("tokenizer.ggml.model"); err != nil {
			return nil, fmt.Errorf("%s: tokenizer: %w", set.Path, err)
		}
		if v.Tokens, err = m.Strings("tokenizer.ggml.tokens"); err != nil {
			return nil, fmt.Errorf("%s: tokenizer: %w", set.Path, err)
		}
		opt := func(key string, f func() error) error {
			if !m.Has(key) {
				return nil
			}
			if err := f(); err != nil {
				return fmt.Errorf("%s: tokenizer metadata %s: %w", set.Path, key, err)
			}
			return nil
		}
		id := func(key string, dst *int32) error {
			return opt(key, func() error {
				u, err := m.Uint(key)
				*dst = int32(u)
				return err
			})
		}
		flag := func(key string, dst *bool) error {
			return opt(key, func() error { b, err := m.Bool(key); *dst = b; return err })
		}
		for _, e := range []error{
			opt("tokenizer.ggml.pre", func() error { s, err := m.String("tokenizer.ggml.pre"); v.Pre = s; return err }),
			opt("tokenizer.ggml.merges", func() error { s, err := m.Strings("tokenizer.ggml.merges"); v.Merges = s; return err }),
			opt("tokenizer.ggml.token_type", func() error { s, err := m.Int32s("tokenizer.ggml.token_type"); v.Types = s; return err }),
			opt("tokenizer.ggml.scores", func() error { s, err := m.Float32s("tokenizer.ggml.scores"); v.Scores = s; return err }),
			opt("tokenizer.chat_template", func() error { s, err := m.String("tokenizer.chat_template"); v.ChatTemplate = s; return err }),
			id("tokenizer.ggml.bos_token_id", &v.BOS), id("tokenizer.ggml.eos_token_id", &v.EOS),
			id("tokenizer.ggml.unknown_token_id", &v.UNK), id("tokenizer.ggml.padding_token_id", &v.PAD),
			flag("tokenizer.ggml.add_bos_token", &v.AddBOS), flag("tokenizer.ggml.add_eos_token", &v.AddEOS),
			flag("tokenizer.ggml.add_space_prefix", &v.AddSpacePrefix),
		} {
			if e != nil {
				return nil, e
			}
		}
		t, err := tokenizer.FromGGUF(v)
		if err != nil {
			return nil, fmt.Errorf("%s: tokenizer: %w", set.Path, err)
		}
		return t, nil
	}
	if set.TokenizerJSON != nil {
		t, err := tokenizer.FromTokenizerJSON(set.TokenizerJSON, set.TokenizerConfigJSON)
		if err != nil {
			return nil, fmt.Errorf("%s: tokenizer.json: %w", set.Path, err)
		}
		return t, nil
	}
	return nil, fmt.Errorf("%s: no tokenizer (neither GGUF tokenizer metadata nor tokenizer.json)", set.Path)
}
