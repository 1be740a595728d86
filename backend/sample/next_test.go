package sample

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// refNext is the reference for Next's steps 1-3, written the plain way (maps, float64): the logits after
// the repetition penalty over prompt+output, the frequency and presence penalties over output, and the
// min_tokens mask of eos and StopTokenIDs.
func refNext(logits []float32, prompt, output []int32, p Params, eos []int32) []float64 {
	l := make([]float64, len(logits))
	for i, v := range logits {
		l[i] = float64(v)
	}
	in := func(id int32) bool { return id >= 0 && int(id) < len(l) }
	seen := map[int32]bool{}
	for _, id := range append(slices.Clone(prompt), output...) {
		if !in(id) || seen[id] {
			continue
		}
		seen[id] = true
		if l[id] > 0 {
			l[id] /= float64(p.RepetitionPenalty)
		} else {
			l[id] *= float64(p.RepetitionPenalty)
		}
	}
	count := map[int32]int{}
	for _, id := range output {
		if in(id) {
			count[id]++
		}
	}
	for id, c := range count {
		l[id] -= float64(p.FrequencyPenalty)*float64(c) + float64(p.PresencePenalty)
	}
	if len(output) < p.MinTokens {
		for _, id := range append(slices.Clone(eos), p.StopTokenIDs...) {
			if in(id) {
				l[id] = math.Inf(-1)
			}
		}
	}
	return l
}

// TestNextGolden compares Next's processed logits (greedy leaves them as processed) with refNext over
// random cases: -Inf exactly, the rest within float32 rounding; and the greedy pick with the reference's
// best logit.
func TestNextGolden(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const vocab = 64
	ids := func(n int) []int32 {
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(r.IntN(vocab+4) - 2) // a few out of range
		}
		return v
	}
	for c := 0; c < 300; c++ {
		p := greedyParams()
		p.RepetitionPenalty = []float32{1, 1.3, 0.7}[c%3]
		p.FrequencyPenalty = float32(r.Float64()*4 - 2)
		p.PresencePenalty = float32(r.Float64()*4 - 2)
		if c%5 == 0 {
			p.FrequencyPenalty, p.PresencePenalty = 0, 0
		}
		p.MinTokens = r.IntN(6)
		p.StopTokenIDs = ids(r.IntN(3))
		for i, id := range p.StopTokenIDs {
			p.StopTokenIDs[i] = max(id, 0) // Validate wants >= 0; ids past the vocabulary stay
		}
		eos := ids(1 + r.IntN(2))
		prompt, output := ids(r.IntN(12)), ids(r.IntN(10))
		logits := randomLogits(r, vocab, 3)
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			s := mustNew(t, p, vocab)
			s.SetEOS(eos)
			want := refNext(logits, prompt, output, p, eos)
			for round := 0; round < 2; round++ { // the second round checks the scratch buffers are clean
				got := slices.Clone(logits)
				tok := s.Next(got, prompt, output)
				best := math.Inf(-1)
				for i, w := range want {
					g := float64(got[i])
					best = max(best, w)
					if math.IsInf(w, -1) != math.IsInf(g, -1) || math.Abs(g-w) > 1e-5*max(1, math.Abs(w)) {
						t.Fatalf("round %d: logit %d = %v, reference %v (%+v, prompt %v, output %v, eos %v)", round, i, g, w, p, prompt, output, eos)
					}
				}
				if math.Abs(want[tok]-best) > 1e-5*max(1, math.Abs(best)) {
					t.Fatalf("round %d: greedy picked %d (reference logit %v), best is %v", round, tok, want[tok], best)
				}
			}
		})
	}
}

func TestOutputPenalties(t *testing.T) {
	tests := []struct {
		name           string
		freq, presence float32
		logits         []float32
		prompt, output []int32
		want           []float32
	}{
		{"frequency", 0.5, 0, []float32{1, 1, 1}, nil, []int32{0, 0, 2}, []float32{0, 1, 0.5}},
		{"presence", 0, 0.25, []float32{1, 1, 1}, nil, []int32{0, 0, 2}, []float32{0.75, 1, 0.75}},
		{"both", 0.5, 0.25, []float32{1, 1, 1}, nil, []int32{0, 0, 2}, []float32{-0.25, 1, 0.25}},
		{"negative encourages", -1, -0.5, []float32{1, 1, 1}, nil, []int32{1, 1}, []float32{1, 3.5, 1}},
		{"prompt not counted", 1, 1, []float32{1, 1, 1}, []int32{0, 1, 2}, nil, []float32{1, 1, 1}},
		{"out of range ignored", 1, 1, []float32{1, 1}, nil, []int32{-1, 2, 1}, []float32{1, -1}},
		{"-Inf stays", 1, 1, []float32{float32(math.Inf(-1)), 1}, nil, []int32{0}, []float32{float32(math.Inf(-1)), 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := greedyParams()
			p.FrequencyPenalty, p.PresencePenalty = tc.freq, tc.presence
			s := mustNew(t, p, len(tc.logits))
			for round := 0; round < 2; round++ {
				l := slices.Clone(tc.logits)
				s.Next(l, tc.prompt, tc.output)
				if !slices.Equal(l, tc.want) {
					t.Fatalf("round %d: logits %v, want %v", round, l, tc.want)
				}
			}
		})
	}
}

func TestMinTokens(t *testing.T) {
	// Greedy would pick 3 (a stop id) and then 2 (end of sequence).
	logits := []float32{0, 1, 5, 6}
	tests := []struct {
		name      string
		minTokens int
		ignoreEOS bool
		generated int
		want      int32
	}{
		{"off", 0, false, 0, 3},
		{"held", 2, false, 0, 1},
		{"held at min-1", 2, false, 1, 1},
		{"released at min", 2, false, 2, 3},
		{"held with ignore_eos too", 2, true, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := greedyParams()
			p.MinTokens, p.IgnoreEOS, p.StopTokenIDs = tc.minTokens, tc.ignoreEOS, []int32{3, 99}
			s := mustNew(t, p, len(logits))
			s.SetEOS([]int32{2, -5})
			if got := s.Next(slices.Clone(logits), []int32{0}, make([]int32, tc.generated)); got != tc.want {
				t.Fatalf("Next = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestStop(t *testing.T) {
	tests := []struct {
		name      string
		ignoreEOS bool
		stopIDs   []int32
		tok       int32
		want      bool
	}{
		{"eos", false, nil, 2, true},
		{"second eos", false, nil, 5, true},
		{"other", false, []int32{7}, 3, false},
		{"stop id", false, []int32{7}, 7, true},
		{"ignore_eos", true, []int32{7}, 2, false},
		{"ignore_eos keeps stop ids", true, []int32{7}, 7, true},
		{"negative", false, nil, -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			p.IgnoreEOS, p.StopTokenIDs = tc.ignoreEOS, tc.stopIDs
			s := mustNew(t, p, 10)
			eos := []int32{2, 5}
			s.SetEOS(eos)
			eos[0] = 9 // SetEOS copied
			if got := s.Stop(tc.tok); got != tc.want {
				t.Fatalf("Stop(%d) = %v, want %v", tc.tok, got, tc.want)
			}
		})
	}
	s := mustNew(t, DefaultParams(), 10)
	s.SetEOS([]int32{4})
	if err := s.Reset(DefaultParams()); err != nil || !s.Stop(4) {
		t.Fatalf("after Reset: Stop(4) = %v (%v), want true: Reset keeps the EOS ids", s.Stop(4), err)
	}
}

// Without the output-only features, Next draws what Sample draws over prompt+output.
func TestNextMatchesSample(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	logits := randomLogits(r, 500, 2)
	prompt, output := []int32{1, 2, 3, 400}, []int32{3, 9, 9}
	for i, p := range []Params{greedyParams(), {Temperature: 0.8, TopK: 40, TopP: 0.9, RepetitionPenalty: 1.2, Seed: 3}, {Temperature: 1.1, TopP: 0.95, MinP: 0.02, RepetitionPenalty: 1, Seed: 4}} {
		a, b := mustNew(t, p, 500), mustNew(t, p, 500)
		for step := 0; step < 200; step++ {
			x, y := slices.Clone(logits), slices.Clone(logits)
			if ta, tb := a.Sample(x, append(slices.Clone(prompt), output...)), b.Next(y, prompt, output); ta != tb {
				t.Fatalf("variant %d step %d: Sample %d, Next %d", i, step, ta, tb)
			}
		}
	}
}

func TestNextZeroAllocs(t *testing.T) {
	const vocab = 49152
	r := rand.New(rand.NewPCG(7, 8))
	logits := randomLogits(r, vocab, 3)
	prompt, output := make([]int32, 512), make([]int32, 256)
	for i := range prompt {
		prompt[i] = int32(r.IntN(vocab))
	}
	for i := range output {
		output[i] = int32(r.IntN(vocab))
	}
	p := Params{Temperature: 0.7, TopK: 40, TopP: 0.9, RepetitionPenalty: 1.1, FrequencyPenalty: 0.3, PresencePenalty: 0.2,
		MinTokens: 1000, StopTokenIDs: []int32{5, 6}, N: 1}
	s := mustNew(t, p, vocab)
	s.SetEOS([]int32{2})
	buf := make([]float32, vocab)
	s.Next(buf, prompt, output) // the first call with output penalties makes the count buffer
	allocs := testing.AllocsPerRun(20, func() {
		copy(buf, logits)
		s.Next(buf, prompt, output)
	})
	if allocs != 0 {
		t.Fatalf("Next allocates %v times per token, want 0", allocs)
	}
}
