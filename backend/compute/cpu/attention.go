package cpu

import (
	"math"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// attnTask runs one (query row, KV head) pair per index: the query heads of a GQA group share one pass over
// the keys and values of their KV head. Each worker has its own scores buffer.
type attnTask struct {
	a       *compute.Attention
	scratch [][]float32 // (worker) scores of one task: (group, visible tokens)
}

// Attend implements compute.Device. A Device runs one Attend at a time (its scratch is per device).
func (d *Device) Attend(a *compute.Attention) {
	t := &d.attn
	if len(t.scratch) < poolWorkers() {
		t.scratch = make([][]float32, poolWorkers())
	}
	t.a = a
	parallelForW(a.Rows*a.KVHeads, 1, t)
	t.a = nil
}

func (t *attnTask) runW(worker, lo, hi int) {
	for i := lo; i < hi; i++ {
		t.scratch[worker] = attendOne(t.a, i/t.a.KVHeads, i%t.a.KVHeads, t.scratch[worker])
	}
}

// attendOne computes, for query row r of the sequence and KV head kvh, every query head h of that head's group:
//
//	out[h] = Σ_t softmax_t(q[h]·k[t]·scale) v[t]   over the visible tokens t <= Pos0+r (and t ∈ Sel when set).
//
// It returns the scores buffer, grown when it was too small.
func attendOne(a *compute.Attention, r, kvh int, buf []float32) []float32 {
	hd, group := a.HeadDim, a.Heads/a.KVHeads
	kvDim := a.KVHeads * hd
	last := a.Pos0 + r // newest visible position
	n := last + 1
	sel := a.Sel
	if sel != nil {
		n = countVisible(sel, last)
	}
	if cap(buf) < group*n {
		buf = make([]float32, group*n+group*1024) // headroom: a growing sequence does not reallocate each step
	}
	scores := buf[:group*n]
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
	return buf
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
