package omnikv

import (
	"math"
	"slices"
)

// Kind is a layer's role.
type Kind uint8

const (
	Dense  Kind = iota // full attention over the whole cache, KV resident
	Filter             // full attention, and selects the context rows for the sparse layers after it
	Sparse             // attends to the selected context rows and this turn's generated tokens; KV offloaded
)

func (k Kind) String() string { return [...]string{"dense", "filter", "sparse"}[k] }

// Plan is the role of every layer.
type Plan struct {
	Kinds  []Kind // (layers)
	Source []int  // (layers) for a sparse layer, the filter layer whose selection it uses; -1 otherwise
}

// NewPlan applies the dense rule: every layer below the first filter layer, every filter layer and the
// WaitLayers layers after each filter layer are dense (filter layers being their own kind); all others are
// sparse and use the selection of the nearest filter layer before them. A disabled config makes every layer
// dense.
func NewPlan(c *Config, layers int) (*Plan, error) {
	if err := c.Validate(layers); err != nil {
		return nil, err
	}
	p := &Plan{Kinds: make([]Kind, layers), Source: make([]int, layers)}
	for i := range p.Source {
		p.Source[i] = -1
	}
	if !c.Enabled {
		return p, nil
	}
	filter := -1
	for l := 0; l < layers; l++ {
		switch {
		case slices.Contains(c.FilterLayers, l):
			p.Kinds[l], filter = Filter, l
		case filter < 0 || l <= filter+c.WaitLayers:
			p.Kinds[l] = Dense
		default:
			p.Kinds[l], p.Source[l] = Sparse, filter
		}
	}
	return p, nil
}

// Count returns how many layers have the kind.
func (p *Plan) Count(k Kind) int {
	n := 0
	for _, x := range p.Kinds {
		if x == k {
			n++
		}
	}
	return n
}

// WindowWeights returns the weight of each of the w window queries, oldest first: all 1 for Uniform;
// 2^(i-w+1) for Exp, so the newest weighs 1, the one before 1/2, ... (paper: alpha_i = 2^(i-|window|) for
// i = 1..w). Last and SoftmaxBeforeLast use the current query alone, weight 1.
func WindowWeights(s Selector, w int) []float32 {
	if !s.Windowed() {
		return []float32{1}
	}
	out := make([]float32, w)
	for i := range out {
		out[i] = 1
		if s == Exp {
			out[i] = float32(math.Ldexp(1, i-w+1))
		}
	}
	return out
}

// Forced returns how many of the newest context tokens are forced into the selection at decode step `step`
// (0 for the first generated token's step): max(0, w - step) for uniform/exp, capped by the budget; none for
// the other selectors.
func Forced(s Selector, window, step, budget int) int {
	if !s.Windowed() {
		return 0
	}
	return min(budget, max(0, window-step))
}

// Select returns the indices of the k best-scoring candidates in ascending order, in dst's storage, with
// the last `forced` candidates always included (taking k-forced of the others). Ties are broken towards the
// lower index: candidate i ranks above j when scores[i] > scores[j], or when they are equal and i < j. NaN
// scores rank last. tmp is scratch of at least len(scores); with dst of capacity k nothing is allocated.
func Select(scores []float32, k, forced int, dst, tmp []int32) []int32 {
	n := len(scores)
	k = min(k, n)
	forced = min(forced, k)
	dst = dst[:0]
	free := n - forced // candidates [0, free) compete for k - forced places
	if want := k - forced; want > 0 {
		idx := tmp[:free]
		for i := range idx {
			idx[i] = int32(i)
		}
		if want < free {
			ranker{scores}.quickselect(idx, want)
		}
		dst = append(dst, idx[:want]...)
	}
	for i := free; i < n; i++ {
		dst = append(dst, int32(i))
	}
	slices.Sort(dst)
	return dst
}

type ranker struct{ s []float32 }

// above reports whether candidate a ranks above b: higher score, NaN last, then lower index.
func (r ranker) above(a, b int32) bool {
	sa, sb := r.s[a], r.s[b]
	switch {
	case sa > sb || (sa == sa && sb != sb):
		return true
	case sa < sb || (sa != sa && sb == sb):
		return false
	}
	return a < b
}

// quickselect reorders idx so that its first k elements are the k best (in any order).
func (r ranker) quickselect(idx []int32, k int) {
	lo, hi := 0, len(idx)-1
	for lo < hi {
		mid := lo + (hi-lo)/2 // median of three as the pivot
		if r.above(idx[mid], idx[lo]) {
			idx[mid], idx[lo] = idx[lo], idx[mid]
		}
		if r.above(idx[hi], idx[lo]) {
			idx[hi], idx[lo] = idx[lo], idx[hi]
		}
		if r.above(idx[hi], idx[mid]) {
			idx[hi], idx[mid] = idx[mid], idx[hi]
		}
		pivot := idx[mid]
		i, j := lo, hi
		for i <= j {
			for r.above(idx[i], pivot) {
				i++
			}
			for r.above(pivot, idx[j]) {
				j--
			}
			if i <= j {
				idx[i], idx[j] = idx[j], idx[i]
				i++
				j--
			}
		}
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}

// SinkRecentSelection returns the baseline's selection of k of n context tokens: the first SinkTokens and the
// newest k - SinkTokens, ascending, in dst's storage.
func SinkRecentSelection(n, k int, dst []int32) []int32 {
	k = min(k, n)
	sink := min(SinkTokens, k)
	dst = dst[:0]
	for i := 0; i < sink; i++ {
		dst = append(dst, int32(i))
	}
	for i := n - (k - sink); i < n; i++ {
		dst = append(dst, int32(i))
	}
	return dst
}
