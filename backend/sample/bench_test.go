package sample

import (
	"math/rand/v2"
	"testing"
)

// benchLogits imitates an LLM's logits: a broad normal body with a few clear leaders.
func benchLogits(vocab int) []float32 {
	r := rand.New(rand.NewPCG(31, 32))
	l := randomLogits(r, vocab, 2.5)
	for i := 0; i < 8; i++ {
		l[r.IntN(vocab)] += float32(8 + i)
	}
	return l
}

func BenchmarkSample(b *testing.B) {
	const vocab = 49152
	logits := benchLogits(vocab)
	history := make([]int32, 256)
	for i := range history {
		history[i] = int32(i * 97 % vocab)
	}
	cases := []struct {
		name string
		p    Params
	}{
		{"greedy", Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}},
		{"greedy_penalty1.1", Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1.1}},
		{"temperature0.8", Params{Temperature: 0.8, TopP: 1, RepetitionPenalty: 1}},
		{"topk40_topp0.9", Params{Temperature: 0.8, TopK: 40, TopP: 0.9, RepetitionPenalty: 1}},
		{"topp0.9", Params{Temperature: 0.8, TopP: 0.9, RepetitionPenalty: 1}},
		{"topp0.9_T1.5", Params{Temperature: 1.5, TopP: 0.9, RepetitionPenalty: 1}},
		{"minp0.05", Params{Temperature: 1, TopP: 1, MinP: 0.05, RepetitionPenalty: 1}},
	}
	buf := make([]float32, vocab)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s, err := New(c.p, vocab)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				copy(buf, logits)
				s.Sample(buf, history)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

func BenchmarkNext(b *testing.B) {
	const vocab = 49152
	logits := benchLogits(vocab)
	prompt, output := make([]int32, 256), make([]int32, 256)
	for i := range prompt {
		prompt[i], output[i] = int32(i*97%vocab), int32(i*89%vocab)
	}
	p := Params{Temperature: 0.8, TopK: 40, TopP: 0.9, RepetitionPenalty: 1.1, FrequencyPenalty: 0.3, PresencePenalty: 0.2,
		MinTokens: 512, StopTokenIDs: []int32{5}, N: 1}
	s, err := New(p, vocab)
	if err != nil {
		b.Fatal(err)
	}
	s.SetEOS([]int32{2})
	buf := make([]float32, vocab)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, logits)
		s.Next(buf, prompt, output)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkLogProbs(b *testing.B) {
	const vocab = 49152
	logits := benchLogits(vocab)
	top := make([]TokenLogprob, 0, MaxLogprobs)
	b.ReportAllocs()
	for b.Loop() {
		_, top = LogProbs(logits, 7, MaxLogprobs, top)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
