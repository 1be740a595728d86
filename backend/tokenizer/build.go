package tokenizer

import "fmt"

// GGUF token types (tokenizer.ggml.token_type).
const (
	ggufTypeNormal      = 1
	ggufTypeUnknown     = 2
	ggufTypeControl     = 3
	ggufTypeUserDefined = 4
	ggufTypeUnused      = 5
	ggufTypeByte        = 6
)

// endOfTurn names the tokens that end generation besides EOS, when a vocabulary has them.
var endOfTurn = []string{"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>"}

func newTokenizer(n int) *Tokenizer {
	t := &Tokenizer{
		tokens:  make([]string, n),
		vocab:   make(map[string]int32, n),
		special: make([]bool, n),
		added:   make([]bool, n),
		bos:     -1, eos: -1, unk: -1, pad: -1, bpeUnk: -1,
	}
	for i := range t.byteIDs {
		t.byteIDs[i] = -1
	}
	return t
}

// setToken records id's spelling; the first id wins when a spelling repeats, as in Hugging Face's vocab.
func (t *Tokenizer) setToken(id int32, tok string) {
	t.tokens[id] = tok
	if _, dup := t.vocab[tok]; !dup {
		t.vocab[tok] = id
	}
}

// setMerges builds the merge table; rank is the position in the list.
func (t *Tokenizer) setMerges(pairs [][2]string) error {
	t.merges = make(map[uint64]merge, len(pairs))
	for i, p := range pairs {
		a, okA := t.vocab[p[0]]
		b, okB := t.vocab[p[1]]
		c, okC := t.vocab[p[0]+p[1]]
		if !okA || !okB || !okC {
			return fmt.Errorf("merge %d (%q %q): token not in the vocab", i, p[0], p[1])
		}
		k := pairKey(a, b)
		if _, dup := t.merges[k]; !dup {
			t.merges[k] = merge{rank: float64(i), id: c}
		}
	}
	return nil
}

// finish derives the byte-fallback table and the stop ids once the vocabulary is complete.
func (t *Tokenizer) finish() {
	if t.kind == SentencePiece {
		for b := 0; b < 256; b++ {
			if id, ok := t.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
				t.byteIDs[b] = id
			}
		}
	}
	t.eosIDs = nil
	if t.eos >= 0 {
		t.eosIDs = append(t.eosIDs, t.eos)
	}
	for _, name := range endOfTurn {
		if id, ok := t.vocab[name]; ok && id != t.eos && t.added[id] {
			t.eosIDs = append(t.eosIDs, id)
		}
	}
}
