package cpu

import (
	"math"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// baselineDev is the Device with Attend replaced by the loop that the blocked attention replaced: one
// (query row, KV head) pair per pool task, dot/axpy per token, math.Exp softmax. It is kept, in a test file
// only, so that the benchmarks measure before and after in the same run.
type baselineDev struct {
	*Device
	t *baselineTask
}

type baselineTask struct {
	a       *compute.Attention
	scratch [][]float32 // (worker) scores of one task
}

func newBaselineDev(d *Device) baselineDev {
	return baselineDev{d, &baselineTask{scratch: make([][]float32, poolWorkers())}}
}

func (b baselineDev) Attend(a *compute.Attention) {
	b.t.a = a
	parallelForW(a.Rows*a.KVHeads, 1, b.t)
}

func (t *baselineTask) runW(worker, lo, hi int) {
	for i := lo; i < hi; i++ {
		t.scratch[worker] = baselineAttendOne(t.a, i/t.a.KVHeads, i%t.a.KVHeads, t.scratch[worker])
	}
}

// baselineAttendOne is the former attendOne: for query row r and KV head kvh, every head of the group.
func baselineAttendOne(a *compute.Attention, r, kvh int, buf []float32) []float32 {
	hd, group := a.HeadDim, a.Heads/a.KVHeads
	kvDim := a.KVHeads * hd
	n := visible(a, a.Pos0+r)
	if cap(buf) < group*n {
		buf = make([]float32, group*n)
	}
	scores := buf[:group*n]
	q, out := a.Q.Row(a.Row0+r), a.Out.Row(a.Row0+r)
	at := func(j int) (*compute.KVPage, int) {
		tok := j
		if a.Sel != nil {
			tok = int(a.Sel[j])
		}
		return a.Pages[tok/a.Page], (tok%a.Page)*kvDim + kvh*hd
	}
	for j := 0; j < n; j++ {
		p, off := at(j)
		for g := 0; g < group; g++ {
			qh := q[(kvh*group+g)*hd : (kvh*group+g+1)*hd]
			var s float32
			if p.K32 != nil {
				s = dotF32(qh, p.K32[off:off+hd])
			} else {
				s = dotF16(p.K16[off:off+hd], qh)
			}
			scores[g*n+j] = s * a.Scale
		}
	}
	for g := 0; g < group; g++ {
		h := kvh*group + g
		row := scores[g*n : (g+1)*n]
		m := float32(math.Inf(-1))
		for _, v := range row {
			m = max(m, v)
		}
		var sum float64
		for i, v := range row {
			row[i] = float32(math.Exp(float64(v - m)))
			sum += float64(row[i])
		}
		scaleF32(row, float32(1/sum))
		o := out[h*hd : (h+1)*hd]
		clear(o)
		for j, w := range row {
			p, off := at(j)
			if p.V32 != nil {
				axpyF32(o, w, p.V32[off:off+hd])
			} else {
				axpyF16(o, w, p.V16[off:off+hd])
			}
		}
	}
	return buf
}

// baselineSelect is the SelectScores that the blocked one replaced: logits by candidate range with one dot
// product per (candidate, query, head), math.Exp softmax per (query, head), weighted max by candidate.
type baselineSelect struct {
	s      *compute.SelectScores
	phase  int
	logits []float32 // (w, heads, N)
}

func (t *baselineSelect) selectScores(s *compute.SelectScores) {
	if need := s.Rows * s.Heads * s.N; cap(t.logits) < need {
		t.logits = make([]float32, need)
	}
	t.s, t.logits = s, t.logits[:s.Rows*s.Heads*s.N]
	for t.phase = 0; t.phase < 3; t.phase++ {
		if t.phase == 1 && !s.Softmax {
			continue
		}
		n := s.N
		if t.phase == 1 {
			n = s.Rows * s.Heads
		}
		parallelFor(n, t)
	}
}

func (t *baselineSelect) run(lo, hi int) {
	s := t.s
	hd, group, n := s.HeadDim, s.Heads/s.KVHeads, s.N
	kvDim := s.KVHeads * hd
	switch t.phase {
	case 0:
		for j := lo; j < hi; j++ {
			p, off := s.Pages[j/s.Page], (j%s.Page)*kvDim
			for i := 0; i < s.Rows; i++ {
				q := s.Q.Row(i)
				for h := 0; h < s.Heads; h++ {
					kvh := h / group
					var v float32
					if p.K32 != nil {
						v = dotF32(q[h*hd:(h+1)*hd], p.K32[off+kvh*hd:off+(kvh+1)*hd])
					} else {
						v = dotF16(p.K16[off+kvh*hd:off+(kvh+1)*hd], q[h*hd:(h+1)*hd])
					}
					t.logits[(i*s.Heads+h)*n+j] = v * s.Scale
				}
			}
		}
	case 1:
		for r := lo; r < hi; r++ {
			x := t.logits[r*n : (r+1)*n]
			m := float32(math.Inf(-1))
			for _, v := range x {
				m = max(m, v)
			}
			var sum float64
			for i, v := range x {
				x[i] = float32(math.Exp(float64(v - m)))
				sum += float64(x[i])
			}
			scaleF32(x, float32(1/sum))
		}
	case 2:
		for j := lo; j < hi; j++ {
			var acc float32
			for i := 0; i < s.Rows; i++ {
				m := float32(math.Inf(-1))
				for h := 0; h < s.Heads; h++ {
					m = max(m, t.logits[(i*s.Heads+h)*n+j])
				}
				acc += s.Alpha[i] * m
			}
			s.Out[j] = acc
		}
	}
}
