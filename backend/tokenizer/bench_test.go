package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// longPrompt joins the corpus until the text has at least n tokens.
func longPrompt(b *testing.B, tok *Tokenizer, n int) string {
	f, err := os.Open(filepath.Join(repoRoot(b), "tests/reference/tokenizer/corpus.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c struct{ Text string }
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			b.Fatal(err)
		}
		lines = append(lines, c.Text)
	}
	var sb strings.Builder
	for k := 0; ; k++ {
		sb.WriteString(lines[k%len(lines)])
		sb.WriteString("\n")
		if k%len(lines) == 0 {
			if ids, _ := tok.Encode(sb.String(), false); len(ids) >= n {
				return sb.String()
			}
		}
	}
}

// BenchmarkEncode8K encodes an ~8K-token prompt; "cold" empties the word cache before every run.
func BenchmarkEncode8K(b *testing.B) {
	for _, tc := range []struct {
		name string
		load func(testing.TB) *Tokenizer
	}{
		{"smollm2", smolFromGGUF},
		{"llama3", func(t testing.TB) *Tokenizer { return fromCacheJSON(t, "llama3") }},
		{"llama2", func(t testing.TB) *Tokenizer { return fromCacheJSON(t, "llama2") }},
	} {
		for _, cold := range []bool{true, false} {
			name := tc.name + map[bool]string{true: "/cold", false: "/warm"}[cold]
			b.Run(name, func(b *testing.B) {
				tok := tc.load(b)
				text := longPrompt(b, tok, 8192)
				ids, _ := tok.Encode(text, false)
				b.SetBytes(int64(len(text)))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if cold {
						tok.cache.mu.Lock()
						tok.cache.m = nil
						tok.cache.mu.Unlock()
					}
					if _, err := tok.Encode(text, false); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(ids))*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}
