package tokenizer

// GPT-2's byte-level alphabet: every byte maps to one printable rune so that BPE vocabularies never hold raw
// control bytes or spaces. Printable Latin-1 bytes map to themselves; the others (0-32, 127-160, 173) map to
// U+0100 upward, in byte order.
var (
	byteToRune [256]rune
	runeToByte = map[rune]byte{}
	// byteSym holds string(byteToRune[b]), the vocabulary key of each single byte.
	byteSym [256]string
)

func init() {
	n := rune(0)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = 256 + n
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
		byteSym[b] = string(byteToRune[b])
	}
}

// byteLevelString maps raw bytes to their byte-level vocabulary form.
func byteLevelString(s string) string {
	buf := make([]rune, 0, len(s))
	for i := 0; i < len(s); i++ {
		buf = append(buf, byteToRune[s[i]])
	}
	return string(buf)
}

// appendByteLevelDecoded appends the raw bytes a byte-level token string stands for. Runes outside the
// byte-level alphabet (never produced by a byte-level vocabulary) are appended as their UTF-8.
func appendByteLevelDecoded(dst []byte, tok string) []byte {
	for _, r := range tok {
		if b, ok := runeToByte[r]; ok {
			dst = append(dst, b)
		} else {
			dst = append(dst, string(r)...)
		}
	}
	return dst
}
