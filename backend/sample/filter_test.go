package sample

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// keptIDs runs the Sampler's warpers (temperature, top-k, top-p, min-p) on a copy of logits and
// returns the surviving ids in increasing order.
func keptIDs(s *Sampler, logits []float32) []int32 {
	l := slices.Clone(logits)
	ids, _ := survivors(s, s.filter(l, prepare(l, s.p.Temperature)))
	return ids
}

// refKeep is the plain reference: sort the whole vocabulary, then apply Hugging Face's warpers as
// written there (top-p by an ascending cumulative sum compared with 1-p, min-p on normalised
// probabilities), in float64. Ties rank the lower id first. Returns surviving ids in increasing order.
func refKeep(logits []float32, p Params) []int32 {
	n := len(logits)
	l := make([]float64, n)
	order := make([]int, n)
	for i, v := range logits {
		l[i] = float64(v / p.Temperature)
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return l[order[a]] > l[order[b]] })
	if p.TopK > 0 && p.TopK < n {
		order = order[:p.TopK]
	}
	softmax := func() []float64 {
		pr := make([]float64, len(order))
		z := 0.0
		for i, id := range order {
			pr[i] = math.Exp(l[id] - l[order[0]])
			z += pr[i]
		}
		for i := range pr {
			pr[i] /= z
		}
		return pr
	}
	if p.TopP < 1 {
		pr := softmax()
		cum, cut := 0.0, 0 // ascending: remove the smallest while their cumulative mass <= 1-p
		for i := len(order) - 1; i > 0; i-- {
			cum += pr[i]
			if cum > 1-float64(p.TopP) {
				break
			}
			cut++
		}
		order = order[:len(order)-cut]
	}
	if p.MinP > 0 {
		pr := softmax()
		var keep []int
		for i, id := range order {
			if pr[i] >= float64(p.MinP)*pr[0] {
				keep = append(keep, id)
			}
		}
		order = keep
	}
	ids := make([]int32, len(order))
	for i, id := range order {
		ids[i] = int32(id)
	}
	slices.Sort(ids)
	return ids
}

// logProbs returns float32 logits whose softmax is probs.
func logProbs(probs ...float64) []float32 {
	l := make([]float32, len(probs))
	for i, p := range probs {
		l[i] = float32(math.Log(p))
	}
	return l
}

func TestFilterCases(t *testing.T) {
	base := logProbs(0.5, 0.3, 0.15, 0.05)
	quarter := logProbs(0.25, 0.25, 0.25, 0.25)
	tests := []struct {
		name   string
		p      Params
		logits []float32
		want   []int32
	}{
		{"all", Params{Temperature: 1, TopP: 1}, base, []int32{0, 1, 2, 3}},
		{"top-k 1", Params{Temperature: 1, TopK: 1, TopP: 1}, base, []int32{0}},
		{"top-k 3", Params{Temperature: 1, TopK: 3, TopP: 1}, base, []int32{0, 1, 2}},
		{"top-k = vocab", Params{Temperature: 1, TopK: 4, TopP: 1}, base, []int32{0, 1, 2, 3}},
		{"top-k > vocab", Params{Temperature: 1, TopK: 100, TopP: 1}, base, []int32{0, 1, 2, 3}},
		{"top-k ties exactly k", Params{Temperature: 1, TopK: 2, TopP: 1}, []float32{1, 3, 3, 3, 2, 0}, []int32{1, 2}},
		{"top-k ties exactly 4", Params{Temperature: 1, TopK: 4, TopP: 1}, []float32{1, 3, 3, 3, 2, 0}, []int32{1, 2, 3, 4}},
		{"top-k unordered", Params{Temperature: 1, TopK: 3, TopP: 1}, []float32{-5, 9, 0, 4, -1, 7, 8, 2}, []int32{1, 5, 6}},
		{"top-p tiny keeps one", Params{Temperature: 1, TopP: 0.01}, base, []int32{0}},
		{"top-p below first", Params{Temperature: 1, TopP: 0.49}, base, []int32{0}},
		{"top-p crossing kept", Params{Temperature: 1, TopP: 0.51}, base, []int32{0, 1}},
		{"top-p just below 0.8", Params{Temperature: 1, TopP: 0.79}, base, []int32{0, 1}},
		{"top-p just above 0.8", Params{Temperature: 1, TopP: 0.81}, base, []int32{0, 1, 2}},
		{"top-p 0.94", Params{Temperature: 1, TopP: 0.94}, base, []int32{0, 1, 2}},
		{"top-p 0.96 keeps all", Params{Temperature: 1, TopP: 0.96}, base, []int32{0, 1, 2, 3}},
		{"top-p ties lower ids", Params{Temperature: 1, TopP: 0.3}, quarter, []int32{0, 1}},
		{"top-p ties 0.6", Params{Temperature: 1, TopP: 0.6}, quarter, []int32{0, 1, 2}},
		// After top-k 2 the survivors are renormalised to 0.625/0.375: 0.6 no longer reaches token 1.
		{"top-p after top-k renormalised", Params{Temperature: 1, TopK: 2, TopP: 0.6}, base, []int32{0}},
		{"top-p after top-k crossing", Params{Temperature: 1, TopK: 2, TopP: 0.63}, base, []int32{0, 1}},
		// Temperature 2 flattens to 0.377/0.292/0.206/0.125 (from sqrt of the probabilities).
		{"top-p after temperature", Params{Temperature: 2, TopP: 0.5}, base, []int32{0, 1}},
		{"min-p 0.09 keeps all", Params{Temperature: 1, TopP: 1, MinP: 0.09}, base, []int32{0, 1, 2, 3}},
		{"min-p 0.2", Params{Temperature: 1, TopP: 1, MinP: 0.2}, base, []int32{0, 1, 2}},
		{"min-p 0.5", Params{Temperature: 1, TopP: 1, MinP: 0.5}, base, []int32{0, 1}},
		{"min-p 0.7", Params{Temperature: 1, TopP: 1, MinP: 0.7}, base, []int32{0}},
		{"min-p 1 keeps top ties", Params{Temperature: 1, TopP: 1, MinP: 1}, logProbs(0.4, 0.4, 0.2), []int32{0, 1}},
		{"min-p after temperature", Params{Temperature: 2, TopP: 1, MinP: 0.7}, base, []int32{0, 1}},
		{"min-p after top-p", Params{Temperature: 1, TopP: 0.81, MinP: 0.35}, base, []int32{0, 1}},
		{"min-p after top-k", Params{Temperature: 1, TopK: 2, TopP: 1, MinP: 0.5}, base, []int32{0, 1}},
		{"-Inf never kept", Params{Temperature: 1, TopP: 1}, []float32{0, float32(math.Inf(-1)), 1}, []int32{0, 2}},
		{"-Inf never kept top-p", Params{Temperature: 1, TopP: 0.999999}, []float32{0, float32(math.Inf(-1)), 1}, []int32{0, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.RepetitionPenalty = 1
			s := mustNew(t, tc.p, len(tc.logits))
			if got := keptIDs(s, tc.logits); !slices.Equal(got, tc.want) {
				t.Fatalf("kept %v, want %v", got, tc.want)
			}
			if ref := refKeep(tc.logits, tc.p); !slices.Equal(ref, tc.want) && !math.IsInf(float64(slices.Min(tc.logits)), -1) {
				t.Fatalf("reference kept %v, want %v (the case itself is wrong)", ref, tc.want)
			}
		})
	}
}

// TestFilterMatchesFullSort compares the partial selection with the full-sort reference over random
// logits, including heavily tied ones.
func TestFilterMatchesFullSort(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	topKs := []int{0, 0, 1, 5, 40, 200}
	topPs := []float32{1, 0.1, 0.5, 0.9, 0.95, 0.99}
	minPs := []float32{0, 0, 0.01, 0.1, 0.5}
	temps := []float32{0.3, 0.7, 1, 1.5}
	trials, compared := 400, 0
	for trial := 0; trial < trials; trial++ {
		vocab := []int{7, 300, 3000}[trial%3]
		if trial%50 == 0 {
			vocab = 49152
		}
		scale := []float64{0.2, 1, 3, 8}[r.IntN(4)]
		logits := randomLogits(r, vocab, scale)
		if trial%4 == 1 { // many ties
			for i, v := range logits {
				logits[i] = float32(math.Round(float64(v)*2) / 2)
			}
		}
		p := Params{
			Temperature:       temps[r.IntN(len(temps))],
			TopK:              topKs[r.IntN(len(topKs))],
			TopP:              topPs[r.IntN(len(topPs))],
			MinP:              minPs[r.IntN(len(minPs))],
			RepetitionPenalty: 1,
		}
		s := mustNew(t, p, vocab)
		got, want := keptIDs(s, logits), refKeep(logits, p)
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d (vocab %d, scale %v, %+v): kept %d ids, reference %d\n got %v\nwant %v",
				trial, vocab, scale, p, len(got), len(want), head(got), head(want))
		}
		compared++
	}
	if compared != trials {
		t.Fatalf("compared %d of %d trials", compared, trials)
	}
}

func head(ids []int32) string {
	if len(ids) > 20 {
		return fmt.Sprint(ids[:20], "...")
	}
	return fmt.Sprint(ids)
}

// chiSquareLimit approximates the chi-square quantile for df degrees of freedom at z standard
// deviations (Wilson-Hilferty).
func chiSquareLimit(df int, z float64) float64 {
	k := float64(df)
	a := 2 / (9 * k)
	return k * math.Pow(1-a+z*math.Sqrt(a), 3)
}

// TestDrawDistribution draws many tokens with a fixed seed and checks the counts against softmax(l/T)
// over the reference survivors with a chi-square test (z = 3.7, about 1e-4 one-sided).
func TestDrawDistribution(t *testing.T) {
	six := []float32{2, 1, 0.5, 0, -1, -3}
	wide := randomLogits(rand.New(rand.NewPCG(5, 6)), 40, 1)
	tests := []struct {
		name   string
		p      Params
		logits []float32
	}{
		{"T=1", Params{Temperature: 1, TopP: 1}, six},
		{"T=0.5", Params{Temperature: 0.5, TopP: 1}, six},
		{"T=1.7", Params{Temperature: 1.7, TopP: 1}, six},
		{"top-k 3", Params{Temperature: 1, TopK: 3, TopP: 1}, six},
		{"top-p 0.7 T=0.8", Params{Temperature: 0.8, TopP: 0.7}, six},
		{"min-p 0.2", Params{Temperature: 1, TopP: 1, MinP: 0.2}, six},
		{"all three", Params{Temperature: 1.3, TopK: 20, TopP: 0.9, MinP: 0.05}, wide},
		{"wide T=1", Params{Temperature: 1, TopP: 1}, wide},
	}
	const draws = 60000
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.RepetitionPenalty, tc.p.Seed = 1, 42
			s := mustNew(t, tc.p, len(tc.logits))
			counts := make([]int, len(tc.logits))
			for _, id := range drawMany(s, tc.logits, draws) {
				counts[id]++
			}
			keep := refKeep(tc.logits, tc.p)
			expect := make([]float64, len(tc.logits))
			z := 0.0
			for _, id := range keep {
				expect[id] = math.Exp(float64(tc.logits[id]) / float64(tc.p.Temperature))
				z += expect[id]
			}
			chi, df := 0.0, -1
			for id, c := range counts {
				e := expect[id] / z * draws
				if e == 0 {
					if c != 0 {
						t.Fatalf("token %d drawn %d times but filtered out", id, c)
					}
					continue
				}
				chi += (float64(c) - e) * (float64(c) - e) / e
				df++
			}
			if df < 1 {
				return // one survivor: the check above is the whole test
			}
			if limit := chiSquareLimit(df, 3.7); chi > limit {
				t.Fatalf("chi-square %.1f over %d dof exceeds %.1f; counts %v", chi, df, limit, counts)
			}
		})
	}
}

// TestNucleusSortsFew checks that top-p alone sorts only a small part of a realistic vocabulary (the
// tokens of one bin) and that the bins agree with the exact running sum (no full-sort fallback).
func TestNucleusSortsFew(t *testing.T) {
	const vocab = 49152
	tests := []struct {
		name     string
		logits   []float32
		topP     float32
		maxShare float64 // most tokens sorted allowed, as a share of vocab
	}{
		{"bench logits p=0.9", benchLogits(vocab), 0.9, 0.01},
		{"bench logits p=0.99", benchLogits(vocab), 0.99, 0.02},
		{"normal scale 3 p=0.9", randomLogits(rand.New(rand.NewPCG(41, 42)), vocab, 3), 0.9, 0.02},
		{"normal scale 1 p=0.5", randomLogits(rand.New(rand.NewPCG(43, 44)), vocab, 1), 0.5, 0.05},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, Params{Temperature: 1, TopP: tc.topP, RepetitionPenalty: 1}, vocab)
			l := slices.Clone(tc.logits)
			m := prepare(l, 1)
			sure, c, z := s.nucleusCandidates(l, m)
			t.Logf("%d sure, %d sorted of %d tokens", sure, c-sure, vocab)
			if float64(c-sure) > tc.maxShare*vocab {
				t.Errorf("sorted %d tokens, want at most %.0f", c-sure, tc.maxShare*vocab)
			}
			k, fellBack := s.cutNucleus(l, sure, c, z)
			if fellBack {
				t.Errorf("the bins disagreed with the running sum: full-sort fallback ran")
			}
			if k < max(sure, 1) || k > c {
				t.Errorf("kept %d, want between %d sure tokens and %d candidates", k, sure, c)
			}
		})
	}
}

// TestNucleusFallback hands cutNucleus candidates binned for another top_p than it cuts at, as if
// rounding had put the crossing in the wrong bin: the full-sort fallback must give the reference set.
func TestNucleusFallback(t *testing.T) {
	logits := randomLogits(rand.New(rand.NewPCG(45, 46)), 3000, 2)
	tests := []struct{ binAt, cutAt float32 }{{0.2, 0.5}, {0.2, 0.9}, {0.2, 0.99}, {0.95, 0.3}, {0.99, 0.6}}
	for _, tc := range tests {
		s := mustNew(t, Params{Temperature: 1, TopP: tc.binAt, RepetitionPenalty: 1}, len(logits))
		l := slices.Clone(logits)
		m := prepare(l, 1)
		sure, c, z := s.nucleusCandidates(l, m)
		s.p.TopP = tc.cutAt
		k, fellBack := s.cutNucleus(l, sure, c, z)
		got := slices.Clone(s.cand[:k])
		slices.Sort(got)
		want := refKeep(logits, Params{Temperature: 1, TopP: tc.cutAt})
		if !fellBack || !slices.Equal(got, want) {
			t.Errorf("binned at %v, cut at %v: fell back %v, kept %d ids %v, reference %d ids %v",
				tc.binAt, tc.cutAt, fellBack, k, head(got), len(want), head(want))
		}
	}
}
