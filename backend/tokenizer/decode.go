package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// appendTokenBytes appends the bytes id stands for. Ids out of range append U+FFFD; special tokens are skipped
// when skipSpecial is set; added tokens append their text verbatim.
func (t *Tokenizer) appendTokenBytes(dst []byte, id int32, skipSpecial bool) []byte {
	if id < 0 || int(id) >= len(t.tokens) {
		return append(dst, "\uFFFD"...)
	}
	if skipSpecial && t.special[id] {
		return dst
	}
	tok := t.tokens[id]
	if t.added[id] {
		return append(dst, tok...)
	}
	if t.kind == ByteLevel {
		return appendByteLevelDecoded(dst, tok)
	}
	if b, ok := t.byteOf(id); ok {
		return append(dst, b)
	}
	return append(dst, strings.ReplaceAll(tok, "▁", " ")...)
}

// byteOf reports the byte a SentencePiece <0xNN> byte-fallback token stands for.
func (t *Tokenizer) byteOf(id int32) (byte, bool) {
	tok := t.tokens[id]
	if len(tok) != 6 || tok[:3] != "<0x" || tok[5] != '>' {
		return 0, false
	}
	v := 0
	for _, c := range tok[3:5] {
		switch {
		case c >= '0' && c <= '9':
			v = v*16 + int(c-'0')
		case c >= 'A' && c <= 'F':
			v = v*16 + int(c-'A'+10)
		case c >= 'a' && c <= 'f':
			v = v*16 + int(c-'a'+10)
		default:
			return 0, false
		}
	}
	return byte(v), t.byteIDs[v] == id
}

// Decode turns ids back into text. Special tokens are left out when skipSpecial is set. Ids out of range
// decode to U+FFFD (they are never an error); byte sequences that are not valid UTF-8 (a model may emit half a
// character at the end) decode to one U+FFFD per invalid byte. SentencePiece vocabularies drop the space that
// encoding prefixed (as their Hugging Face decoder does).
func (t *Tokenizer) Decode(ids []int32, skipSpecial bool) string {
	buf := make([]byte, 0, len(ids)*4)
	for _, id := range ids {
		buf = t.appendTokenBytes(buf, id, skipSpecial)
	}
	s := validUTF8(buf)
	for i := 0; i < t.stripLeading && strings.HasPrefix(s, " "); i++ {
		s = s[1:]
	}
	return s
}

// validUTF8 converts b to a string, replacing each invalid byte by U+FFFD.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, w := utf8.DecodeRune(b)
		if r == utf8.RuneError && w == 1 {
			sb.WriteString("\uFFFD")
		} else {
			sb.Write(b[:w])
		}
		b = b[w:]
	}
	return sb.String()
}

// StreamDecoder turns ids into text one at a time for streaming responses. Add returns only complete UTF-8
// text: bytes of a character split across tokens (byte-level or <0xNN> byte fallback) are held back until
// the character completes. The concatenation of all Add results and Flush equals Decode of all ids.
// A StreamDecoder is not safe for concurrent use.
type StreamDecoder struct {
	t *Tokenizer
	// SkipSpecial drops special tokens (true from NewStreamDecoder).
	SkipSpecial bool
	pending     []byte // bytes not yet returned
	stripped    int    // leading spaces removed so far (SentencePiece)
	started     bool   // text has been seen, so no more leading spaces are stripped
}

// NewStreamDecoder returns a streaming decoder over t that skips special tokens.
func NewStreamDecoder(t *Tokenizer) *StreamDecoder { return &StreamDecoder{t: t, SkipSpecial: true} }

// Add decodes id and returns the text that is now complete (possibly "").
func (d *StreamDecoder) Add(id int32) string {
	d.pending = d.t.appendTokenBytes(d.pending, id, d.SkipSpecial)
	for !d.started && len(d.pending) > 0 {
		if d.pending[0] == ' ' && d.stripped < d.t.stripLeading {
			d.pending = d.pending[1:]
			d.stripped++
			continue
		}
		d.started = true
	}
	n := 0
	var sb strings.Builder
	for n < len(d.pending) {
		r, w := utf8.DecodeRune(d.pending[n:])
		if r == utf8.RuneError && w == 1 {
			if !utf8.FullRune(d.pending[n:]) {
				break // an incomplete character at the end: wait for more bytes
			}
			sb.WriteString("\uFFFD")
		} else {
			sb.Write(d.pending[n : n+w])
		}
		n += w
	}
	d.pending = d.pending[:copy(d.pending, d.pending[n:])]
	return sb.String()
}

// Flush returns whatever is held back (an incomplete character becomes U+FFFD per byte) and resets the
// decoder for a new sequence.
func (d *StreamDecoder) Flush() string {
	s := validUTF8(d.pending)
	d.pending = d.pending[:0]
	d.started, d.stripped = false, 0
	return s
}
