package sample

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// refLogProbs is the direct computation: log(exp(x_i) / sum_j exp(x_j)) in float64, no shift (so only
// for logits small enough not to overflow), and the top k by sorting every id.
func refLogProbs(logits []float32, k int) ([]float64, []int32) {
	z := 0.0
	for _, v := range logits {
		z += math.Exp(float64(v))
	}
	lp := make([]float64, len(logits))
	ids := make([]int32, len(logits))
	for i, v := range logits {
		lp[i] = math.Log(math.Exp(float64(v)) / z)
		ids[i] = int32(i)
	}
	slices.SortFunc(ids, func(a, b int32) int {
		if c := cmp.Compare(logits[b], logits[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return lp, ids[:min(max(k, 0), len(ids))]
}

func TestLogProbsGolden(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for c := 0; c < 200; c++ {
		n := 1 + r.IntN(300)
		logits := randomLogits(r, n, 4)
		if c%4 == 0 { // ties
			for i := range logits {
				logits[i] = float32(math.Round(float64(logits[i])))
			}
		}
		k := r.IntN(25) - 2
		chosen := int32(r.IntN(n))
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			wantLP, wantTop := refLogProbs(logits, k)
			before := slices.Clone(logits)
			got, top := LogProbs(logits, chosen, k, nil)
			if !slices.Equal(logits, before) {
				t.Fatal("LogProbs modified the logits")
			}
			if d := math.Abs(float64(got) - wantLP[chosen]); d > 1e-6 {
				t.Fatalf("logprob of %d = %v, reference %v", chosen, got, wantLP[chosen])
			}
			if len(top) != len(wantTop) {
				t.Fatalf("%d top entries, want %d (k %d, n %d)", len(top), len(wantTop), k, n)
			}
			for i, e := range top {
				if e.ID != wantTop[i] || math.Abs(float64(e.Logprob)-wantLP[e.ID]) > 1e-6 {
					t.Fatalf("top[%d] = %+v, reference id %d logprob %v", i, e, wantTop[i], wantLP[wantTop[i]])
				}
			}
			// Shifting every logit leaves the log-probabilities; a shift that overflows exp in the direct
			// computation must not disturb LogProbs.
			shifted := slices.Clone(logits)
			for i := range shifted {
				shifted[i] += 5000
			}
			got2, top2 := LogProbs(shifted, chosen, k, nil)
			if d := math.Abs(float64(got2) - wantLP[chosen]); d > 1e-3 { // float32 logits near 5000 carry ~5e-4 of rounding
				t.Fatalf("shifted by 5000: logprob %v, reference %v", got2, wantLP[chosen])
			}
			if len(top2) != len(top) {
				t.Fatalf("shifted: %d top entries, want %d", len(top2), len(top))
			}
		})
	}
}

func TestLogProbsEdges(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	negInf := math.Inf(-1)
	ln2 := -math.Ln2
	tests := []struct {
		name    string
		logits  []float32
		chosen  int32
		k       int
		want    float64
		wantTop []TokenLogprob
	}{
		{"ties to the lower id", []float32{1, 3, 3, 2, 3}, 0, 2, -3.2537, []TokenLogprob{{1, -1.2537}, {2, -1.2537}}},
		{"two equal", []float32{0, 0}, 1, 5, ln2, []TokenLogprob{{0, float32(ln2)}, {1, float32(ln2)}}},
		{"k 0", []float32{0, 0}, 0, 0, ln2, nil},
		{"k negative", []float32{0, 0}, 0, -3, ln2, nil},
		{"NaN is -Inf", []float32{nan, 0}, 0, 2, negInf, []TokenLogprob{{1, 0}, {0, float32(negInf)}}},
		{"-Inf", []float32{float32(negInf), 5}, 1, 1, 0, []TokenLogprob{{1, 0}}},
		{"+Inf", []float32{inf, inf, 0}, 0, 1, ln2, []TokenLogprob{{0, float32(ln2)}}},
		{"all -Inf", []float32{float32(negInf), nan}, 1, 2, negInf, []TokenLogprob{{0, float32(negInf)}, {1, float32(negInf)}}},
		{"chosen out of range", []float32{0, 0}, 2, 0, negInf, nil},
		{"chosen negative", []float32{0, 0}, -1, 0, negInf, nil},
		{"empty", nil, 0, 3, negInf, nil},
	}
	near := func(a float32, b float64) bool {
		return (math.IsInf(b, -1) && math.IsInf(float64(a), -1)) || math.Abs(float64(a)-b) < 0.01
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, top := LogProbs(tc.logits, tc.chosen, tc.k, nil)
			if !near(got, tc.want) {
				t.Fatalf("logprob = %v, want %v", got, tc.want)
			}
			if len(top) != len(tc.wantTop) {
				t.Fatalf("top = %v, want %v", top, tc.wantTop)
			}
			for i, e := range top {
				if e.ID != tc.wantTop[i].ID || !near(e.Logprob, float64(tc.wantTop[i].Logprob)) {
					t.Fatalf("top = %v, want %v", top, tc.wantTop)
				}
			}
		})
	}
}

func TestLogProbsReusesTop(t *testing.T) {
	logits := randomLogits(rand.New(rand.NewPCG(1, 1)), 49152, 3)
	top := make([]TokenLogprob, 0, MaxLogprobs)
	allocs := testing.AllocsPerRun(10, func() { _, top = LogProbs(logits, 7, MaxLogprobs, top) })
	if allocs != 0 || len(top) != MaxLogprobs {
		t.Fatalf("%v allocations, %d entries; want 0 and %d", allocs, len(top), MaxLogprobs)
	}
}

func TestRank(t *testing.T) {
	nan := float32(math.NaN())
	logits := []float32{1, 3, 3, 2, nan}
	for _, tc := range []struct {
		id   int32
		want int
	}{{1, 2}, {2, 2}, {3, 3}, {0, 4}, {4, 5}, {5, 0}, {-1, 0}} {
		if got := Rank(logits, tc.id); got != tc.want {
			t.Errorf("Rank(%d) = %d, want %d", tc.id, got, tc.want)
		}
	}
}
