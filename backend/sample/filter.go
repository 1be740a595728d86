package sample

import (
	"cmp"
	"math"
	"slices"
)

// Top-p bins tokens by their logit distance from the maximum, binScale bins per nat; distances of
// nBuckets-1 bins and more share the last bin.
const (
	binScale = 8
	nBuckets = 40*binScale + 1
)

// kept describes the survivors of filter. Dense: every id in [0, n) with w[id] > 0 survives.
// Otherwise: the ids cand[:n], in no particular order, survive. total is the sum of their weights w[id].
type kept struct {
	dense bool
	n     int
	total float64
}

// better reports whether token a ranks before token b: a higher logit, or an equal logit and a lower id.
// Logits hold no NaN here (prepare removed them).
func better(logits []float32, a, b int32) bool {
	la, lb := logits[a], logits[b]
	return la > lb || (la == lb && a < b)
}

// filter applies top-k, top-p and min-p, in this order, to prepared logits whose maximum m is finite,
// and leaves the survivors' unnormalised probabilities exp(logit-m') in s.w, m' being the largest
// surviving logit.
func (s *Sampler) filter(logits []float32, m float32) kept {
	n := len(logits)
	topK := s.p.TopK
	if topK >= n {
		topK = 0
	}
	var c int
	switch {
	case topK > 0:
		c = s.selectTopK(logits, topK)
		top := float64(logits[s.cand[0]])
		z := 0.0
		for _, id := range s.cand[:c] {
			w := math.Exp(float64(logits[id]) - top)
			s.w[id] = w
			z += w
		}
		if s.p.TopP < 1 {
			c, _ = s.cutTopP(c, z)
		}
	case s.p.TopP < 1:
		c = s.nucleus(logits, m)
	default:
		return s.dense(logits, m)
	}
	if s.p.MinP > 0 {
		// The best survivor has weight 1 (and stays): p_i < min_p * p_max  <=>  w_i < min_p.
		minP := float64(s.p.MinP)
		j := 0
		for _, id := range s.cand[:c] {
			if s.w[id] >= minP {
				s.cand[j] = id
				j++
			}
		}
		c = j
	}
	total := 0.0
	for _, id := range s.cand[:c] {
		total += s.w[id]
	}
	return kept{n: c, total: total}
}

// dense handles sampling with neither top-k nor top-p: every token survives, less those min-p drops.
func (s *Sampler) dense(logits []float32, m float32) kept {
	top, minP := float64(m), float64(s.p.MinP)
	// Past this distance from the maximum exp(-d) < min_p/e: dropped without computing exp.
	skip := math.Inf(1)
	if minP > 0 {
		skip = 1 - math.Log(minP)
	}
	total := 0.0
	for i, v := range logits {
		d := top - float64(v)
		if d > skip {
			s.w[i] = 0
			continue
		}
		w := math.Exp(-d)
		if w < minP {
			w = 0
		}
		s.w[i] = w
		total += w
	}
	return kept{dense: true, n: len(logits), total: total}
}

// selectTopK leaves the k best tokens in s.cand[:k], best first, with a min-heap of k entries whose
// root is the worst kept token; it returns k. 0 < k < len(logits).
func (s *Sampler) selectTopK(logits []float32, k int) int {
	h := s.cand[:k]
	for i := range h {
		h[i] = int32(i)
	}
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(logits, h, i)
	}
	for i := k; i < len(logits); i++ {
		id := int32(i)
		// Later ids lose ties, so only a strictly higher logit displaces the root.
		if logits[id] > logits[h[0]] {
			h[0] = id
			siftDown(logits, h, 0)
		}
	}
	// Heap sort: moving the worst to the end each time leaves h best first.
	for end := k - 1; end > 0; end-- {
		h[0], h[end] = h[end], h[0]
		siftDown(logits, h[:end], 0)
	}
	return k
}

// siftDown restores the min-heap order (worst token at the root) below position i.
func siftDown(logits []float32, h []int32, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		worst := l
		if r := l + 1; r < len(h) && better(logits, h[l], h[r]) {
			worst = r
		}
		if !better(logits, h[i], h[worst]) {
			return
		}
		h[i], h[worst] = h[worst], h[i]
		i = worst
	}
}

// cutTopP keeps, of the c candidates in s.cand (best first, weights in s.w, z the normaliser), the
// tokens before which less than top_p of the mass lies: the smallest prefix reaching top_p, the token
// crossing it included. It returns the prefix length and whether top_p was reached within the c.
func (s *Sampler) cutTopP(c int, z float64) (int, bool) {
	p := float64(s.p.TopP)
	acc := 0.0
	for i, id := range s.cand[:c] {
		if i > 0 && acc >= p {
			return i, true
		}
		acc += s.w[id] / z
	}
	return c, acc >= p
}

// bin returns the top-p bin of a logit at distance d >= 0 (possibly +Inf) from the maximum.
func bin(d float64) int {
	x := d * binScale
	if !(x < nBuckets-1) {
		return nBuckets - 1
	}
	return int(x)
}

// nucleus applies top-p alone over all of logits (maximum m) without sorting them all and returns the
// number of survivors, left in s.cand.
func (s *Sampler) nucleus(logits []float32, m float32) int {
	sure, c, z := s.nucleusCandidates(logits, m)
	k, _ := s.cutNucleus(logits, sure, c, z)
	return k
}

// nucleusCandidates bins the probability mass by distance from the maximum m and finds the bin where
// the running mass reaches top_p. It leaves the tokens of the bins before that one in s.cand[:sure]
// (all of them survive: less than top_p lies before any of them) and the tokens of that bin in
// s.cand[sure:c], sorted best first; only those need a rank. It fills s.w for every token and returns
// the softmax normaliser z (the sum of s.w).
func (s *Sampler) nucleusCandidates(logits []float32, m float32) (sure, c int, z float64) {
	top := float64(m)
	clear(s.mass[:])
	for i, v := range logits {
		d := top - float64(v)
		w := math.Exp(-d)
		s.w[i] = w
		z += w
		s.mass[bin(d)] += w
	}
	target := float64(s.p.TopP) * z
	last, acc := nBuckets-1, 0.0
	for b, mb := range s.mass {
		acc += mb
		if acc >= target {
			last = b
			break
		}
	}
	for i, v := range logits {
		if bin(top-float64(v)) < last {
			s.cand[sure] = int32(i)
			sure++
		}
	}
	c = sure
	for i, v := range logits {
		if bin(top-float64(v)) == last {
			s.cand[c] = int32(i)
			c++
		}
	}
	s.sortCand(logits, sure, c)
	return sure, c, z
}

// cutNucleus makes the top-p cut over the candidates of nucleusCandidates and returns the number of
// survivors in s.cand. Should rounding make the bins disagree with the exact running sum (the sure
// tokens already reach top_p, or all candidates fall short of it), it sorts every token and cuts
// there instead, and reports that it did.
func (s *Sampler) cutNucleus(logits []float32, sure, c int, z float64) (k int, fellBack bool) {
	p := float64(s.p.TopP)
	acc := 0.0
	for _, id := range s.cand[:sure] {
		acc += s.w[id] / z
	}
	if sure == 0 || acc < p {
		for k = sure; k < c; k++ {
			if k > 0 && acc >= p {
				return k, false
			}
			acc += s.w[s.cand[k]] / z
		}
		if acc >= p || c == len(logits) {
			return c, false
		}
	}
	for i := range logits {
		s.cand[i] = int32(i)
	}
	s.sortCand(logits, 0, len(logits))
	k, _ = s.cutTopP(len(logits), z)
	return k, true
}

// sortCand sorts s.cand[from:to] best first.
func (s *Sampler) sortCand(logits []float32, from, to int) {
	slices.SortFunc(s.cand[from:to], func(a, b int32) int {
		if d := cmp.Compare(logits[b], logits[a]); d != 0 {
			return d
		}
		return cmp.Compare(a, b)
	})
}

// draw picks a survivor with probability proportional to its weight, u being uniform in [0, 1).
func (s *Sampler) draw(k kept, u float64) int32 {
	target := u * k.total
	acc := 0.0
	if k.dense {
		last := int32(0)
		for i, w := range s.w[:k.n] {
			if w == 0 {
				continue
			}
			acc += w
			last = int32(i)
			if target < acc {
				return last
			}
		}
		return last
	}
	for _, id := range s.cand[:k.n] {
		acc += s.w[id]
		if target < acc {
			return id
		}
	}
	return s.cand[k.n-1]
}
