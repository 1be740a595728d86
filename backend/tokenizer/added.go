package tokenizer

import "sort"

// addedToken is a token matched verbatim in the input text before any normalization or pre-tokenization.
type addedToken struct {
	content string
	id      int32
	lstrip  bool // swallow whitespace before it
	rstrip  bool // swallow whitespace after it
}

// addedMatcher finds added tokens leftmost-longest, as Hugging Face's AddedVocabulary does.
type addedMatcher struct {
	byFirst map[byte][]addedToken // first byte -> candidates, longest first
}

func (m *addedMatcher) add(tok addedToken) {
	if tok.content == "" {
		return
	}
	if m.byFirst == nil {
		m.byFirst = make(map[byte][]addedToken)
	}
	c := tok.content[0]
	for _, old := range m.byFirst[c] {
		if old.content == tok.content {
			return
		}
	}
	list := append(m.byFirst[c], tok)
	sort.SliceStable(list, func(i, j int) bool { return len(list[i].content) > len(list[j].content) })
	m.byFirst[c] = list
}

// split calls emit for each text run (id -1) and each added token (its id) of text, in order; start is the
// byte offset of the piece in text. Text runs may be empty only when text is.
func (m *addedMatcher) split(text string, emit func(seg string, start int, id int32)) {
	if len(m.byFirst) == 0 {
		emit(text, 0, -1)
		return
	}
	segStart := 0
	for i := 0; i < len(text); {
		cands := m.byFirst[text[i]]
		var hit *addedToken
		for k := range cands {
			c := &cands[k]
			if len(text)-i >= len(c.content) && text[i:i+len(c.content)] == c.content {
				hit = c
				break
			}
		}
		if hit == nil {
			i++
			continue
		}
		end := i + len(hit.content)
		segEnd := i
		if hit.lstrip {
			for segEnd > segStart && isASCIISpace(text[segEnd-1]) {
				segEnd--
			}
		}
		if segEnd > segStart {
			emit(text[segStart:segEnd], segStart, -1)
		}
		emit(hit.content, i, hit.id)
		if hit.rstrip {
			for end < len(text) && isASCIISpace(text[end]) {
				end++
			}
		}
		i, segStart = end, end
	}
	if segStart < len(text) || len(text) == 0 {
		emit(text[segStart:], segStart, -1)
	}
}

func isASCIISpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\v' || b == '\f'
}
