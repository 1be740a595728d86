package tokenizer

import (
	"slices"
	"testing"
)

func pieces(stages []preStage, s string) []string {
	var out []string
	runPipeline(stages, s, func(p string) { out = append(out, p) })
	return out
}

func TestPreTokenizers(t *testing.T) {
	gpt2 := []preStage{splitStage(splitGPT2)}
	llama3 := []preStage{splitStage(splitLlama3)}
	smol := []preStage{digitsStage, splitStage(splitGPT2)}
	cases := []struct {
		name   string
		stages []preStage
		in     string
		want   []string
	}{
		{"gpt2 words", gpt2, "Hello world", []string{"Hello", " world"}},
		{"gpt2 space run before word keeps one space", gpt2, "a  b", []string{"a", " ", " b"}},
		{"gpt2 trailing spaces", gpt2, "x   ", []string{"x", "   "}},
		{"gpt2 contraction", gpt2, "don't", []string{"don", "'t"}},
		{"gpt2 contraction is case-sensitive", gpt2, "DON'T", []string{"DON", "'", "T"}},
		{"gpt2 tabs", gpt2, "a\t\tb", []string{"a", "\t", "\t", "b"}},
		{"gpt2 numbers", gpt2, "12 345", []string{"12", " 345"}},
		{"gpt2 punctuation", gpt2, "hi!!! ok", []string{"hi", "!!!", " ok"}},
		{"gpt2 lone space", gpt2, " ", []string{" "}},
		{"gpt2 only ASCII space prefixes a word", gpt2, "a\u00a0\u00a0b", []string{"a", "\u00a0", "\u00a0", "b"}},
		{"llama3 contraction any case", llama3, "DON'T", []string{"DON", "'T"}},
		{"llama3 contraction then letters", llama3, "we'VEry", []string{"we", "'VE", "ry"}},
		{"llama3 digit groups of 3", llama3, "12345", []string{"123", "45"}},
		{"llama3 newlines", llama3, "a\n\n b", []string{"a", "\n\n", " b"}},
		{"llama3 punctuation takes newlines", llama3, "hello!!\n\nworld", []string{"hello", "!!\n\n", "world"}},
		{"llama3 tab joins word", llama3, "\tfoo", []string{"\tfoo"}},
		{"llama3 trailing spaces", llama3, "x  ", []string{"x", "  "}},
		{"llama3 long s folds", llama3, "'ſ", []string{"'ſ"}},
		{"smollm digits", smol, "a12b 3", []string{"a", "1", "2", "b", " ", "3"}},
		{"smollm other numerals", smol, "x ½", []string{"x", " ", "½"}},
		{"empty", gpt2, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := pieces(c.stages, c.in); !slices.Equal(got, c.want) {
				t.Errorf("pieces(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}
