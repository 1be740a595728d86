package cpu

import (
	"math"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// selectTask computes OmniKV selection scores in three phases over the worker pool: logits (by candidate
// range), softmax (by query and head), weighted max over heads (by candidate range).
type selectTask struct {
	s      *compute.SelectScores
	phase  int
	logits []float32 // (w, heads, N)
}

// SelectScores implements compute.Device.
func (d *Device) SelectScores(s *compute.SelectScores) {
	t := &d.sel
	need := s.Rows * s.Heads * s.N
	if cap(t.logits) < need {
		t.logits = make([]float32, need+need/4)
	}
	t.s, t.logits = s, t.logits[:need]
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
	t.s = nil
}

func (t *selectTask) run(lo, hi int) {
	s := t.s
	hd, group, n := s.HeadDim, s.Heads/s.KVHeads, s.N
	kvDim := s.KVHeads * hd
	switch t.phase {
	case 0: // logits[i, h, j] = Q[i,h]·K[j]·scale
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
	case 1: // softmax over the candidates of each (query, head)
		for r := lo; r < hi; r++ {
			softmax(t.logits[r*n : (r+1)*n])
		}
	case 2: // Out[j] = Σ_i alpha_i max_h
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

// GatherKV implements compute.Device.
func (*Device) GatherKV(dst []*compute.KVPage, dstPage int, dstSlots []int32, src []*compute.KVPage, srcPage int, srcRows []int32) {
	for i, r := range srcRows {
		sp, so := src[int(r)/srcPage], int(r)%srcPage
		slot := int(dstSlots[i])
		dp, do := dst[slot/dstPage], slot%dstPage
		if sp.K32 != nil {
			w := len(sp.K32) / srcPage
			copy(dp.K32[do*w:(do+1)*w], sp.K32[so*w:(so+1)*w])
			copy(dp.V32[do*w:(do+1)*w], sp.V32[so*w:(so+1)*w])
		} else {
			w := len(sp.K16) / srcPage
			copy(dp.K16[do*w:(do+1)*w], sp.K16[so*w:(so+1)*w])
			copy(dp.V16[do*w:(do+1)*w], sp.V16[so*w:(so+1)*w])
		}
	}
}
