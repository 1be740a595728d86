package llama

import (
	"fmt"
	"math"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
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

// okvSeq is a sequence's OmniKV state: the turn's geometry on the host, the selections on the device.
type okvSeq struct {
	n      int                 // candidates: tokens cached when this turn's generation began
	step   int                 // decode steps in this turn so far (generated tokens fed)
	kCap   int                 // selection slots per sparse layer
	genCap int                 // generated-token slots per sparse layer
	ready  bool                // staging sized for this turn
	dense  bool                // this turn decodes densely: its context fits the budget (DenseUntilBudget)
	states []*compute.SelState // (layers) filter layers: the device's selection state, nil elsewhere
	stats  SelectionStats      // host-side counters (the traffic is read from the device on demand)
}

// okvState returns the sequence's OmniKV state, creating its device states on first use.
func (m *Model) okvState(seq *Sequence) (*okvSeq, error) {
	if seq.okv != nil {
		return seq.okv, nil
	}
	w := 1
	if m.okv.Selector.Windowed() {
		w = m.okv.Window
	}
	a := &okvSeq{states: make([]*compute.SelState, m.Layers)}
	for l, k := range m.plan.Kinds {
		if k != omnikv.Filter {
			continue
		}
		s, err := m.dev.NewSelState(compute.SelSpec{Window: w, QDim: m.Heads * m.HeadDim, KVHeads: m.KVHeads})
		if err != nil {
			m.freeOKV(a)
			return nil, fmt.Errorf("omnikv state: %w", err)
		}
		a.states[l] = s
	}
	seq.okv, seq.model = a, m
	return a, nil
}

func (m *Model) freeOKV(a *okvSeq) {
	for _, s := range a.states {
		if s != nil {
			m.dev.Free(s)
		}
	}
}

// okvBeginTurn resets the selection state after prompt tokens were added: the next decode step starts a
// turn whose candidates are every cached token.
func (m *Model) okvBeginTurn(seq *Sequence) {
	if a := seq.okv; a != nil {
		a.n, a.step, a.ready, a.dense = seq.Len(), 0, false, false
	}
}

// StagingTokens is how many tokens of staging (per offloaded layer) a turn needs that starts with context
// cached tokens and feeds at most genLimit generated tokens: 0 without OmniKV, or when the turn will decode
// densely (DenseUntilBudget and a context within the budget). The engine reserves it at admission.
func (m *Model) StagingTokens(context, genLimit int) int {
	if m.plan == nil {
		return 0
	}
	k := m.okv.Budget.For(context)
	if m.okv.DenseUntilBudget && k >= context {
		return 0
	}
	return k + max(genLimit, 1)
}

// okvPrepare sizes the staging of a turn on its first decode step: kCap selection slots and room for the
// turn's generated tokens (genLimit, or up to the sequence's capacity), and starts the device states' turn.
func (m *Model) okvPrepare(seq *Sequence, a *okvSeq, genLimit int) error {
	if a.ready {
		return nil
	}
	a.kCap = m.okv.Budget.For(a.n)
	if a.dense = m.okv.DenseUntilBudget && a.kCap >= a.n; a.dense {
		a.ready = true
		return nil
	}
	a.genCap = seq.Max() - a.n
	if genLimit > 0 {
		a.genCap = min(a.genCap, genLimit)
	}
	a.genCap = max(a.genCap, 1)
	if err := seq.ReserveStaging(a.kCap + a.genCap); err != nil {
		return fmt.Errorf("omnikv staging: %w", err)
	}
	for _, s := range a.states {
		if s != nil {
			m.dev.BeginTurn(s, a.n, a.kCap, a.n+a.genCap)
		}
	}
	a.ready = true
	return nil
}

// okvSelect runs at a filter layer after its attention: it records the window queries and, for the decoding
// sequences, scores the candidates, selects, and starts the gathers of the newly selected rows of every
// sparse layer that uses this selection.
func (m *Model) okvSelect(st *State, layer int, store *compute.KVStore, idx int) {
	c, d := &m.okv, m.dev
	if c.Selector.Scores() && c.Selector != omnikv.Last {
		st.observe = compute.Observe{Q: st.q, Batch: st.full, States: st.obsStates[layer]}
		d.Observe(&st.observe)
	}
	if st.okvDecode == 0 {
		return
	}
	mode := compute.SelHeadMax
	switch {
	case c.Selector == omnikv.SinkRecent:
		mode = compute.SelSinkRecent
	case c.Selector != omnikv.Last:
		mode = compute.SelScores
		st.scores = compute.SelectScores{Store: store, Layer: idx, Batch: st.full, States: st.selStates[layer],
			Alpha: st.alphaW, Softmax: c.Selector.Softmax(), Heads: m.Heads, KVHeads: m.KVHeads, HeadDim: m.HeadDim,
			Scale: float32(1 / math.Sqrt(float64(m.HeadDim)))}
		d.SelectScores(&st.scores)
	}
	st.choose = compute.Select{Mode: mode, States: st.selStates[layer], Forced: st.forced, Step: st.stepNo}
	d.Select(&st.choose)
	pool := st.pool
	for l := layer + 1; l < m.Layers && m.plan.Kinds[l] != omnikv.Filter; l++ {
		if m.plan.Source[l] != layer || m.plan.Kinds[l] != omnikv.Sparse {
			continue
		}
		src, si := pool.Layer(l)
		stage, di := pool.Staging(l)
		st.gather = compute.Gather{Src: src, SrcLayer: si, SrcBatch: st.full, Dst: stage, DstLayer: di,
			DstBatch: st.stagePart, States: st.selStates[layer]}
		st.fences[l] = d.Gather(&st.gather)
	}
}
