package sample

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func mustNew(t testing.TB, p Params, vocab int) *Sampler {
	t.Helper()
	s, err := New(p, vocab)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func greedyParams() Params {
	p := DefaultParams()
	p.Temperature = 0
	return p
}

func TestGreedy(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	tests := []struct {
		name   string
		logits []float32
		want   int32
	}{
		{"single", []float32{3}, 0},
		{"max in middle", []float32{1, 5, 2}, 1},
		{"tie lowest id wins", []float32{1, 5, 2, 5, 5}, 1},
		{"tie at start", []float32{7, 7}, 0},
		{"all equal", []float32{0, 0, 0, 0}, 0},
		{"negative", []float32{-3, -1, -2}, 1},
		{"NaN never wins", []float32{nan, 0.5, nan, 0.25}, 1},
		{"all -Inf", []float32{-inf, -inf, -inf}, 0},
		{"all NaN", []float32{nan, nan}, 0},
		{"+Inf wins", []float32{1e30, inf, 3}, 1},
		{"empty", nil, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, greedyParams(), 8)
			if got := s.Sample(slices.Clone(tc.logits), nil); got != tc.want {
				t.Fatalf("Sample(%v) = %d, want %d", tc.logits, got, tc.want)
			}
		})
	}
}

func TestSampleReadsOnlyVocab(t *testing.T) {
	s := mustNew(t, greedyParams(), 3)
	if got := s.Sample([]float32{0, 2, 1, 9}, nil); got != 1 {
		t.Fatalf("Sample with a logit past vocab = %d, want 1", got)
	}
}

func TestRepetitionPenalty(t *testing.T) {
	tests := []struct {
		name    string
		penalty float32
		logits  []float32
		history []int32
		want    []float32
	}{
		{"positive divided", 2, []float32{4, 1}, []int32{0}, []float32{2, 1}},
		{"negative multiplied", 2, []float32{-4, 1}, []int32{0}, []float32{-8, 1}},
		{"zero stays", 2, []float32{0, 1}, []int32{0}, []float32{0, 1}},
		{"below one boosts", 0.5, []float32{4, -4, 1}, []int32{0, 1}, []float32{8, -2, 1}},
		{"duplicates once", 2, []float32{8, -1, 3}, []int32{0, 0, 1, 0, 1}, []float32{4, -2, 3}},
		{"out of range ignored", 2, []float32{8, 2}, []int32{-1, 2, 99, 1}, []float32{8, 1}},
		{"off", 1, []float32{8, -2}, []int32{0, 1}, []float32{8, -2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := greedyParams()
			p.RepetitionPenalty = tc.penalty
			s := mustNew(t, p, len(tc.logits))
			for round := 0; round < 2; round++ { // the second round checks the seen-stamps reset
				l := slices.Clone(tc.logits)
				s.Sample(l, tc.history)
				if !slices.Equal(l, tc.want) {
					t.Fatalf("round %d: logits after penalty = %v, want %v", round, l, tc.want)
				}
			}
		})
	}
}

func TestRepetitionPenaltyChangesGreedy(t *testing.T) {
	p := greedyParams()
	p.RepetitionPenalty = 1.5
	s := mustNew(t, p, 3)
	// 3/1.5 = 2 < 2.5: the repeated token loses.
	if got := s.Sample([]float32{3, 2.5, -1}, []int32{0}); got != 1 {
		t.Fatalf("greedy with penalty = %d, want 1", got)
	}
	// -1*1.5 = -1.5 < -1.2.
	if got := s.Sample([]float32{-1, -1.2}, []int32{0}); got != 1 {
		t.Fatalf("greedy with penalty on negative = %d, want 1", got)
	}
}

func randomLogits(r *rand.Rand, n int, scale float64) []float32 {
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * scale)
	}
	return l
}

func drawMany(s *Sampler, logits []float32, n int) []int32 {
	out := make([]int32, n)
	buf := make([]float32, len(logits))
	for i := range out {
		copy(buf, logits)
		out[i] = s.Sample(buf, nil)
	}
	return out
}

func TestSeedDeterminism(t *testing.T) {
	logits := randomLogits(rand.New(rand.NewPCG(1, 2)), 1000, 2)
	variants := []Params{DefaultParams(), {Temperature: 0.8, TopK: 40, TopP: 0.9, RepetitionPenalty: 1}, {Temperature: 1.2, TopP: 0.95, MinP: 0.02, RepetitionPenalty: 1}}
	for i, p := range variants {
		p.Seed = 7
		a := drawMany(mustNew(t, p, 1000), logits, 300)
		b := drawMany(mustNew(t, p, 1000), logits, 300)
		if !slices.Equal(a, b) {
			t.Errorf("variant %d: same seed gave different tokens", i)
		}
		p.Seed = 8
		c := drawMany(mustNew(t, p, 1000), logits, 300)
		if slices.Equal(a, c) {
			t.Errorf("variant %d: seeds 7 and 8 gave the same 300 tokens", i)
		}
		s := mustNew(t, p, 1000)
		first := drawMany(s, logits, 50)
		if err := s.Reset(p); err != nil {
			t.Fatal(err)
		}
		if again := drawMany(s, logits, 50); !slices.Equal(first, again) {
			t.Errorf("variant %d: Reset did not restart the stream", i)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	const vocab = 49152
	r := rand.New(rand.NewPCG(3, 4))
	logits := randomLogits(r, vocab, 3)
	history := make([]int32, 512)
	for i := range history {
		history[i] = int32(r.IntN(vocab))
	}
	buf := make([]float32, vocab)
	tests := []struct {
		name string
		p    Params
	}{
		{"greedy penalty", Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1.2}},
		{"temperature", Params{Temperature: 0.7, TopP: 1, RepetitionPenalty: 1}},
		{"top-k top-p", Params{Temperature: 0.7, TopK: 40, TopP: 0.9, RepetitionPenalty: 1.1}},
		{"top-p", Params{Temperature: 1, TopP: 0.9, RepetitionPenalty: 1}},
		{"min-p", Params{Temperature: 1, TopP: 1, MinP: 0.05, RepetitionPenalty: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, tc.p, vocab)
			allocs := testing.AllocsPerRun(20, func() {
				copy(buf, logits)
				s.Sample(buf, history)
			})
			if allocs != 0 {
				t.Fatalf("Sample allocates %v times per token, want 0", allocs)
			}
		})
	}
}
