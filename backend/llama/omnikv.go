package llama

import (
	"fmt"
	"math"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
)

// SetOmniKV configures dynamic context selection (OmniKV). Call it before creating any KV pool: the
// pool's offload plan comes from OffloadLayers.
func (m *Model) SetOmniKV(c omnikv.Config) error {
	p, err := omnikv.NewPlan(&c, m.Layers)
	if err != nil {
		return err
	}
	m.okv, m.plan = c, p
	if !c.Enabled {
		m.plan = nil
	}
	return nil
}

// OmniKV returns the OmniKV configuration (Enabled false: dense).
func (m *Model) OmniKV() omnikv.Config { return m.okv }

// OffloadLayers returns which layers keep their KV in the offload tier (the sparse layers), or nil.
func (m *Model) OffloadLayers() []bool {
	if m.plan == nil {
		return nil
	}
	off := make([]bool, m.Layers)
	for l, k := range m.plan.Kinds {
		off[l] = k == omnikv.Sparse
	}
	return off
}

// SelectionStats counts the offload traffic of one sequence.
type SelectionStats struct {
	Steps        int   // decode steps with selection
	RowsFetched  int64 // token rows (K and V of one layer) copied from the offload tier to staging
	BytesFetched int64
	LastRows     int // rows fetched by the last step
	Selected     int // tokens selected per filter layer in the last step
	Candidates   int // context tokens that could be selected
}

// Selection returns a sequence's OmniKV traffic counters (zero when it never decoded with OmniKV).
func Selection(seq *kvcache.Sequence) SelectionStats {
	if a, ok := seq.Aux.(*okvSeq); ok {
		return a.stats
	}
	return SelectionStats{}
}

// Selected returns the indices the filter layer selected at the sequence's last decode step (nil if none).
func Selected(seq *kvcache.Sequence, filterLayer int) []int32 {
	if a, ok := seq.Aux.(*okvSeq); ok && filterLayer < len(a.sel) {
		return a.sel[filterLayer]
	}
	return nil
}

// okvSeq is a sequence's OmniKV state, kept in kvcache.Sequence.Aux.
type okvSeq struct {
	n       int                 // candidates: tokens cached when this turn's generation began
	step    int                 // decode steps in this turn so far (generated tokens fed)
	kCap    int                 // selection slots per sparse layer
	genCap  int                 // generated-token slots per sparse layer
	ready   bool                // staging sized for this turn
	sel     [][]int32           // (layer) the filter layer's current selection, ascending
	slots   []omnikv.Slots      // (layer) staging slots of each filter layer's group
	attnSel [][]int32           // (layer) per filter layer: used slots ++ generated slots, ascending
	staging [][]*compute.KVPage // (layer) sparse layers' staging pages: (kCap + genCap) tokens
	window  []*compute.Tensor   // (layer) filter layers' recent queries: (w, heads*headDim), oldest first
	winLen  []int               // (layer) rows of window filled
	scores  []float32           // (n) scratch
	headMax []float32           // (kvHeads, tokens) scratch: the filter layer's fused "last" scores
	tmp     []int32             // (n) scratch
	stats   SelectionStats
}

func (m *Model) okvState(seq *kvcache.Sequence) *okvSeq {
	if a, ok := seq.Aux.(*okvSeq); ok {
		return a
	}
	L := m.Layers
	a := &okvSeq{
		sel: make([][]int32, L), slots: make([]omnikv.Slots, L), attnSel: make([][]int32, L),
		staging: make([][]*compute.KVPage, L), window: make([]*compute.Tensor, L), winLen: make([]int, L),
	}
	w := 1
	if m.okv.Selector.Windowed() {
		w = m.okv.Window
	}
	for l, k := range m.plan.Kinds {
		if k == omnikv.Filter {
			a.window[l] = m.dev.NewTensor(w, m.Heads*m.HeadDim)
		}
	}
	seq.Aux = a
	return a
}

// okvRecordQueries keeps the newest queries of a filter layer (the observation window): rows
// [row0, row0+n) of q, for any step (prefill or decode).
func (m *Model) okvRecordQueries(a *okvSeq, layer int, q *compute.Tensor, row0, n int) {
	win := a.window[layer]
	w := win.Rows
	for r := max(0, n-w); r < n; r++ {
		if a.winLen[layer] == w { // full: drop the oldest
			for i := 1; i < w; i++ {
				m.dev.CopyRow(win, i-1, win, i)
			}
			a.winLen[layer]--
		}
		m.dev.CopyRow(win, a.winLen[layer], q, row0+r)
		a.winLen[layer]++
	}
}

// okvBeginTurn resets the selection state after prompt tokens were added: the next decode step starts a
// turn whose candidates are every cached token.
func (m *Model) okvBeginTurn(seq *kvcache.Sequence) {
	a := m.okvState(seq)
	a.n, a.step, a.ready = seq.Len(), 0, false
}

// okvPrepare sizes the staging of a turn on its first decode step.
func (m *Model) okvPrepare(seq *kvcache.Sequence, a *okvSeq) error {
	if a.ready {
		return nil
	}
	a.kCap = m.okv.Budget.For(a.n)
	a.genCap = seq.Max() - a.n
	need := a.kCap + a.genCap
	for l, k := range m.plan.Kinds {
		switch k {
		case omnikv.Filter:
			a.slots[l].Reset(a.kCap)
			a.sel[l] = make([]int32, 0, a.kCap)
			a.attnSel[l] = make([]int32, 0, need)
		case omnikv.Sparse:
			if have := len(a.staging[l]) * seq.PageSize(); have < need {
				pages, err := seq.NewStaging(need)
				if err != nil {
					return fmt.Errorf("omnikv staging: %w", err)
				}
				a.staging[l] = pages
			}
		}
	}
	if cap(a.scores) < a.n {
		a.scores, a.tmp = make([]float32, a.n), make([]int32, a.n)
	}
	if m.okv.Selector == omnikv.Last && len(a.headMax) < m.KVHeads*seq.Max() {
		a.headMax = make([]float32, m.KVHeads*seq.Max())
	}
	a.ready = true
	return nil
}

// okvSelect runs at a filter layer during a decode step: score the candidates, select, and stage the newly
// selected rows of every sparse layer that uses this selection.
func (m *Model) okvSelect(st *State, seq *kvcache.Sequence, a *okvSeq, layer int) {
	c := &m.okv
	if c.Selector == omnikv.Last {
		// The filter layer's attention left max over each KV head's query heads of the scaled logits in
		// headMax (Attention.HeadMax): the score is their max over KV heads.
		scores, hm, L := a.scores[:a.n], a.headMax, st.attn.Len
		copy(scores, hm[:a.n])
		for kvh := 1; kvh < m.KVHeads; kvh++ {
			for j, v := range hm[kvh*L : kvh*L+a.n] {
				scores[j] = max(scores[j], v)
			}
		}
		a.sel[layer] = omnikv.Select(scores, a.kCap, 0, a.sel[layer], a.tmp)
	} else if c.Selector.Scores() {
		win, rows := a.window[layer], a.winLen[layer]
		alpha := st.alphaW[len(st.alphaW)-rows:] // the newest queries' weights (fewer rows early in a sequence)
		scores := a.scores[:a.n]
		st.scoring = compute.SelectScores{
			Q: win, Rows: rows, Alpha: alpha, Softmax: c.Selector.Softmax(),
			Heads: m.Heads, KVHeads: m.KVHeads, HeadDim: m.HeadDim, Scale: float32(1 / math.Sqrt(float64(m.HeadDim))),
			Pages: seq.Pages(layer), Page: seq.PageSize(), N: a.n, Out: scores,
		}
		m.dev.SelectScores(&st.scoring)
		st.scoring = compute.SelectScores{}
		forced := omnikv.Forced(c.Selector, c.Window, a.step, a.kCap)
		a.sel[layer] = omnikv.Select(scores, a.kCap, forced, a.sel[layer], a.tmp)
	} else {
		a.sel[layer] = omnikv.SinkRecentSelection(a.n, a.kCap, a.sel[layer])
	}
	fetchRows, fetchSlots, used := a.slots[layer].Update(a.sel[layer])
	// Slots of the generated tokens follow the selection slots.
	a.attnSel[layer] = append(a.attnSel[layer][:0], used...)
	for g := 0; g <= a.step; g++ {
		a.attnSel[layer] = append(a.attnSel[layer], int32(a.kCap+g))
	}
	elem := int64(2)
	if p := seq.Pages(layer); len(p) > 0 && p[0].K32 != nil {
		elem = 4
	}
	rowBytes := 2 * int64(m.KVDim()) * elem
	for l := layer + 1; l < m.Layers && m.plan.Kinds[l] != omnikv.Filter; l++ {
		if m.plan.Source[l] != layer {
			continue
		}
		m.dev.GatherKV(a.staging[l], seq.PageSize(), fetchSlots, seq.Pages(l), seq.PageSize(), fetchRows)
		a.stats.RowsFetched += int64(len(fetchRows))
		a.stats.BytesFetched += int64(len(fetchRows)) * rowBytes
		a.stats.LastRows += len(fetchRows)
	}
	a.stats.Selected, a.stats.Candidates = len(a.sel[layer]), a.n
}
