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
// scores rank last; -0 ties with +0. tmp is scratch of at least len(scores); with dst of capacity k nothing
// is allocated.
//
// The (k-forced)-th best key is found by a radix select over order-preserving 32-bit keys (digits of 11,
// 11 and 10 bits, each from a histogram of the candidates that share the digits found so far); one last
// pass in index order then takes every candidate above it and the lowest-indexed ones equal to it, so the
// result comes out sorted. O(len(scores)), no sort.
func Select(scores []float32, k, forced int, dst, tmp []int32) []int32 {
	n := len(scores)
	k = min(k, n)
	forced = min(forced, k)
	dst = dst[:0]
	free := n - forced // candidates [0, free) compete for k - forced places
	if want := k - forced; want >= free {
		for i := 0; i < free; i++ {
			dst = append(dst, int32(i))
		}
	} else if want > 0 {
		t, ties := kthKey(scores[:free], tmp[:free], want)
		for i, kk := range tmp[:free] {
			u := uint32(kk)
			if u > t || (u == t && ties > 0) {
				if u == t {
					ties--
				}
				dst = append(dst, int32(i))
			}
		}
	}
	for i := free; i < n; i++ {
		dst = append(dst, int32(i))
	}
	return dst
}

// rankKey maps a score to a key whose unsigned order is the ranking order: NaN lowest (0), -0 as +0.
func rankKey(v float32) uint32 {
	b := math.Float32bits(v + 0)            // -0 + 0 = +0
	k := b ^ (uint32(int32(b)>>31) | 1<<31) // negative: all bits flipped; positive: sign bit set
	if v != v {
		k = 0
	}
	return k
}

// kthKey writes the rankKey of each score into keys (stored as int32 bits) and returns the want-th largest
// key (1 <= want <= len(scores)) and how many of the keys equal to it are among the want largest.
func kthKey(scores []float32, keys []int32, want int) (key uint32, ties int) {
	var hist [1 << 11]int32
	for i, v := range scores {
		u := rankKey(v)
		keys[i] = int32(u)
		hist[u>>21]++
	}
	need := want // places left among the keys that match the digits found so far
	b := len(hist) - 1
	for ; b > 0 && int(hist[b]) < need; b-- {
		need -= int(hist[b])
	}
	prefix := uint32(b) << 21

	// The candidates in that top-digit bucket, gathered once when they are few (the usual case).
	var few [1024]uint32
	rest := few[:0]
	if int(hist[b]) <= len(few) {
		for _, kk := range keys {
			if uint32(kk)>>21 == uint32(b) {
				rest = append(rest, uint32(kk))
			}
		}
	}
	mask := uint32(1<<11-1) << 21
	for _, d := range [2]struct{ shift, bits uint }{{10, 11}, {0, 10}} {
		clear(hist[:])
		digit := func(u uint32) {
			if u&mask == prefix {
				hist[u>>d.shift&(1<<d.bits-1)]++
			}
		}
		if len(rest) > 0 {
			for _, u := range rest {
				digit(u)
			}
		} else {
			for _, kk := range keys {
				digit(uint32(kk))
			}
		}
		b := 1<<d.bits - 1
		for ; b > 0 && int(hist[b]) < need; b-- {
			need -= int(hist[b])
		}
		prefix |= uint32(b) << d.shift
		mask |= (1<<d.bits - 1) << d.shift
	}
	return prefix, need
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
