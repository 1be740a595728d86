package cpu

import (
	"fmt"
	"math"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// Blocked ("flash") attention. A task is one (block of query rows, KV head, split of the visible tokens). It
// stacks the query heads of the KV head's group for its rows into a matrix Q (m = rows*group, headDim), then
// walks the visible tokens in blocks of attnBlock: the block's keys and values are converted to float32
// once, scores S = Q·Kᵀ are computed for all m rows by a tiled kernel, the causal mask is applied, and an
// online softmax (running max and sum per row, the accumulator rescaled when the max grows) adds P·V to
// the unnormalized output. With one split the task writes Out itself; with several (decode over a long
// context, so that every core works), each split leaves (O, max, sum) and a second pass merges them:
//
//	out = Σ_s e^(max_s - M) O_s / Σ_s e^(max_s - M) sum_s,   M = the largest max_s.
//
// Numerics: scores, probabilities and P·V in float32 (fast exp, exp.go: <= 2 ulp); the running sums in
// float64 (a float32 sum over thousands of tokens drifts by ~1e-6). Results agree with float64 math within
// the conformance suite's 2e-6 (relative to the largest output), as the per-token loop it replaced did.
const (
	attnBlock      = 48  // KV tokens per block: a multiple of 12 (kernel tiles of 3, 4 and 6 tokens)
	attnRowsTarget = 96  // query-head rows (query rows x group) per task, at most
	attnMinSplit   = 512 // visible tokens per split, at least
)

// attnTask is Attend's reusable plan and scratch (one per Device).
type attnTask struct {
	a         *compute.Attention
	group, hd int
	rowBlock  int // query rows per task
	rowBlocks int
	splits    int // splits of the visible tokens per (row block, KV head)
	splitLen  int // visible tokens per split, a multiple of attnBlock
	mPad      int // largest task's m rounded up to a multiple of 3
	phase     int // 0: tasks; 1: merge of the splits
	ws        []attnScratch
	part      []float32 // (rowBlocks*KVHeads*splits, mPad*(hd+2)): per task O (mPad, hd), max (mPad), sum (mPad)
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
	if a.Rows <= 0 {
		return
	}
	t := &d.attn
	t.plan(a)
	fused := false
	if a.HeadMax != nil {
		if a.Rows != 1 || a.Sel != nil || len(a.HeadMax) < a.KVHeads*a.Len {
			panic(fmt.Sprintf("attend: HeadMax needs one query row, no Sel and (%d, %d) floats, got rows %d, %d floats", a.KVHeads, a.Len, a.Rows, len(a.HeadMax)))
		}
		hm := a.HeadMax[:a.KVHeads*a.Len]
		for i := range hm {
			hm[i] = float32(math.Inf(-1))
		}
		fused = roundUp(t.group, 3) < 16 // blockSmall fills it; otherwise a separate pass below
	}
	parallelForW(t.rowBlocks*a.KVHeads*t.splits, 1, t)
	if a.HeadMax != nil && !fused {
		headMaxPass(a)
	}
	if t.splits > 1 {
		t.phase = 1
		parallelForW(t.rowBlocks*a.KVHeads, 1, t)
		t.phase = 0
	}
	t.a = nil
}

// plan sets the task shape for a and sizes the scratch.
func (t *attnTask) plan(a *compute.Attention) {
	workers := poolWorkers()
	t.a, t.phase = a, 0
	t.group, t.hd = a.Heads/a.KVHeads, a.HeadDim
	t.rowBlock = min(a.Rows, max(1, attnRowsTarget/t.group))
	t.rowBlocks = (a.Rows + t.rowBlock - 1) / t.rowBlock
	t.mPad = roundUp(t.rowBlock*t.group, 3)
	nvis := visible(a, a.Pos0+a.Rows-1)
	t.splits, t.splitLen = 1, roundUp(max(nvis, 1), attnBlock)
	if tasks := t.rowBlocks * a.KVHeads; tasks < 4*workers && nvis >= 2*attnMinSplit {
		splits := min((4*workers+tasks-1)/tasks, nvis/attnMinSplit)
		t.splitLen = roundUp((nvis+splits-1)/splits, attnBlock)
		t.splits = (nvis + t.splitLen - 1) / t.splitLen
	}
	if len(t.ws) < workers {
		t.ws = make([]attnScratch, workers)
	}
	for i := range t.ws {
		t.ws[i].size(t.mPad+3, t.hd) // blockSmall pads to a multiple of 4 rows
	}
	if t.splits > 1 {
		need := t.rowBlocks * a.KVHeads * t.splits * t.mPad * (t.hd + 2)
		if cap(t.part) < need {
			t.part = make([]float32, need)
		}
		t.part = t.part[:need]
	}
}

// visible returns how many tokens a query at position last sees: last+1, or the selected ones <= last.
func visible(a *compute.Attention, last int) int {
	if a.Sel != nil {
		return countVisible(a.Sel, last)
	}
	return last + 1
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

// run computes task i = (rowBlock*KVHeads + kvh)*splits + split.
func (t *attnTask) run(w *attnScratch, i int) {
	a, hd, group := t.a, t.hd, t.group
	sp, kvh, rb := i%t.splits, i/t.splits%a.KVHeads, i/t.splits/a.KVHeads
	r0 := rb * t.rowBlock
	r1 := min(r0+t.rowBlock, a.Rows)
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
	for rr := r0; rr < r1; rr++ {
		row := a.Q.Row(a.Row0 + rr)[kvh*group*hd : (kvh+1)*group*hd]
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
	j0 := sp * t.splitLen
	j1 := min(j0+t.splitLen, visible(a, a.Pos0+r1-1))
	for jb := j0; jb < j1; jb += attnBlock {
		nb := min(attnBlock, j1-jb)
		t.gather(w, kvh, jb, nb)
		if small {
			t.blockSmall(w, r0, m, rows, jb, nb)
		} else {
			t.block(w, r0, m, mPad, jb, nb, outer)
		}
	}

	if t.splits == 1 {
		t.finish(r0, m, kvh, o, l)
		return
	}
	p := t.part[i*t.mPad*(hd+2):] // t.mPad >= m
	copy(p, o[:m*hd])
	copy(p[t.mPad*hd:], mr[:m])
	for r, v := range l[:m] {
		p[t.mPad*(hd+1)+r] = float32(v)
	}
}

// token returns the token index of visible index j.
func (t *attnTask) token(j int) int {
	if t.a.Sel != nil {
		return int(t.a.Sel[j])
	}
	return j
}

// gather converts the keys and values of visible indices [jb, jb+nb) of KV head kvh into w.k and w.v and
// zeroes the rows up to the next multiple of 12.
func (t *attnTask) gather(w *attnScratch, kvh, jb, nb int) {
	a, hd := t.a, t.hd
	kvDim := a.KVHeads * hd
	for j := jb; j < jb+nb; {
		tok := t.token(j)
		pg, slot := tok/a.Page, tok%a.Page
		// Rows that are consecutive in this page; with a selection, a run of consecutive selected rows
		// (a sparse layer's staging slots mostly are).
		n := min(jb+nb-j, a.Page-slot)
		if a.Sel != nil {
			r := 1
			for r < n && int(a.Sel[j+r]) == tok+r {
				r++
			}
			n = r
		}
		p, off, dst := a.Pages[pg], slot*kvDim+kvh*hd, (j-jb)*hd
		if p.K32 != nil {
			for r := 0; r < n; r++ {
				copy(w.k[dst+r*hd:dst+(r+1)*hd], p.K32[off+r*kvDim:])
				copy(w.v[dst+r*hd:dst+(r+1)*hd], p.V32[off+r*kvDim:])
			}
		} else {
			cvtF16Rows(w.k[dst:], p.K16[off:], hd, n, kvDim)
			cvtF16Rows(w.v[dst:], p.V16[off:], hd, n, kvDim)
		}
		j += n
	}
	nbPad := roundUp(nb, 12)
	clear(w.k[nb*hd : nbPad*hd])
	clear(w.v[nb*hd : nbPad*hd])
}

// block adds the visible indices [jb, jb+nb) (keys and values in w.k, w.v) to the task's m query-head rows
// (padded to mPad) whose first query row is r0.
func (t *attnTask) block(w *attnScratch, r0, m, mPad, jb, nb int, outer bool) {
	a, hd, group := t.a, t.hd, t.group
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
	first := a.Pos0 + r0 // the newest position every row of the task sees
	for j := 0; j < nbPad; j++ {
		row := s[j*mPad : (j+1)*mPad]
		iv := 0 // rows before iv do not see this token
		if j >= nb {
			iv = mPad
		} else if tok := t.token(jb + j); tok > first {
			iv = min(m, (tok-first)*group)
		}
		for i := 0; i < iv; i++ {
			row[i] = ninf
		}
		attnScaleMax(row[iv:], mx[iv:], a.Scale)
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
func (t *attnTask) finish(r0, m, kvh int, o []float32, l []float64) {
	a, hd, group := t.a, t.hd, t.group
	for i := 0; i < m; i++ {
		h := kvh*group + i%group
		dst := a.Out.Row(a.Row0 + r0 + i/group)[h*hd : (h+1)*hd]
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

// merge combines the splits of (row block, KV head) index i into Out.
func (t *attnTask) merge(i int) {
	a, hd, group := t.a, t.hd, t.group
	kvh, rb := i%a.KVHeads, i/a.KVHeads
	r0 := rb * t.rowBlock
	m := (min(r0+t.rowBlock, a.Rows) - r0) * group
	stride := t.mPad * (hd + 2)
	base := t.part[i*t.splits*stride : (i+1)*t.splits*stride]
	for r := 0; r < m; r++ {
		h := kvh*group + r%group
		dst := a.Out.Row(a.Row0 + r0 + r/group)[h*hd : (h+1)*hd]
		clear(dst)
		mm := math.Inf(-1)
		for sp := 0; sp < t.splits; sp++ {
			mm = math.Max(mm, float64(base[sp*stride+t.mPad*hd+r]))
		}
		if math.IsInf(mm, -1) {
			continue
		}
		var sum float64
		for sp := 0; sp < t.splits; sp++ {
			p := base[sp*stride:]
			sum += math.Exp(float64(p[t.mPad*hd+r])-mm) * float64(p[t.mPad*(hd+1)+r])
		}
		for sp := 0; sp < t.splits; sp++ {
			p := base[sp*stride:]
			if wgt := math.Exp(float64(p[t.mPad*hd+r])-mm) / sum; wgt != 0 {
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

// headMaxPass fills a.HeadMax for shapes whose attention kernel does not (large GQA groups): the plain loop.
func headMaxPass(a *compute.Attention) {
	hd, group, kvDim := a.HeadDim, a.Heads/a.KVHeads, a.KVHeads*a.HeadDim
	q := a.Q.Row(a.Row0)
	for tok := 0; tok < a.Len; tok++ {
		p, off := a.Pages[tok/a.Page], (tok%a.Page)*kvDim
		for kvh := 0; kvh < a.KVHeads; kvh++ {
			best := float32(math.Inf(-1))
			for g := 0; g < group; g++ {
				h := kvh*group + g
				var v float32
				if p.K32 != nil {
					v = dotF32(q[h*hd:(h+1)*hd], p.K32[off+kvh*hd:off+(kvh+1)*hd])
				} else {
					v = dotF16(p.K16[off+kvh*hd:off+(kvh+1)*hd], q[h*hd:(h+1)*hd])
				}
				best = max(best, v*a.Scale)
			}
			a.HeadMax[kvh*a.Len+tok] = best
		}
	}
}
