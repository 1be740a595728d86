package llama

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
)

// Step is one sequence's share of a forward call: tokens to append to its cache (one for a decode step, a
// chunk of the prompt for prefill).
type Step struct {
	Seq       *Sequence
	Tokens    []int32
	AllLogits bool // logits for every token of the step, not only the last
	// Decode marks a generated token being fed back (one token): with OmniKV on, its sparse layers attend to
	// the selected context. Prompt tokens (Decode false) always use full attention.
	Decode bool
	// GenLimit, on the first decode step of a turn, is the most tokens the turn will feed (it sizes the
	// OmniKV staging of the generated tokens); 0 means up to the sequence's capacity.
	GenLimit int
}

// State holds the activations and the step layout of forward calls of up to MaxTokens tokens. One State
// serves one caller at a time; reuse it across steps so that decoding allocates nothing.
type State struct {
	MaxTokens int
	x         *compute.Tensor    // (tokens, hidden) residual stream
	xn        *compute.Tensor    // (tokens, hidden) normalized
	q         *compute.Tensor    // (tokens, heads*headDim)
	k, v      *compute.Tensor    // (tokens, kvDim)
	att       *compute.Tensor    // (tokens, heads*headDim)
	gate, up  *compute.Tensor    // (tokens, ffn)
	qkv       [3]*compute.Tensor // q, k, v: the outputs of one MatMuls
	gateUp    [2]*compute.Tensor // gate, up
	sel       *compute.Tensor    // (maxLogits, hidden) rows whose logits are wanted
	Logits    *compute.Tensor    // (maxLogits, vocab)
	LastRows  int                // logit rows written by the last Forward call
	ropeQ     compute.RoPE
	ropeK     compute.RoPE
	attn      compute.Attention // the current layer's attention (kept here so that a step allocates nothing)
	observe   compute.Observe
	scores    compute.SelectScores
	choose    compute.Select
	gather    compute.Gather

	// The step's layout, host side (rebuilt by every Forward call).
	ids, pos   []int32 // (tokens)
	slots      []int32 // (tokens) each token's slot in its sequence's context pages
	stageSlots []int32 // (tokens) with OmniKV: a decode token's staging slot, -1 for the others
	logitRows  []int32 // (logit rows) rows of x whose logits are wanted
	desc       compute.BatchDesc
	full       *compute.Batch        // every sequence over its context pages
	ctxPart    *compute.Batch        // OmniKV sparse layers: the sequences that attend to their whole context
	stagePart  *compute.Batch        // OmniKV sparse layers: the decoding sequences, over their staging pages
	okv        []*okvSeq             // (steps) OmniKV state of each step's sequence, nil when dense
	okvDecode  int                   // steps decoding with OmniKV
	forced     []int32               // (steps) Select's forced candidates
	stepNo     []int32               // (steps) Select's decode step of the turn
	selStates  [][]*compute.SelState // (layers) filter layers: the decoding sequences' states, nil entries for the rest
	obsStates  [][]*compute.SelState // (layers) filter layers: every OmniKV sequence's state (the window)
	fences     []compute.Fence       // (layers) sparse layers: the gather they wait on
	pool       *kvcache.Pool         // the step's sequences' pool
	alphaW     []float32             // OmniKV window weights, oldest first
	alphaSel   omnikv.Selector       // the selector alphaW was made for
}

// NewState allocates activations for up to maxTokens tokens per forward call, of which at most maxLogits
// ask for logits (the logits buffer is the largest: maxLogits x vocab floats).
func (m *Model) NewState(maxTokens, maxLogits int) (*State, error) {
	maxLogits = max(1, min(maxLogits, maxTokens))
	c, d := &m.Config, m.dev
	qDim := c.Heads * c.HeadDim
	st := &State{MaxTokens: maxTokens, ropeQ: *m.rope, ropeK: *m.rope}
	var err error
	for _, t := range []struct {
		dst        **compute.Tensor
		rows, cols int
	}{
		{&st.x, maxTokens, c.Hidden}, {&st.xn, maxTokens, c.Hidden}, {&st.q, maxTokens, qDim},
		{&st.k, maxTokens, c.KVDim()}, {&st.v, maxTokens, c.KVDim()}, {&st.att, maxTokens, qDim},
		{&st.gate, maxTokens, c.FFN}, {&st.up, maxTokens, c.FFN}, {&st.sel, maxLogits, c.Hidden},
		{&st.Logits, maxLogits, c.Vocab},
	} {
		if *t.dst, err = d.NewTensor(compute.F32, t.rows, t.cols); err != nil {
			st.Free(m)
			return nil, fmt.Errorf("forward state for %d tokens: %w", maxTokens, err)
		}
	}
	st.full, st.ctxPart, st.stagePart = d.NewBatch(), d.NewBatch(), d.NewBatch()
	st.ropeK.Heads = c.KVHeads
	st.qkv, st.gateUp = [3]*compute.Tensor{st.q, st.k, st.v}, [2]*compute.Tensor{st.gate, st.up}
	st.ids, st.pos, st.slots, st.stageSlots = make([]int32, maxTokens), make([]int32, maxTokens), make([]int32, maxTokens), make([]int32, maxTokens)
	st.selStates, st.obsStates = make([][]*compute.SelState, c.Layers), make([][]*compute.SelState, c.Layers)
	st.fences = make([]compute.Fence, c.Layers)
	return st, nil
}

// MustState is NewState for tests and tools: it panics on a device error.
func (m *Model) MustState(maxTokens, maxLogits int) *State {
	st, err := m.NewState(maxTokens, maxLogits)
	if err != nil {
		panic(err)
	}
	return st
}

// Free releases the state's device memory.
func (st *State) Free(m *Model) {
	for _, t := range []*compute.Tensor{st.x, st.xn, st.q, st.k, st.v, st.att, st.gate, st.up, st.sel, st.Logits} {
		if t != nil {
			m.dev.Free(t)
		}
	}
	for _, b := range []*compute.Batch{st.full, st.ctxPart, st.stagePart} {
		if b != nil {
			m.dev.Free(b)
		}
	}
}

// ReadLogits copies the logit rows of the last Forward call to dst (LastRows x Vocab values) in one read and
// returns them.
func (m *Model) ReadLogits(st *State, dst []float32) []float32 {
	n := st.LastRows * m.Vocab
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	m.dev.Read(dst, st.Logits)
	return dst
}

// check validates the steps and fills the token ids and positions; it returns the token and logit row counts.
func (m *Model) check(st *State, steps []Step) (n, wantRows int, err error) {
	if len(steps) == 0 {
		return 0, 0, fmt.Errorf("forward: no steps")
	}
	for i := range steps {
		s := &steps[i]
		if len(s.Tokens) == 0 {
			return 0, 0, fmt.Errorf("forward: step %d has no tokens", i)
		}
		if s.Decode && len(s.Tokens) != 1 {
			return 0, 0, fmt.Errorf("forward: decode step %d has %d tokens, want 1", i, len(s.Tokens))
		}
		if n+len(s.Tokens) > st.MaxTokens {
			return 0, 0, fmt.Errorf("forward: %d tokens exceed the state's %d", n+len(s.Tokens), st.MaxTokens)
		}
		if s.Seq.Pool().Config().Layers != m.Layers || s.Seq.Pool().Config().KVDim != m.KVDim() {
			return 0, 0, fmt.Errorf("forward: step %d: the sequence's cache has %d layers of KV dim %d, the model %d of %d",
				i, s.Seq.Pool().Config().Layers, s.Seq.Pool().Config().KVDim, m.Layers, m.KVDim())
		}
		if s.Seq.Pool() != steps[0].Seq.Pool() {
			return 0, 0, fmt.Errorf("forward: step %d's sequence is of another KV pool than step 0's", i)
		}
		for j := 0; j < i; j++ {
			if steps[j].Seq == s.Seq {
				return 0, 0, fmt.Errorf("forward: steps %d and %d are for the same sequence", j, i)
			}
		}
		start := s.Seq.Len()
		if start+len(s.Tokens) > m.MaxContext {
			return 0, 0, fmt.Errorf("forward: %d tokens exceed the model's context of %d", start+len(s.Tokens), m.MaxContext)
		}
		for j, id := range s.Tokens {
			if id < 0 || int(id) >= m.Vocab {
				return 0, 0, fmt.Errorf("forward: token id %d outside the vocabulary [0, %d)", id, m.Vocab)
			}
			st.ids[n+j] = id
			st.pos[n+j] = int32(start + j)
		}
		if s.AllLogits {
			wantRows += len(s.Tokens)
		} else {
			wantRows++
		}
		n += len(s.Tokens)
	}
	if wantRows > st.Logits.Rows {
		return 0, 0, fmt.Errorf("forward: %d logit rows wanted, the state holds %d", wantRows, st.Logits.Rows)
	}
	return n, wantRows, nil
}

// Forward appends each step's tokens to its sequence's cache and computes logits: for each step in order, one
// row per token when AllLogits is set, else one row for its last token. It returns the number of logit rows
// written to st.Logits (read them with ReadLogits). Token ids must be valid (< Vocab) and each sequence must
// have room: both are checked. Every op covers the whole step; a device failure fails the step.
func (m *Model) Forward(st *State, steps []Step) (int, error) {
	c, d := &m.Config, m.dev
	n, _, err := m.check(st, steps)
	if err != nil {
		return 0, err
	}
	for i := range steps {
		if err := steps[i].Seq.Reserve(len(steps[i].Tokens)); err != nil {
			return 0, fmt.Errorf("forward: %w", err)
		}
	}
	if err := m.layout(st, steps); err != nil {
		return 0, err
	}
	pool := st.pool
	scale := float32(1 / math.Sqrt(float64(c.HeadDim)))

	d.Embed(st.x, m.embed, st.ids[:n])
	for li := range m.layers {
		l := &m.layers[li]
		// Attention block.
		d.RMSNorm(st.xn, st.x, l.attnNorm, c.RMSEps, n)
		d.MatMuls(st.qkv[:], st.xn, l.qkv[:], n)
		if l.qb != nil {
			d.AddBias(st.q, l.qb, n)
			d.AddBias(st.k, l.kb, n)
			d.AddBias(st.v, l.vb, n)
		}
		d.ApplyRoPE(st.q, &st.ropeQ, st.pos, n)
		d.ApplyRoPE(st.k, &st.ropeK, st.pos, n)
		store, idx := pool.Layer(li)
		d.WriteKV(store, idx, st.k, st.v, st.slots[:n])
		st.attn = compute.Attention{Q: st.q, Out: st.att, Store: store, Layer: idx, Batch: st.full,
			Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim, Scale: scale}
		attn := &st.attn
		kind := omnikv.Dense
		if m.plan != nil {
			kind = m.plan.Kinds[li]
		}
		switch {
		case kind == omnikv.Sparse && st.okvDecode > 0:
			// The decoding sequences attend to their selected rows and this turn's tokens, in staging; the
			// others (prompt chunks, dense sequences) to their whole context.
			stage, sidx := pool.Staging(li)
			d.WriteKV(stage, sidx, st.k, st.v, st.stageSlots[:n])
			if st.okvDecode < len(steps) {
				attn.Batch = st.ctxPart
				d.Attend(attn)
			}
			d.Wait(st.fences[li])
			attn.Store, attn.Layer, attn.Batch, attn.Sel = stage, sidx, st.stagePart, st.selStates[m.plan.Source[li]]
			d.Attend(attn)
		case kind == omnikv.Filter:
			if m.okv.Selector == omnikv.Last && st.okvDecode > 0 {
				attn.HeadMax = st.selStates[li]
			}
			d.Attend(attn)
			m.okvSelect(st, li, store, idx)
		default:
			d.Attend(attn)
		}
		d.MatMul(st.xn, st.att, l.o, n)
		d.Add(st.x, st.xn, n)
		// Feed-forward block.
		d.RMSNorm(st.xn, st.x, l.ffnNorm, c.RMSEps, n)
		d.MatMuls(st.gateUp[:], st.xn, l.gateUp[:], n)
		d.SwiGLU(st.gate, st.up, n)
		d.MatMul(st.xn, st.gate, l.down, n)
		d.Add(st.x, st.xn, n)
	}

	// Logits for the wanted rows only.
	rows := len(st.logitRows)
	d.CopyRows(st.sel, st.x, st.logitRows)
	d.RMSNorm(st.xn, st.sel, m.norm, c.RMSEps, rows)
	d.MatMul(st.Logits, st.xn, m.output, rows)
	if err := d.Err(); err != nil {
		return 0, fmt.Errorf("forward: device %s: %w", d.Name(), err)
	}
	for i := range steps {
		s := &steps[i]
		s.Seq.Commit(len(s.Tokens))
		if a := st.okv[i]; a != nil {
			if s.Decode {
				a.step++
				if !a.dense {
					a.stats.Steps++
				}
			} else {
				m.okvBeginTurn(s.Seq)
			}
		}
	}
	st.LastRows = rows
	return rows, nil
}

// layout builds the step's host-side layout (slots, batches, logit rows, OmniKV states) and sends the
// batches to the device: once per step, shared by every layer.
func (m *Model) layout(st *State, steps []Step) error {
	d := m.dev
	st.pool = steps[0].Seq.Pool()
	st.logitRows, st.okv, st.okvDecode = st.logitRows[:0], st.okv[:0], 0
	st.forced, st.stepNo = st.forced[:0], st.stepNo[:0]
	if m.plan != nil {
		w := 1
		if m.okv.Selector.Windowed() {
			w = m.okv.Window
		}
		if len(st.alphaW) != w || st.alphaSel != m.okv.Selector { // the state predates SetOmniKV, or it changed
			st.alphaW, st.alphaSel = omnikv.WindowWeights(m.okv.Selector, w), m.okv.Selector
		}
	}
	for i := range steps {
		var a *okvSeq
		s := &steps[i]
		if m.plan != nil {
			var err error
			if a, err = m.okvState(s.Seq); err != nil {
				return fmt.Errorf("forward: %w", err)
			}
			if s.Decode {
				if a.n == 0 {
					a.n = s.Seq.Len() // generation without a prompt step seen: every cached token is context
				}
				if err := m.okvPrepare(s.Seq, a, s.GenLimit); err != nil {
					return fmt.Errorf("forward: %w", err)
				}
				if !a.dense {
					st.okvDecode++
				}
			}
		}
		st.okv = append(st.okv, a)
	}

	// Context slots, logit rows and the batch of every sequence.
	desc := &st.desc
	resetDesc(desc)
	row := 0
	for i := range steps {
		s := &steps[i]
		seq, cnt, start := s.Seq, len(s.Tokens), s.Seq.Len()
		for j := 0; j < cnt; j++ {
			st.slots[row+j] = seq.Slot(start + j)
			st.stageSlots[row+j] = -1
		}
		if s.AllLogits {
			for j := 0; j < cnt; j++ {
				st.logitRows = append(st.logitRows, int32(row+j))
			}
		} else {
			st.logitRows = append(st.logitRows, int32(row+cnt-1))
		}
		addSeq(desc, row, cnt, start, start+cnt, seq.Blocks())
		row += cnt
	}
	d.SetBatch(st.full, desc)
	if m.plan == nil {
		return nil
	}
	// OmniKV: the filter layers' states (every OmniKV sequence's window; the decoding ones' selections).
	for li, k := range m.plan.Kinds {
		if k != omnikv.Filter {
			continue
		}
		st.selStates[li], st.obsStates[li] = st.selStates[li][:0], st.obsStates[li][:0]
		for i := range steps {
			var sel, obs *compute.SelState
			if a := st.okv[i]; a != nil {
				obs = a.states[li]
				if st.selecting(steps, i) {
					sel = obs
				}
			}
			st.selStates[li] = append(st.selStates[li], sel)
			st.obsStates[li] = append(st.obsStates[li], obs)
		}
	}
	if st.okvDecode == 0 {
		return nil
	}
	// The sparse layers' two halves: the sequences that attend to their whole context, and the decoding
	// ones over their staging.
	for i := range desc.QRows {
		if st.selecting(steps, i) {
			desc.QRows[i] = 0
		}
	}
	d.SetBatch(st.ctxPart, desc)
	resetDesc(desc)
	row = 0
	for i := range steps {
		s, a := &steps[i], st.okv[i]
		cnt := len(s.Tokens)
		if st.selecting(steps, i) {
			if a.step >= a.genCap {
				return fmt.Errorf("forward: step %d: decode step %d of a turn sized for %d generated tokens (Step.GenLimit)", i, a.step+1, a.genCap)
			}
			st.stageSlots[row] = s.Seq.StagingSlot(a.kCap + a.step)
			addSeq(desc, row, 1, a.kCap+a.genCap, a.kCap+a.genCap, s.Seq.StagingBlocks())
			st.forced = append(st.forced, int32(omnikv.Forced(m.okv.Selector, m.okv.Window, a.step, a.kCap)))
			st.stepNo = append(st.stepNo, int32(a.step))
		} else {
			addSeq(desc, row, 0, 0, 0, nil)
			st.forced, st.stepNo = append(st.forced, 0), append(st.stepNo, 0)
		}
		row += cnt
	}
	d.SetBatch(st.stagePart, desc)
	return nil
}

// selecting reports whether step i decodes with OmniKV's selection (its sparse layers read staging).
func (st *State) selecting(steps []Step, i int) bool {
	a := st.okv[i]
	return a != nil && steps[i].Decode && !a.dense
}

func resetDesc(d *compute.BatchDesc) {
	d.QStart, d.QRows, d.Pos0, d.Len = d.QStart[:0], d.QRows[:0], d.Pos0[:0], d.Len[:0]
	d.Blocks, d.BlockOff = d.Blocks[:0], append(d.BlockOff[:0], 0)
}

// addSeq appends a sequence to a batch description.
func addSeq(d *compute.BatchDesc, q0, rows, pos0, length int, blocks []int32) {
	d.QStart = append(d.QStart, int32(q0))
	d.QRows = append(d.QRows, int32(rows))
	d.Pos0 = append(d.Pos0, int32(pos0))
	d.Len = append(d.Len, int32(length))
	d.Blocks = append(d.Blocks, blocks...)
	d.BlockOff = append(d.BlockOff, int32(len(d.Blocks)))
}

// f32Bytes views float32 values as bytes.
func f32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*4)
}
