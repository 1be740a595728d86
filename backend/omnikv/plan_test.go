package omnikv

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func TestNewPlanDenseRule(t *testing.T) {
	tests := []struct {
		name   string
		filter []int
		wait   int
		layers int
		dense  []int // dense or filter layers
		source map[int]int
	}{
		// The example of facts/omnikv.md: L={2,8,18}, 32 layers, wait 1.
		{"paper example", []int{2, 8, 18}, 1, 32, []int{0, 1, 2, 3, 8, 9, 18, 19}, map[int]int{4: 2, 7: 2, 10: 8, 17: 8, 20: 18, 31: 18}},
		{"wait 0", []int{1, 3}, 0, 6, []int{0, 1, 3}, map[int]int{2: 1, 4: 3, 5: 3}},
		{"wait 2", []int{0}, 2, 5, []int{0, 1, 2}, map[int]int{3: 0, 4: 0}},
		{"filter at the end", []int{4}, 1, 5, []int{0, 1, 2, 3, 4}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Enabled: true, FilterLayers: tc.filter, WaitLayers: tc.wait, Budget: Budget{Tokens: 8}}
			p, err := NewPlan(&c, tc.layers)
			if err != nil {
				t.Fatal(err)
			}
			var dense []int
			for l, k := range p.Kinds {
				if k != Sparse {
					dense = append(dense, l)
				}
				if (k == Filter) != slices.Contains(tc.filter, l) {
					t.Errorf("layer %d kind %v", l, k)
				}
				if k != Sparse && p.Source[l] != -1 {
					t.Errorf("dense layer %d has a source %d", l, p.Source[l])
				}
			}
			if !slices.Equal(dense, tc.dense) {
				t.Errorf("dense layers %v, want %v", dense, tc.dense)
			}
			for l, src := range tc.source {
				if p.Kinds[l] != Sparse || p.Source[l] != src {
					t.Errorf("layer %d: %v from %d, want sparse from %d", l, p.Kinds[l], p.Source[l], src)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig(30)
	if err := ok.Validate(30); err != nil {
		t.Fatal(err)
	}
	bad := []Config{
		{Enabled: true, Budget: Budget{Tokens: 1}},
		{Enabled: true, FilterLayers: []int{30}, Budget: Budget{Tokens: 1}},
		{Enabled: true, FilterLayers: []int{5, 5}, Budget: Budget{Tokens: 1}},
		{Enabled: true, FilterLayers: []int{-1}, Budget: Budget{Tokens: 1}},
		{Enabled: true, FilterLayers: []int{2}, WaitLayers: -1, Budget: Budget{Tokens: 1}},
		{Enabled: true, FilterLayers: []int{2}},
		{Enabled: true, FilterLayers: []int{2}, Budget: Budget{Fraction: 1.5}},
		{Enabled: true, FilterLayers: []int{2}, Budget: Budget{Tokens: 4}, Selector: Uniform},
	}
	for i, c := range bad {
		if err := c.Validate(30); err == nil {
			t.Errorf("config %d (%+v) accepted", i, c)
		}
	}
	if err := (&Config{}).Validate(30); err != nil {
		t.Errorf("disabled config rejected: %v", err)
	}
}

func TestParse(t *testing.T) {
	if b, err := ParseBudget("2048"); err != nil || b.For(10000) != 2048 || b.For(100) != 100 {
		t.Errorf("budget 2048: %+v %v", b, err)
	}
	if b, err := ParseBudget("0.067"); err != nil || b.For(1000) != 67 || b.For(3) != 1 {
		t.Errorf("budget 0.067: %+v %v", b, err)
	}
	for _, s := range []string{"0", "-3", "1.5", "abc", ""} {
		if _, err := ParseBudget(s); err == nil {
			t.Errorf("budget %q accepted", s)
		}
	}
	for i, n := range selectorNames {
		if s, err := ParseSelector(n); err != nil || s != Selector(i) || s.String() != n {
			t.Errorf("selector %q: %v %v", n, s, err)
		}
	}
	if _, err := ParseSelector("max"); err == nil {
		t.Error("selector max accepted")
	}
	if l, err := ParseLayers("2, 8,18"); err != nil || !slices.Equal(l, []int{2, 8, 18}) {
		t.Errorf("layers: %v %v", l, err)
	}
	if _, err := ParseLayers("2,x"); err == nil {
		t.Error("layers 2,x accepted")
	}
}

func TestWindowWeightsAndForced(t *testing.T) {
	if w := WindowWeights(Exp, 4); !slices.Equal(w, []float32{0.125, 0.25, 0.5, 1}) {
		t.Errorf("exp weights %v", w)
	}
	if w := WindowWeights(Uniform, 3); !slices.Equal(w, []float32{1, 1, 1}) {
		t.Errorf("uniform weights %v", w)
	}
	if w := WindowWeights(Last, 16); !slices.Equal(w, []float32{1}) {
		t.Errorf("last weights %v", w)
	}
	for _, tc := range []struct {
		s                           Selector
		window, step, budget, wantF int
	}{{Uniform, 16, 0, 100, 16}, {Uniform, 16, 5, 100, 11}, {Exp, 16, 20, 100, 0}, {Exp, 16, 0, 4, 4}, {Last, 16, 0, 100, 0}} {
		if got := Forced(tc.s, tc.window, tc.step, tc.budget); got != tc.wantF {
			t.Errorf("Forced(%v, %d, %d, %d) = %d, want %d", tc.s, tc.window, tc.step, tc.budget, got, tc.wantF)
		}
	}
}

// refSelect is the plain definition: sort all candidates but the forced tail by (score desc, index asc),
// take k-forced, add the tail, sort ascending.
func refSelect(scores []float32, k, forced int) []int32 {
	n := len(scores)
	k = min(k, n)
	forced = min(forced, k)
	idx := make([]int32, n-forced)
	for i := range idx {
		idx[i] = int32(i)
	}
	sort.SliceStable(idx, func(a, b int) bool { // a ranks above b; NaN after everything, -Inf included
		sa, sb := scores[idx[a]], scores[idx[b]]
		if na, nb := sa != sa, sb != sb; na || nb {
			return !na && nb
		}
		return sa > sb
	})
	out := append([]int32(nil), idx[:k-forced]...)
	for i := n - forced; i < n; i++ {
		out = append(out, int32(i))
	}
	slices.Sort(out)
	return out
}

func TestSelectMatchesSortDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 500; trial++ {
		n := 1 + r.IntN(300)
		scores := make([]float32, n)
		levels := 1 + r.IntN(8) // few levels: many ties
		for i := range scores {
			scores[i] = float32(r.IntN(levels))
			if r.IntN(50) == 0 {
				scores[i] = float32(math.NaN())
			}
		}
		k, forced := 1+r.IntN(n+5), r.IntN(20)
		got := Select(scores, k, forced, make([]int32, 0, n), make([]int32, n))
		want := refSelect(scores, k, forced)
		if !slices.Equal(got, want) {
			t.Fatalf("n=%d k=%d forced=%d scores=%v:\n got %v\nwant %v", n, k, forced, scores, got, want)
		}
	}
}

// TestSelectWideScores: continuous scores of both signs with infinities, NaN and signed zeros (keys that
// differ in every radix digit), up to thousands of candidates.
func TestSelectWideScores(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	special := []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, math.MaxFloat32, -math.MaxFloat32}
	for trial := 0; trial < 300; trial++ {
		n := 1 + r.IntN(5000)
		scores := make([]float32, n)
		for i := range scores {
			switch r.IntN(20) {
			case 0:
				scores[i] = special[r.IntN(len(special))]
			case 1:
				scores[i] = scores[r.IntN(i+1)] // a tie with an earlier candidate
			default:
				scores[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(9)-4)))
			}
		}
		k, forced := 1+r.IntN(n+5), r.IntN(40)
		got := Select(scores, k, forced, make([]int32, 0, n), make([]int32, n))
		if want := refSelect(scores, k, forced); !slices.Equal(got, want) {
			t.Fatalf("trial %d n=%d k=%d forced=%d:\n got %v\nwant %v", trial, n, k, forced, got, want)
		}
	}
}

func TestSelectAllocatesNothing(t *testing.T) {
	scores := make([]float32, 4096)
	for i := range scores {
		scores[i] = float32(i % 97)
	}
	dst, tmp := make([]int32, 0, 512), make([]int32, 4096)
	if a := testing.AllocsPerRun(10, func() { dst = Select(scores, 512, 16, dst, tmp) }); a != 0 {
		t.Fatalf("Select allocates %.0f times", a)
	}
}

// BenchmarkSelect: 2048 of 32768 random scores, the default budget at 32K context.
func BenchmarkSelect(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	scores := make([]float32, 32768)
	for i := range scores {
		scores[i] = float32(r.NormFloat64())
	}
	dst, tmp := make([]int32, 0, 2048), make([]int32, len(scores))
	for b.Loop() {
		dst = Select(scores, 2048, 0, dst, tmp)
	}
}
