package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Pre-tokenizers split text into the words that BPE merges within. The GPT-2 and Llama-3 split patterns use
// look-ahead (`\s+(?!\S)`) and ordered alternation, which Go's regexp lacks, so each pattern is hand-written
// below as a scanner that returns the length of the match at the start of its input; the doc comment of each
// gives the exact pattern it reproduces. Character classes: \p{L} = unicode.IsLetter, \p{N} =
// unicode.IsNumber, \s = unicode.IsSpace (the Unicode White_Space set, as Oniguruma's \s).

// splitFunc returns the byte length (> 0) of the first pre-token of s (len(s) > 0).
type splitFunc func(s string) int

// preStage is one step of a pre-tokenizer pipeline: it splits piece and calls emit for each part in order.
type preStage func(piece string, emit func(string))

// runPipeline runs the stages in order over text and calls emit with each final non-empty piece.
func runPipeline(stages []preStage, text string, emit func(string)) {
	if len(stages) == 0 {
		if text != "" {
			emit(text)
		}
		return
	}
	stages[0](text, func(p string) {
		if p != "" {
			runPipeline(stages[1:], p, emit)
		}
	})
}

// splitStage turns a splitFunc into a stage ("Isolated" behaviour: matches become pieces; with these patterns,
// whose last alternative `\s+` and the others cover every character, there is never unmatched text).
func splitStage(f splitFunc) preStage {
	return func(piece string, emit func(string)) {
		for len(piece) > 0 {
			n := f(piece)
			emit(piece[:n])
			piece = piece[n:]
		}
	}
}

// digitsStage is Hugging Face's Digits(individual_digits=true): every \p{N} character becomes its own piece,
// and the runs between digits stay whole.
func digitsStage(piece string, emit func(string)) {
	start := 0
	for i, r := range piece {
		if unicode.IsNumber(r) {
			if i > start {
				emit(piece[start:i])
			}
			n := utf8.RuneLen(r)
			emit(piece[i : i+n])
			start = i + n
		}
	}
	if start < len(piece) {
		emit(piece[start:])
	}
}

func isL(r rune) bool { return unicode.IsLetter(r) }
func isN(r rune) bool { return unicode.IsNumber(r) }
func isS(r rune) bool { return unicode.IsSpace(r) }

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !isS(r) && !isL(r) && !isN(r) }

// runLen returns the byte length of the longest prefix of s whose runes all satisfy f.
func runLen(s string, f func(rune) bool) int {
	for i, r := range s {
		if !f(r) {
			return i
		}
	}
	return len(s)
}

// first decodes the first rune of s and its byte length.
func first(s string) (rune, int) { return utf8.DecodeRuneInString(s) }

// contraction matches 's|'t|'re|'ve|'m|'ll|'d at the start of s (which begins with '\”), case-sensitively or,
// for Llama-3's (?i:...), case-insensitively (with Unicode simple case folding: 'ſ' folds to 's').
func contraction(s string, fold bool) int {
	if len(s) < 2 || s[0] != '\'' {
		return 0
	}
	eq := func(i int, want byte) (int, bool) {
		if i >= len(s) {
			return 0, false
		}
		if s[i] == want {
			return 1, true
		}
		if !fold {
			return 0, false
		}
		if s[i] == want-'a'+'A' {
			return 1, true
		}
		if want == 's' && len(s) >= i+2 && s[i:i+2] == "ſ" {
			return 2, true
		}
		return 0, false
	}
	for _, c := range [...]string{"s", "t", "re", "ve", "m", "ll", "d"} {
		n, ok := 1, true
		for j := 0; j < len(c) && ok; j++ {
			var w int
			w, ok = eq(n, c[j])
			n += w
		}
		if ok {
			return n
		}
	}
	return 0
}

// trailingSpace implements `\s+(?!\S)|\s+` for s starting with whitespace: the whole run when it ends the text
// or is a single character, else the run minus its last character (left to prefix the next word).
func trailingSpace(s string) int {
	n := runLen(s, isS)
	if n == len(s) {
		return n
	}
	_, lastW := utf8.DecodeLastRuneInString(s[:n])
	if n-lastW > 0 {
		return n - lastW
	}
	return n
}

// splitGPT2 reproduces GPT-2's (ByteLevel use_regex) pattern:
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func splitGPT2(s string) int {
	if n := contraction(s, false); n > 0 {
		return n
	}
	off := 0
	if s[0] == ' ' && len(s) > 1 {
		off = 1
	}
	r, _ := first(s[off:])
	switch {
	case isL(r):
		return off + runLen(s[off:], isL)
	case isN(r):
		return off + runLen(s[off:], isN)
	case isOther(r):
		return off + runLen(s[off:], isOther)
	}
	r0, w0 := first(s)
	if isS(r0) {
		return trailingSpace(s)
	}
	return w0 // unreachable: every rune is \s, \p{L}, \p{N} or other
}

// splitLlama3 reproduces Llama-3's pattern:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func splitLlama3(s string) int {
	if n := contraction(s, true); n > 0 {
		return n
	}
	r0, w0 := first(s)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isL(r0) {
		return runLen(s, isL)
	}
	if r0 != '\r' && r0 != '\n' && !isN(r0) && w0 < len(s) {
		if r1, _ := first(s[w0:]); isL(r1) {
			return w0 + runLen(s[w0:], isL)
		}
	}
	// \p{N}{1,3}
	if isN(r0) {
		n := 0
		for i, r := range s {
			if i > 0 && (n == 3 || !isN(r)) {
				return i
			}
			n++
		}
		return len(s)
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	off := 0
	if r0 == ' ' && w0 < len(s) {
		off = 1
	}
	if r, _ := first(s[off:]); isOther(r) {
		n := off + runLen(s[off:], isOther)
		return n + runLen(s[n:], func(r rune) bool { return r == '\r' || r == '\n' })
	}
	if !isS(r0) {
		return w0 // unreachable: r0 is \s here
	}
	// \s*[\r\n]+ : the whitespace run up to and including its last newline.
	run := runLen(s, isS)
	for i := run - 1; i >= 0; i-- {
		if s[i] == '\r' || s[i] == '\n' {
			return i + 1
		}
	}
	return trailingSpace(s)
}
