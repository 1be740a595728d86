package cpu

import (
	"math"
	"sync"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// attnTask runs one (query row, KV head) pair per index: the query heads of a GQA group share one pass over
// the keys and values of their KV head.
type attnTask struct {
	a *compute.Attention
}

// attnScratch holds the scores of one task: (group, visible tokens).
type attnScratch struct{ s []float32 }

var scratchPool = sync.Pool{New: func() any { return new(attnScratch) }}

var attnTasks = sync.Pool{New: func() any { return new(attnTask) }}

// Attend implements compute.Device.
func (*Device) Attend(a *compute.Attention) {
	t := attnTasks.Get().(*attnTask)
	t.a = a
	parallelFor(a.Rows*a.KVHeads, t)
	t.a = nil
	attnTasks.Put(t)
}

func (t *attnTask) run(lo, hi int) {
	sc := scratchPool.Get().(*attnScratch)
	for i := lo; i < hi; i++ {
		attendOne(t.a, i/t.a.KVHeads, i%t.a.KVHeads, sc)
	}
	scratchPool.Put(sc)
}

// attendOne computes, for query row r of the sequence and KV head kvh, every query head h of that head's group:
//
//	out[h] = Σ_t softmax_t(q[h]·k[t]·scale) v[t]   over the visible tokens t <= Pos0+r (and t ∈ Sel when set).
func attendOne(a *compute.Attention, r, kvh int, sc *attnScratch) {
	hd, group := a.HeadDim, a.Heads/a.KVHeads
	kvDim := a.KVHeads * hd
	last := a.Pos0 + r // newest visible position
	n := last + 1
	sel := a.Sel
	if sel != nil {
		n = countVisible(sel, last)
	}
	if cap(sc.s) < group*n {
		sc.s = make([]float32, group*n)
	}
	scores := sc.s[:group*n]
	q := a.Q.Row(a.Row0 + r)
	out := a.Out.Row(a.Row0 + r)

	// Scores: one pass over the keys for the whole group.
	for j := 0; j < n; j++ {
		tok := j
		if sel != nil {
			tok = int(sel[j])
		}
		p, off := a.Pages[tok/a.Page], (tok%a.Page)*kvDim+kvh*hd
		for g := 0; g < group; g++ {
			h := kvh*group + g
			qh := q[h*hd : (h+1)*hd]
			var s float32
			if p.K32 != nil {
				s = dotF32(qh, p.K32[off:off+hd])
			} else {
				s = dotF16(p.K16[off:off+hd], qh)
			}
			scores[g*n+j] = s * a.Scale
		}
	}
	// Softmax per query head, then the weighted sum of values.
	for g := 0; g < group; g++ {
		h := kvh*group + g
		row := scores[g*n : (g+1)*n]
		softmax(row)
		o := out[h*hd : (h+1)*hd]
		clear(o)
		for j, w := range row {
			tok := j
			if sel != nil {
				tok = int(sel[j])
			}
			p, off := a.Pages[tok/a.Page], (tok%a.Page)*kvDim+kvh*hd
			if p.V32 != nil {
				axpyF32(o, w, p.V32[off:off+hd])
			} else {
				axpyF16(o, w, p.V16[off:off+hd])
			}
		}
	}
}

// countVisible returns how many of the ascending indices sel are <= last.
func countVisible(sel []int32, last int) int {
	lo, hi := 0, len(sel)
	for lo < hi {
		m := (lo + hi) / 2
		if int(sel[m]) <= last {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// softmax replaces x by exp(x - max) / Σ exp(x - max).
func softmax(x []float32) {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		sum += float64(e)
	}
	scaleF32(x, float32(1/sum))
}
