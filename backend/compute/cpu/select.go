package cpu

import (
	"fmt"
	"slices"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
)

// selState is a SelState on the CPU device.
type selState struct {
	spec    compute.SelSpec
	window  []float32 // (Window, QDim) the filter layer's newest queries, oldest first
	winLen  int       // rows of window filled
	n, k    int       // candidates and selection slots of this turn
	scores  []float32 // (n) scores of the candidates (SelectScores), or the max of headMax over KV heads
	headMax []float32 // (KVHeads, hmLen) the fused "last" scores of the filter layer's attention
	hmLen   int       // row length of headMax at its last fill
	sel     []int32   // (<= k) the selection, ascending
	tmp     []int32   // (n) scratch of omnikv.Select
	slots   omnikv.Slots
	fetch   []int32 // rows newly selected by the last Select (valid until the next)
	fslot   []int32 // their staging slots
	attend  []int32 // staging slots in use, then the generated tokens' slots K .. K+step
	fetched int64   // rows gathered this turn, every target layer
	last    int     // rows gathered since the last Select
}

func selOf(s *compute.SelState) *selState {
	st, ok := s.Handle.(*selState)
	if !ok {
		panic("cpu: selection state is not a CPU state, or was freed")
	}
	return st
}

// NewSelState implements compute.Device.
func (*Device) NewSelState(spec compute.SelSpec) (*compute.SelState, error) {
	if spec.Window <= 0 || spec.QDim <= 0 || spec.KVHeads <= 0 {
		return nil, fmt.Errorf("cpu: selection state with window %d, query dim %d, %d KV heads", spec.Window, spec.QDim, spec.KVHeads)
	}
	st := &selState{spec: spec, window: make([]float32, spec.Window*spec.QDim)}
	return &compute.SelState{Spec: spec, Handle: st}, nil
}

// BeginTurn implements compute.Device. The observation window is kept: it holds the newest queries of the
// prompt just added.
func (*Device) BeginTurn(s *compute.SelState, n, k, maxLen int) {
	st := selOf(s)
	st.n, st.k = n, k
	st.slots.Reset(k)
	st.sel, st.attend, st.fetch, st.fslot = st.sel[:0], st.attend[:0], nil, nil
	st.fetched, st.last = 0, 0
	if cap(st.scores) < n {
		st.scores, st.tmp = make([]float32, n), make([]int32, n)
	}
	st.scores, st.tmp = st.scores[:n], st.tmp[:n]
	if need := s.Spec.KVHeads * maxLen; cap(st.headMax) < need {
		st.headMax = make([]float32, need)
	}
}

// ReadSel implements compute.Device.
func (*Device) ReadSel(s *compute.SelState) compute.SelInfo {
	st := selOf(s)
	return compute.SelInfo{
		Candidates: st.n, Selected: slices.Clone(st.sel), Attend: slices.Clone(st.attend),
		Scores: slices.Clone(st.scores), RowsFetched: st.fetched, LastFetched: st.last,
	}
}

// SetAttend implements compute.Device.
func (*Device) SetAttend(s *compute.SelState, slots []int32) {
	st := selOf(s)
	st.attend = append(st.attend[:0], slots...)
}

// Observe implements compute.Device.
func (*Device) Observe(o *compute.Observe) {
	bt := batchOf(o.Batch)
	for s, state := range o.States {
		if state == nil {
			continue
		}
		st := selOf(state)
		w, qd := st.spec.Window, st.spec.QDim
		if o.Q.Cols != qd {
			panic(fmt.Sprintf("cpu observe: queries of %d columns for a window of %d", o.Q.Cols, qd))
		}
		q0, n := int(bt.d.QStart[s]), int(bt.d.QRows[s])
		for r := max(0, n-w); r < n; r++ {
			if st.winLen == w { // full: drop the oldest
				copy(st.window, st.window[qd:])
				st.winLen--
			}
			copy(st.window[st.winLen*qd:(st.winLen+1)*qd], rowOf(o.Q, q0+r))
			st.winLen++
		}
	}
}

// SelectScores implements compute.Device: each state's scores, one state after another, each over the
// whole worker pool (see selectTask).
func (d *Device) SelectScores(s *compute.SelectScores) {
	bt := batchOf(s.Batch)
	bt.check("select scores", s.Store)
	st := storeOf(s.Store)
	for i, state := range s.States {
		if state == nil {
			continue
		}
		ss := selOf(state)
		rows := ss.winLen
		if rows == 0 || ss.n == 0 {
			clear(ss.scores)
			continue
		}
		d.sel.job = selectJob{
			q: ss.window[:rows*ss.spec.QDim], rows: rows, alpha: s.Alpha[len(s.Alpha)-rows:], softmax: s.Softmax,
			heads: s.Heads, kvHeads: s.KVHeads, hd: s.HeadDim, scale: s.Scale,
			st: st, layer: s.Layer, blocks: bt.blocks(i), n: ss.n, out: ss.scores,
		}
		d.sel.run1(&d.sel.job)
		d.sel.job = selectJob{}
	}
}

// chooseTask runs Select over the states in parallel.
type chooseTask struct{ s *compute.Select }

// Select implements compute.Device.
func (d *Device) Select(s *compute.Select) {
	if len(s.Forced) != len(s.States) || len(s.Step) != len(s.States) {
		panic(fmt.Sprintf("cpu select: %d states, %d forced counts, %d steps", len(s.States), len(s.Forced), len(s.Step)))
	}
	t := &d.choose
	t.s = s
	parallelFor(len(s.States), t)
	t.s = nil
}

func (t *chooseTask) run(lo, hi int) {
	s := t.s
	for i := lo; i < hi; i++ {
		if s.States[i] == nil {
			continue
		}
		st := selOf(s.States[i])
		switch s.Mode {
		case compute.SelHeadMax:
			// max over KV heads of the fused head max of the candidates.
			sc, hm, L := st.scores[:st.n], st.headMax, st.hmLen
			copy(sc, hm[:st.n])
			for kvh := 1; kvh < st.spec.KVHeads; kvh++ {
				for j, v := range hm[kvh*L : kvh*L+st.n] {
					sc[j] = max(sc[j], v)
				}
			}
			st.sel = omnikv.Select(sc, st.k, int(s.Forced[i]), st.sel, st.tmp)
		case compute.SelScores:
			st.sel = omnikv.Select(st.scores[:st.n], st.k, int(s.Forced[i]), st.sel, st.tmp)
		case compute.SelSinkRecent:
			st.sel = omnikv.SinkRecentSelection(st.n, st.k, st.sel)
		default:
			panic(fmt.Sprintf("cpu select: mode %d", s.Mode))
		}
		var used []int32
		st.fetch, st.fslot, used = st.slots.Update(st.sel)
		// The generated tokens' slots follow the selection slots.
		st.attend = append(st.attend[:0], used...)
		for g := 0; g <= int(s.Step[i]); g++ {
			st.attend = append(st.attend, int32(st.k+g))
		}
		st.last = 0
	}
}

// gatherTask copies the fetched rows of every state of one Gather, spread over the worker pool by rows.
type gatherTask struct {
	g        *compute.Gather
	src, dst *kvStore
	sb, db   *batch
	states   []*selState
	rowOff   []int // (states+1) prefix sums of the states' fetch counts
}

// Gather implements compute.Device: the copy runs at once (the fence is complete), in parallel when it is
// large (a step moves thousands of scattered rows at long context).
func (d *Device) Gather(g *compute.Gather) compute.Fence {
	t := &d.gather
	t.g, t.src, t.dst = g, storeOf(g.Src), storeOf(g.Dst)
	t.sb, t.db = batchOf(g.SrcBatch), batchOf(g.DstBatch)
	t.sb.check("gather source", g.Src)
	t.db.check("gather destination", g.Dst)
	if t.src.spec != t.dst.spec {
		panic(fmt.Sprintf("cpu gather: source pages %+v, destination %+v", t.src.spec, t.dst.spec))
	}
	t.states = t.states[:0]
	t.rowOff = append(t.rowOff[:0], 0)
	for _, s := range g.States {
		var st *selState
		if s != nil {
			st = selOf(s)
		}
		t.states = append(t.states, st)
		n := 0
		if st != nil {
			n = len(st.fetch)
			st.fetched += int64(n)
			st.last += n
		}
		t.rowOff = append(t.rowOff, t.rowOff[len(t.rowOff)-1]+n)
	}
	if total := t.rowOff[len(t.rowOff)-1]; total < 256 {
		t.run(0, total)
	} else {
		parallelFor(total, t)
	}
	t.g, t.src, t.dst, t.sb, t.db = nil, nil, nil, nil, nil
	clear(t.states)
	return compute.Fence{}
}

// Wait implements compute.Device: CPU fences are complete when returned.
func (*Device) Wait(compute.Fence) {}

func (t *gatherTask) run(lo, hi int) {
	pt, kvDim := t.src.spec.PageTokens, t.src.spec.KVDim
	sl, dl := t.g.SrcLayer, t.g.DstLayer
	s := 0
	for i := lo; i < hi; i++ {
		for i >= t.rowOff[s+1] {
			s++
		}
		st, j := t.states[s], i-t.rowOff[s]
		if ahead := j + gatherAhead; ahead < len(st.fetch) && i+gatherAhead < hi {
			t.prefetch(t.sb.blocks(s), int(st.fetch[ahead]), sl)
		}
		r, slot := int(st.fetch[j]), int(st.fslot[j])
		sp, so := int(t.sb.blocks(s)[r/pt]), r%pt*kvDim
		dp, do := int(t.db.blocks(s)[slot/pt]), slot%pt*kvDim
		// Non-temporal stores: the staging lines are written without being read first (the staging of all
		// sparse layers is far larger than the caches).
		if t.src.fp32() {
			copyRowsNT(t.dst.kf(dp, dl)[do:do+kvDim], t.src.kf(sp, sl)[so:so+kvDim])
			copyRowsNT(t.dst.vf(dp, dl)[do:do+kvDim], t.src.vf(sp, sl)[so:so+kvDim])
		} else {
			copyRowsNT(t.dst.kh(dp, dl)[do:do+kvDim], t.src.kh(sp, sl)[so:so+kvDim])
			copyRowsNT(t.dst.vh(dp, dl)[do:do+kvDim], t.src.vh(sp, sl)[so:so+kvDim])
		}
	}
	storeFence()
}

// gatherAhead is how many rows ahead gatherTask.run prefetches its source rows.
const gatherAhead = 24

// prefetch hints the K and V lines of source row r of a sequence whose pages are blocks.
func (t *gatherTask) prefetch(blocks []int32, r, layer int) {
	pt, kvDim := t.src.spec.PageTokens, t.src.spec.KVDim
	p, off := int(blocks[r/pt]), r%pt*kvDim
	if t.src.fp32() {
		prefetchLines(unsafe.Pointer(&t.src.kf(p, layer)[off]), (4*kvDim+63)/64)
		prefetchLines(unsafe.Pointer(&t.src.vf(p, layer)[off]), (4*kvDim+63)/64)
		return
	}
	prefetchLines(unsafe.Pointer(&t.src.kh(p, layer)[off]), (2*kvDim+63)/64)
	prefetchLines(unsafe.Pointer(&t.src.vh(p, layer)[off]), (2*kvDim+63)/64)
}

// selectJob is one state's SelectScores.
type selectJob struct {
	q                  []float32 // (rows, heads*hd) window queries, oldest first
	rows               int
	alpha              []float32 // (rows)
	softmax            bool
	heads, kvHeads, hd int
	scale              float32
	st                 *kvStore
	layer              int
	blocks             []int32
	n                  int
	out                []float32 // (n)
}

// selectTask computes one state's selection scores in three phases over the worker pool:
//
//  0. logits, by (block of attnBlock candidates, KV head): the block's keys are converted to float32 once
//     and multiplied with the stacked queries of the head's group (all window rows) by the attention's tiled
//     kernels: logits[i, h, j] = Q[i,h]·K[j]·Scale;
//  1. softmax over the candidates of each (query, head), with the vectorized exp (when softmax);
//  2. out[j] = Σ_i alpha[i] max_h logits[i, h, j], by ranges of selectChunk candidates, reading each
//     (query, head) row of logits contiguously.
type selectTask struct {
	job    selectJob // the current job's storage (no allocation per call)
	s      *selectJob
	phase  int
	m      int         // stacked query-head rows per KV head: rows*group
	mPad   int         // m rounded up to a multiple of 3
	outer  bool        // scores by the outer-product kernel over qt (mPad a multiple of 16)
	logits []float32   // (rows, heads, n)
	q      []float32   // (kvHeads, mPad, hd): row i of KV head kvh is query row i/group, head kvh*group+i%group
	qt     []float32   // (kvHeads, hd, mPad) q transposed
	ws     [][]float32 // (worker) (attnBlock, hd) keys of a block, then (attnBlock, mPad) scores
}

// run1 computes the scores of one job.
func (t *selectTask) run1(s *selectJob) {
	need := s.rows * s.heads * s.n
	if cap(t.logits) < need {
		t.logits = make([]float32, need+need/4)
	}
	t.s, t.logits = s, t.logits[:need]
	t.stack()
	for t.phase = 0; t.phase < 3; t.phase++ {
		switch t.phase {
		case 0:
			parallelForW((s.n+attnBlock-1)/attnBlock*s.kvHeads, 1, t)
		case 1:
			if s.softmax {
				parallelFor(s.rows*s.heads, t)
			}
		case 2:
			parallelForW(s.n, selectChunk, t)
		}
	}
	t.s = nil
}

// stack packs the queries per KV head and sizes the scratch.
func (t *selectTask) stack() {
	s := t.s
	hd, group := s.hd, s.heads/s.kvHeads
	t.m = s.rows * group
	t.mPad = roundUp(t.m, 3)
	t.outer = t.mPad%16 == 0
	n := s.kvHeads * t.mPad * hd
	if cap(t.q) < n {
		t.q, t.qt = make([]float32, n), make([]float32, n)
	}
	t.q, t.qt = t.q[:n], t.qt[:n]
	clear(t.q)
	qd := s.heads * hd
	for kvh := 0; kvh < s.kvHeads; kvh++ {
		q := t.q[kvh*t.mPad*hd : (kvh+1)*t.mPad*hd]
		for i := 0; i < s.rows; i++ {
			copy(q[i*group*hd:], s.q[i*qd+kvh*group*hd:i*qd+(kvh+1)*group*hd])
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

// runW runs phase 0 items (block*kvHeads + kvh) or a phase 2 candidate range [lo, hi).
func (t *selectTask) runW(worker, lo, hi int) {
	s := t.s
	if t.phase == 2 {
		out, best := s.out[lo:hi], t.ws[worker][:hi-lo]
		clear(out)
		for i := 0; i < s.rows; i++ {
			copy(best, t.logits[i*s.heads*s.n+lo:])
			for h := 1; h < s.heads; h++ {
				for j, v := range t.logits[(i*s.heads+h)*s.n+lo : (i*s.heads+h)*s.n+hi] {
					best[j] = max(best[j], v)
				}
			}
			axpyF32(out, s.alpha[i], best)
		}
		return
	}
	hd, group, mPad := s.hd, s.heads/s.kvHeads, t.mPad
	pt, kvDim := s.st.spec.PageTokens, s.st.spec.KVDim
	buf := t.ws[worker]
	kb, sc := buf[:attnBlock*hd], buf[attnBlock*hd:attnBlock*(hd+mPad)]
	for it := lo; it < hi; it++ {
		kvh, jb := it%s.kvHeads, it/s.kvHeads*attnBlock
		nb := min(attnBlock, s.n-jb)
		nbPad := roundUp(nb, 12)
		for j := jb; j < jb+nb; { // gather the block's keys, a page run at a time
			pg, slot := j/pt, j%pt
			n := min(jb+nb-j, pt-slot)
			p, off, dst := int(s.blocks[pg]), slot*kvDim+kvh*hd, (j-jb)*hd
			if s.st.fp32() {
				k := s.st.kf(p, s.layer)
				for r := 0; r < n; r++ {
					copy(kb[dst+r*hd:dst+(r+1)*hd], k[off+r*kvDim:])
				}
			} else {
				cvtF16Rows(kb[dst:], s.st.kh(p, s.layer)[off:], hd, n, kvDim)
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
			dst := t.logits[((i/group)*s.heads+h)*s.n+jb:][:nb]
			for j := range dst {
				dst[j] = st[j*mPad+i] * s.scale
			}
		}
	}
}

// run runs the phase 1 softmax of (query, head) rows [lo, hi).
func (t *selectTask) run(lo, hi int) {
	n := t.s.n
	for r := lo; r < hi; r++ {
		softmax(t.logits[r*n : (r+1)*n])
	}
}
