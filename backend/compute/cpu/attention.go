package cpu

import (
	"fmt"
	"math"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// Blocked ("flash") attention over every sequence of a batch in one parallel loop. A task is one (sequence,
// block of its query rows, KV head, split of its visible tokens). It stacks the query heads of the KV
// head's group for its rows into a matrix Q (m = rows*group, headDim), then walks the visible tokens in
// blocks of attnBlock: the block's keys and values are converted to float32 once, scores S = Q·Kᵀ are
// computed for all m rows by a tiled kernel, the causal mask is applied, and an online softmax (running max
// and sum per row, the accumulator rescaled when the max grows) adds P·V to the unnormalized output. With
// one split the task writes Out itself; with several (decode over a long context, so that every core
// works), each split leaves (O, max, sum) and a second pass merges them:
//
//	out = Σ_s e^(max_s - M) O_s / Σ_s e^(max_s - M) sum_s,   M = the largest max_s.
//
// A sequence's plan (row blocks, splits) depends on that sequence alone, never on the others in the batch,
// so that a sequence's outputs are bit-identical whatever it is batched with.
//
// Numerics: scores, probabilities and P·V in float32 (fast exp, exp.go: <= 2 ulp); the running sums in
// float64 (a float32 sum over thousands of tokens drifts by ~1e-6). Results agree with float64 math within
// the conformance suite's 2e-6 (relative to the largest output).
const (
	attnBlock      = 48  // KV tokens per block: a multiple of 12 (kernel tiles of 3, 4 and 6 tokens)
	attnRowsTarget = 96  // query-head rows (query rows x group) per task, at most
	attnMinSplit   = 512 // visible tokens per split, at least
)

// attnSeq is one sequence of an Attend call with its plan.
type attnSeq struct {
	q0, rows   int     // query rows [q0, q0+rows) of Q and Out
	pos0, len  int     // position of the first query row; tokens in the pages
	blocks     []int32 // the sequence's pages
	sel        []int32 // the attention list (ascending slots), or nil: every visible token
	hm         *selState
	rowBlock   int // query rows per task
	rowBlocks  int
	splits     int // splits of the visible tokens per (row block, KV head)
	splitLen   int // visible tokens per split, a multiple of attnBlock
	mPad       int // largest task's m rounded up to a multiple of 3
	task0      int // first task index
	merge0     int // first merge index (splits > 1)
	part0      int // first value of the sequence's partial results in attnTask.part
	headMaxSep bool
}

// attnTask is Attend's reusable plan and scratch (one per Device).
type attnTask struct {
	a         *compute.Attention
	st        *kvStore
	group, hd int
	seqs      []attnSeq
	taskSeq   []int32 // (tasks) the sequence of each task
	mergeSeq  []int32 // (merges) the sequence of each merge item
	q, out    []float32
	phase     int // 0: tasks; 1: merge of the splits
	ws        []attnScratch
	part      []float32 // per split task: O (mPad, hd), max (mPad), sum (mPad)
}

// attnScratch is one worker's memory; every slice is a view of buf.
type attnScratch struct {
	kvh int // the KV head of the task running on this scratch
	buf []float32
	q   []float32 // (mPad, hd) query-head rows: row i is query row r0+i/group, head kvh*group+i%group
	qt  []float32 // (hd, mPad) q transposed, for the outer-product score kernel
	k   []float32 // (attnBlock, hd) the block's keys as float32
	v   []float32 // (attnBlock, hd) the block's values as float32
	s   []float32 // (attnBlock, mPad) scaled scores, then probabilities, token-major
	o   []float32 // (mPad, hd) unnormalized output
	m   []float32 // (mPad) running max of the scaled scores (-Inf before any visible token)
	l   []float64 // (mPad) running Σ e^(score - m), in float64: a float32 sum over thousands of tokens drifts
	mx  []float32 // (mPad) per block: the new max, then the value subtracted before exp
	al  []float32 // (mPad) per block: e^(m_old - m_new), the accumulator's rescale factor
}

func roundUp(n, k int) int { return (n + k - 1) / k * k }

// size carves the scratch for mPad rows of hd values, growing buf when needed.
func (w *attnScratch) size(mPad, hd int) {
	need := 3*mPad*hd + 2*attnBlock*hd + attnBlock*mPad + 3*mPad
	if cap(w.buf) < need {
		w.buf = make([]float32, need)
	}
	b := w.buf[:need]
	take := func(n int) []float32 { s := b[:n:n]; b = b[n:]; return s }
	w.q, w.qt, w.o = take(mPad*hd), take(mPad*hd), take(mPad*hd)
	w.k, w.v, w.s = take(attnBlock*hd), take(attnBlock*hd), take(attnBlock*mPad)
	w.m, w.mx, w.al = take(mPad), take(mPad), take(mPad)
	if cap(w.l) < mPad {
		w.l = make([]float64, mPad)
	}
	w.l = w.l[:mPad]
}

// Attend implements compute.Device. A Device runs one Attend at a time (its scratch is per device).
func (d *Device) Attend(a *compute.Attention) {
	t := &d.attn
	if t.plan(a) == 0 {
		t.reset()
		return
	}
	parallelForW(len(t.taskSeq), 1, t)
	for i := range t.seqs {
		if sq := &t.seqs[i]; sq.headMaxSep {
			t.headMaxPass(sq)
		}
	}
	if len(t.mergeSeq) > 0 {
		t.phase = 1
		parallelForW(len(t.mergeSeq), 1, t)
		t.phase = 0
	}
	t.reset()
}

func (t *attnTask) reset() {
	t.a, t.st, t.q, t.out = nil, nil, nil, nil
	clear(t.seqs)
	t.seqs = t.seqs[:0]
}

// plan lays out the tasks of every sequence of a and sizes the scratch; it returns the number of tasks.
func (t *attnTask) plan(a *compute.Attention) int {
	bt := batchOf(a.Batch)
	bt.check("attend", a.Store)
	st := storeOf(a.Store)
	if a.Heads%a.KVHeads != 0 || a.KVHeads*a.HeadDim != st.spec.KVDim || a.Q.Cols != a.Heads*a.HeadDim || a.Out.Cols != a.Q.Cols ||
		a.Layer < 0 || a.Layer >= st.layers || (a.Sel != nil && len(a.Sel) != a.Batch.Seqs) || (a.HeadMax != nil && len(a.HeadMax) != a.Batch.Seqs) {
		panic(fmt.Sprintf("attend: %d heads (%d KV) of %d on a store of KV dim %d, layer %d of %d; Q (%d, %d), Out (%d, %d); %d sequences, %d selections, %d head max",
			a.Heads, a.KVHeads, a.HeadDim, st.spec.KVDim, a.Layer, st.layers, a.Q.Rows, a.Q.Cols, a.Out.Rows, a.Out.Cols, a.Batch.Seqs, len(a.Sel), len(a.HeadMax)))
	}
	workers := poolWorkers()
	t.reset() // a previous call that panicked left its plan
	t.a, t.st, t.phase = a, st, 0
	t.q, t.out = f32(a.Q), f32(a.Out)
	t.group, t.hd = a.Heads/a.KVHeads, a.HeadDim
	t.taskSeq, t.mergeSeq = t.taskSeq[:0], t.mergeSeq[:0]
	mPadMax, parts := 0, 0
	for s := 0; s < a.Batch.Seqs; s++ {
		rows := int(bt.d.QRows[s])
		if rows <= 0 {
			continue
		}
		sq := attnSeq{q0: int(bt.d.QStart[s]), rows: rows, pos0: int(bt.d.Pos0[s]), len: int(bt.d.Len[s]), blocks: bt.blocks(s)}
		if sq.q0+rows > a.Q.Rows || sq.q0+rows > a.Out.Rows || sq.q0 < 0 || (sq.len+st.spec.PageTokens-1)/st.spec.PageTokens > len(sq.blocks) {
			panic(fmt.Sprintf("attend: sequence %d: rows [%d, %d) of Q (%d rows); %d tokens in %d pages of %d", s, sq.q0, sq.q0+rows, a.Q.Rows, sq.len, len(sq.blocks), st.spec.PageTokens))
		}
		if a.Sel != nil && a.Sel[s] != nil {
			sq.sel = selOf(a.Sel[s]).attend
		}
		if a.HeadMax != nil && a.HeadMax[s] != nil {
			if rows != 1 || sq.sel != nil {
				panic(fmt.Sprintf("attend: head max needs one query row and no selection, sequence %d has %d rows", s, rows))
			}
			sq.hm = selOf(a.HeadMax[s])
			if len(sq.hm.headMax) < a.KVHeads*sq.len && cap(sq.hm.headMax) >= a.KVHeads*sq.len {
				sq.hm.headMax = sq.hm.headMax[:cap(sq.hm.headMax)]
			}
			if cap(sq.hm.headMax) < a.KVHeads*sq.len {
				panic(fmt.Sprintf("attend: head max of %d tokens, the state holds %d (BeginTurn's maxLen)", sq.len, cap(sq.hm.headMax)/a.KVHeads))
			}
			sq.hm.hmLen = sq.len
			hm := sq.hm.headMax[:a.KVHeads*sq.len]
			for i := range hm {
				hm[i] = float32(math.Inf(-1))
			}
			sq.headMaxSep = roundUp(t.group, 3) >= 16 // blockSmall fills it; otherwise a separate pass
		}
		sq.rowBlock = min(rows, max(1, attnRowsTarget/t.group))
		sq.rowBlocks = (rows + sq.rowBlock - 1) / sq.rowBlock
		sq.mPad = roundUp(sq.rowBlock*t.group, 3)
		nvis := sq.visible(sq.pos0 + rows - 1)
		sq.splits, sq.splitLen = 1, roundUp(max(nvis, 1), attnBlock)
		if tasks := sq.rowBlocks * a.KVHeads; tasks < 4*workers && nvis >= 2*attnMinSplit {
			splits := min((4*workers+tasks-1)/tasks, nvis/attnMinSplit)
			sq.splitLen = roundUp((nvis+splits-1)/splits, attnBlock)
			sq.splits = (nvis + sq.splitLen - 1) / sq.splitLen
		}
		idx := int32(len(t.seqs))
		sq.task0 = len(t.taskSeq)
		for range sq.rowBlocks * a.KVHeads * sq.splits {
			t.taskSeq = append(t.taskSeq, idx)
		}
		if sq.splits > 1 {
			sq.merge0, sq.part0 = len(t.mergeSeq), parts
			for range sq.rowBlocks * a.KVHeads {
				t.mergeSeq = append(t.mergeSeq, idx)
			}
			parts += sq.rowBlocks * a.KVHeads * sq.splits * sq.mPad * (t.hd + 2)
		}
		mPadMax = max(mPadMax, sq.mPad)
		t.seqs = append(t.seqs, sq)
	}
	if len(t.ws) < workers {
		t.ws = make([]attnScratch, workers)
	}
	for i := range t.ws {
		t.ws[i].size(mPadMax+3, t.hd) // blockSmall pads to a multiple of 4 rows
	}
	if cap(t.part) < parts {
		t.part = make([]float32, parts)
	}
	t.part = t.part[:parts]
	return len(t.taskSeq)
}

// visible returns how many tokens a query at position last sees: last+1, or the selected ones <= last.
func (sq *attnSeq) visible(last int) int {
	if sq.sel != nil {
		return countVisible(sq.sel, last)
	}
	return min(last+1, sq.len)
}

// token returns the token index of visible index j.
func (sq *attnSeq) token(j int) int {
	if sq.sel != nil {
		return int(sq.sel[j])
	}
	return j
}

func (t *attnTask) runW(worker, lo, hi int) {
	for i := lo; i < hi; i++ {
		if t.phase == 0 {
			t.run(&t.ws[worker], i)
		} else {
			t.merge(i)
		}
	}
}

// run computes task i: (rowBlock*KVHeads + kvh)*splits + split of its sequence.
func (t *attnTask) run(w *attnScratch, i int) {
	sq := &t.seqs[t.taskSeq[i]]
	a, hd, group := t.a, t.hd, t.group
	local := i - sq.task0
	sp, kvh, rb := local%sq.splits, local/sq.splits%a.KVHeads, local/sq.splits/a.KVHeads
	r0 := rb * sq.rowBlock
	r1 := min(r0+sq.rowBlock, sq.rows)
	m := (r1 - r0) * group
	mPad := roundUp(m, 3)
	// Few rows (decode): scores row-major by 4x3 dot tiles, softmax along tokens (blockSmall). Else scores
	// token-major, by the outer-product kernel over qᵀ when mPad is a multiple of 16, or by dot tiles.
	small := mPad < 16
	outer := !small && mPad%16 == 0
	rows := mPad // rows of q, o and s
	if small {
		rows = max(roundUp(m, 4), mPad)
	}

	// Stack the group's query heads.
	q := w.q[:rows*hd]
	qd := a.Q.Cols
	for rr := r0; rr < r1; rr++ {
		row := t.q[(sq.q0+rr)*qd+kvh*group*hd : (sq.q0+rr)*qd+(kvh+1)*group*hd]
		copy(q[(rr-r0)*group*hd:], row)
	}
	clear(q[m*hd:])
	if outer {
		qt := w.qt[:hd*mPad]
		for i := 0; i < mPad; i++ {
			for d, v := range q[i*hd : (i+1)*hd] {
				qt[d*mPad+i] = v
			}
		}
	}
	o, mr, l := w.o[:rows*hd], w.m[:rows], w.l[:rows]
	clear(o)
	clear(l)
	for i := range mr {
		mr[i] = float32(math.Inf(-1))
	}

	w.kvh = kvh
	j0 := sp * sq.splitLen
	j1 := min(j0+sq.splitLen, sq.visible(sq.pos0+r1-1))
	for jb := j0; jb < j1; jb += attnBlock {
		nb := min(attnBlock, j1-jb)
		t.gather(w, sq, kvh, jb, nb)
		if small {
			t.blockSmall(w, sq, r0, m, rows, jb, nb)
		} else {
			t.block(w, sq, r0, m, mPad, jb, nb, outer)
		}
	}

	if sq.splits == 1 {
		t.finish(sq, r0, m, kvh, o, l)
		return
	}
	p := t.part[sq.part0+local*sq.mPad*(hd+2):] // sq.mPad >= m
	copy(p, o[:m*hd])
	copy(p[sq.mPad*hd:], mr[:m])
	for r, v := range l[:m] {
		p[sq.mPad*(hd+1)+r] = float32(v)
	}
}

// gather converts the keys and values of visible indices [jb, jb+nb) of KV head kvh into w.k and w.v and
// zeroes the rows up to the next multiple of 12.
func (t *attnTask) gather(w *attnScratch, sq *attnSeq, kvh, jb, nb int) {
	st, hd, layer := t.st, t.hd, t.a.Layer
	kvDim, pt := st.spec.KVDim, st.spec.PageTokens
	for j := jb; j < jb+nb; {
		tok := sq.token(j)
		pg, slot := tok/pt, tok%pt
		// Rows that are consecutive in this page; with a selection, a run of consecutive selected rows
		// (a sparse layer's staging slots mostly are).
		n := min(jb+nb-j, pt-slot)
		if sq.sel != nil {
			r := 1
			for r < n && int(sq.sel[j+r]) == tok+r {
				r++
			}
			n = r
		}
		p, off, dst := int(sq.blocks[pg]), slot*kvDim+kvh*hd, (j-jb)*hd
		if st.fp32() {
			k, v := st.kf(p, layer), st.vf(p, layer)
			for r := 0; r < n; r++ {
				copy(w.k[dst+r*hd:dst+(r+1)*hd], k[off+r*kvDim:])
				copy(w.v[dst+r*hd:dst+(r+1)*hd], v[off+r*kvDim:])
			}
		} else {
			cvtF16Rows(w.k[dst:], st.kh(p, layer)[off:], hd, n, kvDim)
			cvtF16Rows(w.v[dst:], st.vh(p, layer)[off:], hd, n, kvDim)
		}
		j += n
	}
	nbPad := roundUp(nb, 12)
	clear(w.k[nb*hd : nbPad*hd])
	clear(w.v[nb*hd : nbPad*hd])
}

// block adds the visible indices [jb, jb+nb) (keys and values in w.k, w.v) to the task's m query-head rows
// (padded to mPad) whose first query row is r0.
func (t *attnTask) block(w *attnScratch, sq *attnSeq, r0, m, mPad, jb, nb int, outer bool) {
	hd, group := t.hd, t.group
	nbPad := roundUp(nb, 12)
	s := w.s[:nbPad*mPad] // (nbPad, mPad)

	// Scores, token-major: s[j*mPad+i] = k_j · q_i.
	if outer {
		clear(s)
		for j := 0; j < nbPad; j += 6 {
			for i := 0; i < mPad; i += 16 {
				gemmTile(6, s[j*mPad+i:], mPad, w.k[j*hd:], hd, 1, w.qt[i:], mPad, hd)
			}
		}
	} else {
		for j := 0; j < nbPad; j += 4 {
			for i := 0; i < mPad; i += 3 {
				dot4x3(s[j*mPad+i:], mPad, w.k[j*hd:], hd, w.q[i*hd:], hd, hd)
			}
		}
	}

	// Scale, mask and the new running max.
	ninf := float32(math.Inf(-1))
	mx := w.mx[:mPad]
	copy(mx, w.m[:mPad])
	first := sq.pos0 + r0 // the newest position every row of the task sees
	for j := 0; j < nbPad; j++ {
		row := s[j*mPad : (j+1)*mPad]
		iv := 0 // rows before iv do not see this token
		if j >= nb {
			iv = mPad
		} else if tok := sq.token(jb + j); tok > first {
			iv = min(m, (tok-first)*group)
		}
		for i := 0; i < iv; i++ {
			row[i] = ninf
		}
		attnScaleMax(row[iv:], mx[iv:], t.a.Scale)
	}
	al := w.al[:mPad]
	for i, v := range mx {
		if v == ninf {
			mx[i] = 0 // nothing visible yet: e^(-Inf - 0) = 0 keeps the row at zero
		}
		al[i] = w.m[i] - mx[i]
		w.m[i] = max(w.m[i], v)
	}
	expF32(al)

	// Probabilities, running sums and the rescaled accumulator.
	l := w.l[:mPad]
	for i := range l {
		l[i] *= float64(al[i])
	}
	if mPad%8 == 0 { // fused, 8 rows per vector
		for j := 0; j < nbPad; j++ {
			attnExpSum(s[j*mPad:(j+1)*mPad], mx, l)
		}
	} else { // few rows (decode): subtract, then one exp over the whole block
		for j := 0; j < nbPad; j++ {
			row := s[j*mPad : (j+1)*mPad]
			for i, v := range mx {
				row[i] -= v
			}
		}
		expF32(s)
		for j := 0; j < nb; j++ {
			for i, v := range s[j*mPad : (j+1)*mPad] {
				l[i] += float64(v)
			}
		}
	}
	o := w.o[:mPad*hd]
	for i, f := range al[:m] {
		if f != 1 {
			scaleF32(o[i*hd:(i+1)*hd], f)
		}
	}

	// o += P·V with P = sᵀ (mPad, nbPad).
	if hd%16 == 0 {
		rows := 3
		if mPad%6 == 0 {
			rows = 6
		}
		for i := 0; i < mPad; i += rows {
			for c := 0; c < hd; c += 16 {
				gemmTile(rows, o[i*hd+c:], hd, s[i:], 1, mPad, w.v[c:], hd, nbPad)
			}
		}
		return
	}
	for i := 0; i < m; i++ {
		oi := o[i*hd : (i+1)*hd]
		for j := 0; j < nb; j++ {
			if p := s[j*mPad+i]; p != 0 {
				axpyF32(oi, p, w.v[j*hd:(j+1)*hd])
			}
		}
	}
}

// finish writes the m rows of task rows starting at query row r0 to Out: o/l (zero where nothing was seen).
func (t *attnTask) finish(sq *attnSeq, r0, m, kvh int, o []float32, l []float64) {
	hd, group, qd := t.hd, t.group, t.a.Out.Cols
	for i := 0; i < m; i++ {
		h := kvh*group + i%group
		r := sq.q0 + r0 + i/group
		dst := t.out[r*qd+h*hd : r*qd+(h+1)*hd]
		if l[i] == 0 {
			clear(dst)
			continue
		}
		inv := float32(1 / l[i])
		for d, v := range o[i*hd : (i+1)*hd] {
			dst[d] = v * inv
		}
	}
}

// merge combines the splits of merge item i: (row block, KV head) of its sequence, into Out.
func (t *attnTask) merge(i int) {
	sq := &t.seqs[t.mergeSeq[i]]
	a, hd, group, qd := t.a, t.hd, t.group, t.a.Out.Cols
	local := i - sq.merge0
	kvh, rb := local%a.KVHeads, local/a.KVHeads
	r0 := rb * sq.rowBlock
	m := (min(r0+sq.rowBlock, sq.rows) - r0) * group
	stride := sq.mPad * (hd + 2)
	base := t.part[sq.part0+local*sq.splits*stride : sq.part0+(local+1)*sq.splits*stride]
	for r := 0; r < m; r++ {
		h := kvh*group + r%group
		row := sq.q0 + r0 + r/group
		dst := t.out[row*qd+h*hd : row*qd+(h+1)*hd]
		clear(dst)
		mm := math.Inf(-1)
		for sp := 0; sp < sq.splits; sp++ {
			mm = math.Max(mm, float64(base[sp*stride+sq.mPad*hd+r]))
		}
		if math.IsInf(mm, -1) {
			continue
		}
		var sum float64
		for sp := 0; sp < sq.splits; sp++ {
			p := base[sp*stride:]
			sum += math.Exp(float64(p[sq.mPad*hd+r])-mm) * float64(p[sq.mPad*(hd+1)+r])
		}
		for sp := 0; sp < sq.splits; sp++ {
			p := base[sp*stride:]
			if wgt := math.Exp(float64(p[sq.mPad*hd+r])-mm) / sum; wgt != 0 {
				axpyF32(dst, float32(wgt), p[r*hd:(r+1)*hd])
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
		m = max(m, v)
	}
	if math.IsInf(float64(m), -1) {
		clear(x)
		return
	}
	for i := range x {
		x[i] -= m
	}
	expF32(x)
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	scaleF32(x, float32(1/sum))
}

// headMaxPass fills a sequence's head max for shapes whose attention kernel does not (large GQA groups):
// the plain loop.
func (t *attnTask) headMaxPass(sq *attnSeq) {
	a, st, layer := t.a, t.st, t.a.Layer
	hd, group, kvDim, pt := a.HeadDim, t.group, st.spec.KVDim, st.spec.PageTokens
	q := t.q[sq.q0*a.Q.Cols : (sq.q0+1)*a.Q.Cols]
	hm := sq.hm.headMax
	for tok := 0; tok < sq.len; tok++ {
		p, off := int(sq.blocks[tok/pt]), (tok%pt)*kvDim
		for kvh := 0; kvh < a.KVHeads; kvh++ {
			best := float32(math.Inf(-1))
			for g := 0; g < group; g++ {
				h := kvh*group + g
				var v float32
				if st.fp32() {
					v = dotF32(q[h*hd:(h+1)*hd], st.kf(p, layer)[off+kvh*hd:off+(kvh+1)*hd])
				} else {
					v = dotF16(st.kh(p, layer)[off+kvh*hd:off+(kvh+1)*hd], q[h*hd:(h+1)*hd])
				}
				best = max(best, v*a.Scale)
			}
			hm[kvh*sq.len+tok] = best
		}
	}
}
