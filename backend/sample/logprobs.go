package sample

import "math"

// TokenLogprob is a token and its log-probability.
type TokenLogprob struct {
	ID      int32
	Logprob float32
}

// LogProbs returns the log-softmax, at chosen, of the raw logits (before any penalty, temperature or
// filter: call it before Next, which modifies them), and the k most likely tokens with theirs, best
// first, ties to the lower id, appended to top[:0]. It computes, with m the largest logit and the sum in
// float64,
//
//	logprob(i) = (logits[i] - m) - log(sum_j exp(logits[j] - m))
//
// NaN logits count as -Inf and +Inf as the largest float32, as in Sample. If every logit is -Inf, every
// log-probability is -Inf; a chosen id outside [0, len(logits)) gets -Inf too. k is capped at
// len(logits); k <= 0 gives an empty list. It does not modify logits, takes O(len(logits)*k) time at
// worst (meant for small k such as MaxLogprobs), and allocates only when cap(top) < k.
func LogProbs(logits []float32, chosen int32, k int, top []TokenLogprob) (float32, []TokenLogprob) {
	top = top[:0]
	k = max(0, min(k, len(logits)))
	m := math.Inf(-1)
	for _, v := range logits {
		m = max(m, clean(v))
	}
	logZ := math.Inf(1) // every log-probability is -Inf unless some logit is finite
	if !math.IsInf(m, -1) {
		z := 0.0
		for _, v := range logits {
			z += math.Exp(clean(v) - m)
		}
		logZ = math.Log(z)
	}
	lp := func(i int32) float32 {
		if math.IsInf(logZ, 1) {
			return float32(math.Inf(-1))
		}
		return float32((clean(logits[i]) - m) - logZ)
	}
	worst := math.Inf(1) // the logit of top[k-1] once the list is full
	for i := range logits {
		x := clean(logits[i])
		if len(top) == k {
			// Later ids lose ties: only a strictly larger logit enters a full list.
			if k == 0 || !(x > worst) {
				continue
			}
			top = top[:k-1]
		}
		j := len(top)
		top = append(top, TokenLogprob{})
		for j > 0 && x > clean(logits[top[j-1].ID]) {
			top[j] = top[j-1]
			j--
		}
		top[j] = TokenLogprob{ID: int32(i)}
		if len(top) == k {
			worst = clean(logits[top[k-1].ID])
		}
	}
	for i := range top {
		top[i].Logprob = lp(top[i].ID)
	}
	if chosen < 0 || int(chosen) >= len(logits) {
		return float32(math.Inf(-1)), top
	}
	return lp(chosen), top
}

// Rank returns the rank vLLM (V1 engine) reports for token id among the raw logits: the number of tokens
// whose logit is at least id's, itself included (NaN counting as -Inf), so 1 is the most likely token and
// a tie ranks every tied token last among them. Tokens of a LogProbs list have rank position+1 in vLLM's
// output; Rank is for the chosen token, which may lie outside the list. It returns 0 for an id outside
// [0, len(logits)).
func Rank(logits []float32, id int32) int {
	if id < 0 || int(id) >= len(logits) {
		return 0
	}
	x, r := clean(logits[id]), 0
	for _, v := range logits {
		if clean(v) >= x {
			r++
		}
	}
	return r
}

// clean reads a logit as LogProbs and Rank do: NaN as -Inf, +Inf as the largest float32.
func clean(v float32) float64 {
	switch {
	case v != v:
		return math.Inf(-1)
	case v > math.MaxFloat32:
		return math.MaxFloat32
	}
	return float64(v)
}
