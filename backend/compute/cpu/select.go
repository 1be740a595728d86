package cpu

import (
	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"unsafe"
)

// selectTask computes OmniKV selection scores in three phases over the worker pool:
//
//  0. logits, by (block of attnBlock candidates, KV head): the block's keys are converted to float32 once
//     and multiplied with the stacked queries of the head's group (all window rows) by the attention's tiled
//     kernels: logits[i, h, j] = Q[i,h]·K[j]·Scale;
//  1. softmax over the candidates of each (query, head), with the vectorized exp (when Softmax);
//  2. Out[j] = Σ_i Alpha[i] max_h logits[i, h, j], by ranges of selectChunk candidates, reading each
//     (query, head) row of logits contiguously.
type selectTask struct {
	s      *compute.SelectScores
	phase  int
	m      int         // stacked query-head rows per KV head: Rows*group
	mPad   int         // m rounded up to a multiple of 3
	outer  bool        // scores by the outer-product kernel over qt (mPad a multiple of 16)
	logits []float32   // (w, heads, N)
	q      []float32   // (KVHeads, mPad, hd): row i of KV head kvh is query row i/group, head kvh*group+i%group
	qt     []float32   // (KVHeads, hd, mPad) q transposed
	ws     [][]float32 // (worker) (attnBlock, hd) keys of a block, then (attnBlock, mPad) scores
}

// SelectScores implements compute.Device.
func (d *Device) SelectScores(s *compute.SelectScores) {
	t := &d.sel
	need := s.Rows * s.Heads * s.N
	if cap(t.logits) < need {
		t.logits = make([]float32, need+need/4)
	}
	t.s, t.logits = s, t.logits[:need]
	t.stack()
	for t.phase = 0; t.phase < 3; t.phase++ {
		switch t.phase {
		case 0:
			parallelForW((s.N+attnBlock-1)/attnBlock*s.KVHeads, 1, t)
		case 1:
			if s.Softmax {
				parallelFor(s.Rows*s.Heads, t)
			}
		case 2:
			parallelForW(s.N, selectChunk, t)
		}
	}
	t.s = nil
}

// stack packs the queries per KV head and sizes the scratch.
func (t *selectTask) stack() {
	s := t.s
	hd, group := s.HeadDim, s.Heads/s.KVHeads
	t.m = s.Rows * group
	t.mPad = roundUp(t.m, 3)
	t.outer = t.mPad%16 == 0
	n := s.KVHeads * t.mPad * hd
	if cap(t.q) < n {
		t.q, t.qt = make([]float32, n), make([]float32, n)
	}
	t.q, t.qt = t.q[:n], t.qt[:n]
	clear(t.q)
	for kvh := 0; kvh < s.KVHeads; kvh++ {
		q := t.q[kvh*t.mPad*hd : (kvh+1)*t.mPad*hd]
		for i := 0; i < s.Rows; i++ {
			copy(q[i*group*hd:], s.Q.Row(i)[kvh*group*hd:(kvh+1)*group*hd])
		}
		if t.outer {
			qt := t.qt[kvh*t.mPad*hd : (kvh+1)*t.mPad*hd]
			for i := 0; i < t.mPad; i++ {
				for d, v := range q[i*hd : (i+1)*hd] {
					qt[d*t.mPad+i] = v
				}
			}
		}
	}
	if len(t.ws) < poolWorkers() {
		t.ws = make([][]float32, poolWorkers())
	}
	for i := range t.ws {
		if need := max(selectChunk, attnBlock*(hd+t.mPad)); cap(t.ws[i]) < need {
			t.ws[i] = make([]float32, need)
		}
	}
}

// selectChunk is the candidate range of one phase 2 item.
const selectChunk = 256

// runW runs phase 0 items (block*KVHeads + kvh) or a phase 2 candidate range [lo, hi).
func (t *selectTask) runW(worker, lo, hi int) {
	s := t.s
	if t.phase == 2 {
		out, best := s.Out[lo:hi], t.ws[worker][:hi-lo]
		clear(out)
		for i := 0; i < s.Rows; i++ {
			copy(best, t.logits[i*s.Heads*s.N+lo:])
			for h := 1; h < s.Heads; h++ {
				for j, v := range t.logits[(i*s.Heads+h)*s.N+lo : (i*s.Heads+h)*s.N+hi] {
					best[j] = max(best[j], v)
				}
			}
			axpyF32(out, s.Alpha[i], best)
		}
		return
	}
	hd, group, mPad := s.HeadDim, s.Heads/s.KVHeads, t.mPad
	kvDim := s.KVHeads * hd
	buf := t.ws[worker]
	kb, sc := buf[:attnBlock*hd], buf[attnBlock*hd:attnBlock*(hd+mPad)]
	for it := lo; it < hi; it++ {
		kvh, jb := it%s.KVHeads, it/s.KVHeads*attnBlock
		nb := min(attnBlock, s.N-jb)
		nbPad := roundUp(nb, 12)
		for j := jb; j < jb+nb; { // gather the block's keys, a page run at a time
			pg, slot := j/s.Page, j%s.Page
			n := min(jb+nb-j, s.Page-slot)
			p, off, dst := s.Pages[pg], slot*kvDim+kvh*hd, (j-jb)*hd
			if p.K32 != nil {
				for r := 0; r < n; r++ {
					copy(kb[dst+r*hd:dst+(r+1)*hd], p.K32[off+r*kvDim:])
				}
			} else {
				cvtF16Rows(kb[dst:], p.K16[off:], hd, n, kvDim)
			}
			j += n
		}
		clear(kb[nb*hd : nbPad*hd])
		st := sc[:nbPad*mPad] // (nbPad, mPad)
		if t.outer {
			clear(st)
			qt := t.qt[kvh*mPad*hd:]
			for j := 0; j < nbPad; j += 6 {
				for i := 0; i < mPad; i += 16 {
					gemmTile(6, st[j*mPad+i:], mPad, kb[j*hd:], hd, 1, qt[i:], mPad, hd)
				}
			}
		} else {
			q := t.q[kvh*mPad*hd:]
			for j := 0; j < nbPad; j += 4 {
				for i := 0; i < mPad; i += 3 {
					dot4x3(st[j*mPad+i:], mPad, kb[j*hd:], hd, q[i*hd:], hd, hd)
				}
			}
		}
		for i := 0; i < t.m; i++ {
			h := kvh*group + i%group
			dst := t.logits[((i/group)*s.Heads+h)*s.N+jb:][:nb]
			for j := range dst {
				dst[j] = st[j*mPad+i] * s.Scale
			}
		}
	}
}

// run runs the phase 1 softmax of (query, head) rows [lo, hi).
func (t *selectTask) run(lo, hi int) {
	n := t.s.N
	for r := lo; r < hi; r++ {
		softmax(t.logits[r*n : (r+1)*n])
	}
}

// gatherTask copies rows [lo, hi) of one GatherKV call.
type gatherTask struct {
	dst, src         []*compute.KVPage
	dstPage, srcPage int
	slots, rows      []int32
}

// GatherKV implements compute.Device: the rows are copied in parallel (a step moves thousands of scattered
// rows at long context).
func (d *Device) GatherKV(dst []*compute.KVPage, dstPage int, dstSlots []int32, src []*compute.KVPage, srcPage int, srcRows []int32) {
	t := &d.gather
	*t = gatherTask{dst: dst, src: src, dstPage: dstPage, srcPage: srcPage, slots: dstSlots, rows: srcRows}
	if len(srcRows) < 256 {
		t.run(0, len(srcRows))
	} else {
		parallelFor(len(srcRows), t)
	}
	*t = gatherTask{}
}

func (t *gatherTask) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		if i+gatherAhead < hi { // scattered rows from memory: ask for a later row's lines now
			t.prefetch(int(t.rows[i+gatherAhead]))
		}
		r := t.rows[i]
		sp, so := t.src[int(r)/t.srcPage], int(r)%t.srcPage
		slot := int(t.slots[i])
		dp, do := t.dst[slot/t.dstPage], slot%t.dstPage
		// Non-temporal stores: the staging lines are written without being read first (the staging of all
		// sparse layers is far larger than the caches).
		if sp.K32 != nil {
			w := len(sp.K32) / t.srcPage
			copyRowsNT(dp.K32[do*w:(do+1)*w], sp.K32[so*w:(so+1)*w])
			copyRowsNT(dp.V32[do*w:(do+1)*w], sp.V32[so*w:(so+1)*w])
		} else {
			w := len(sp.K16) / t.srcPage
			copyRowsNT(dp.K16[do*w:(do+1)*w], sp.K16[so*w:(so+1)*w])
			copyRowsNT(dp.V16[do*w:(do+1)*w], sp.V16[so*w:(so+1)*w])
		}
	}
	storeFence()
}

// gatherAhead is how many rows ahead gatherTask.run prefetches its source rows.
const gatherAhead = 24

// prefetch hints the K and V lines of source row r.
func (t *gatherTask) prefetch(r int) {
	sp, so := t.src[r/t.srcPage], r%t.srcPage
	if sp.K32 != nil {
		w := len(sp.K32) / t.srcPage
		prefetchLines(unsafe.Pointer(&sp.K32[so*w]), (4*w+63)/64)
		prefetchLines(unsafe.Pointer(&sp.V32[so*w]), (4*w+63)/64)
		return
	}
	w := len(sp.K16) / t.srcPage
	prefetchLines(unsafe.Pointer(&sp.K16[so*w]), (2*w+63)/64)
	prefetchLines(unsafe.Pointer(&sp.V16[so*w]), (2*w+63)/64)
}
