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
	Seq       *kvcache.Sequence
	Tokens    []int32
	AllLogits bool // logits for every token of the step, not only the last
	// Decode marks a generated token being fed back (one token): with OmniKV on, its sparse layers attend to
	// the selected context. Prompt tokens (Decode false) always use full attention.
	Decode bool
}

// State holds the activations of forward calls of up to MaxTokens tokens. One State serves one caller at a
// time; reuse it across steps so that decoding allocates nothing.
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
	sel       *compute.Tensor    // (tokens, hidden) rows whose logits are wanted
	Logits    *compute.Tensor    // (tokens, vocab)
	LastRows  int                // logit rows written by the last Forward call
	ids, pos  []int32            // (tokens)
	attn      compute.Attention
	ropeQ     compute.RoPE
	ropeK     compute.RoPE
	scoring   compute.SelectScores
	alphaW    []float32       // OmniKV window weights, oldest first
	alphaSel  omnikv.Selector // the selector alphaW was made for
	okv       []*okvSeq       // (steps) OmniKV state of each step's sequence, nil when dense
}

// NewState allocates activations for up to maxTokens tokens per forward call, of which at most maxLogits
// ask for logits (the logits buffer is the largest: maxLogits x vocab floats).
func (m *Model) NewState(maxTokens, maxLogits int) *State {
	maxLogits = max(1, min(maxLogits, maxTokens))
	c, d := &m.Config, m.dev
	qDim := c.Heads * c.HeadDim
	st := &State{
		MaxTokens: maxTokens,
		x:         d.NewTensor(maxTokens, c.Hidden),
		xn:        d.NewTensor(maxTokens, c.Hidden),
		q:         d.NewTensor(maxTokens, qDim),
		k:         d.NewTensor(maxTokens, c.KVDim()),
		v:         d.NewTensor(maxTokens, c.KVDim()),
		att:       d.NewTensor(maxTokens, qDim),
		gate:      d.NewTensor(maxTokens, c.FFN),
		up:        d.NewTensor(maxTokens, c.FFN),
		sel:       d.NewTensor(maxTokens, c.Hidden),
		Logits:    d.NewTensor(maxLogits, c.Vocab),
		ids:       make([]int32, maxTokens),
		pos:       make([]int32, maxTokens),
		ropeQ:     *m.rope,
		ropeK:     *m.rope,
	}
	st.ropeK.Heads = c.KVHeads
	st.qkv, st.gateUp = [3]*compute.Tensor{st.q, st.k, st.v}, [2]*compute.Tensor{st.gate, st.up}
	return st
}

// Forward appends each step's tokens to its sequence's cache and computes logits: for each step in order, one
// row per token when AllLogits is set, else one row for its last token. It returns the number of logit rows
// written to st.Logits. Token ids must be valid (< Vocab) and each sequence must have room: both are checked.
func (m *Model) Forward(st *State, steps []Step) (int, error) {
	c, d := &m.Config, m.dev
	n, wantRows := 0, 0
	for i := range steps {
		s := &steps[i]
		if s.AllLogits {
			wantRows += len(s.Tokens)
		} else {
			wantRows++
		}
		if len(s.Tokens) == 0 {
			return 0, fmt.Errorf("forward: step %d has no tokens", i)
		}
		if s.Decode && len(s.Tokens) != 1 {
			return 0, fmt.Errorf("forward: decode step %d has %d tokens, want 1", i, len(s.Tokens))
		}
		if n+len(s.Tokens) > st.MaxTokens {
			return 0, fmt.Errorf("forward: %d tokens exceed the state's %d", n+len(s.Tokens), st.MaxTokens)
		}
		start := s.Seq.Len()
		if start+len(s.Tokens) > m.MaxContext {
			return 0, fmt.Errorf("forward: %d tokens exceed the model's context of %d", start+len(s.Tokens), m.MaxContext)
		}
		for j, id := range s.Tokens {
			if id < 0 || int(id) >= c.Vocab {
				return 0, fmt.Errorf("forward: token id %d outside the vocabulary [0, %d)", id, c.Vocab)
			}
			st.ids[n+j] = id
			st.pos[n+j] = int32(start + j)
		}
		n += len(s.Tokens)
	}
	if wantRows > st.Logits.Rows {
		return 0, fmt.Errorf("forward: %d logit rows wanted, the state holds %d", wantRows, st.Logits.Rows)
	}
	for i := range steps {
		if err := steps[i].Seq.Reserve(len(steps[i].Tokens)); err != nil {
			return 0, fmt.Errorf("forward: %w", err)
		}
	}
	st.okv = st.okv[:0]
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
		if m.plan != nil {
			a = m.okvState(steps[i].Seq)
			if steps[i].Decode {
				if a.n == 0 {
					a.n = steps[i].Seq.Len() // generation without a prompt step seen: every cached token is context
				}
				if err := m.okvPrepare(steps[i].Seq, a); err != nil {
					return 0, fmt.Errorf("forward: %w", err)
				}
				a.stats.LastRows = 0
			}
		}
		st.okv = append(st.okv, a)
	}

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
		row := 0
		for i := range steps {
			s := &steps[i]
			seq, cnt := s.Seq, len(s.Tokens)
			kind := omnikv.Dense
			if a := st.okv[i]; a != nil {
				kind = m.plan.Kinds[li]
				if kind == omnikv.Filter {
					m.okvRecordQueries(a, li, st.q, row, cnt)
				}
				if !s.Decode {
					kind = omnikv.Dense
				}
			}
			pages := seq.Pages(li)
			d.WriteKV(pages, seq.PageSize(), seq.Len(), st.k, st.v, row, cnt)
			st.attn = compute.Attention{
				Q: st.q, Out: st.att, Row0: row, Rows: cnt, Pos0: seq.Len(),
				Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim,
				Scale: float32(1 / math.Sqrt(float64(c.HeadDim))),
				Pages: pages, Page: seq.PageSize(), Len: seq.Len() + cnt,
			}
			if kind == omnikv.Sparse {
				// The selected context rows and this turn's generated tokens, all in staging.
				a := st.okv[i]
				staging := a.staging[li]
				d.WriteKV(staging, seq.PageSize(), a.kCap+a.step, st.k, st.v, row, 1)
				sel := a.attnSel[m.plan.Source[li]]
				st.attn.Pages, st.attn.Sel = staging, sel
				st.attn.Pos0, st.attn.Len = a.kCap+a.genCap, a.kCap+a.genCap
			}
			if kind == omnikv.Filter && m.okv.Selector == omnikv.Last {
				st.attn.HeadMax = st.okv[i].headMax[:c.KVHeads*st.attn.Len]
			}
			d.Attend(&st.attn)
			if kind == omnikv.Filter {
				m.okvSelect(st, seq, st.okv[i], li)
			}
			row += cnt
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
	for i := range steps {
		s := &steps[i]
		s.Seq.Commit(len(s.Tokens))
		if a := st.okv[i]; a != nil {
			if s.Decode {
				a.step++
				a.stats.Steps++
			} else {
				m.okvBeginTurn(s.Seq)
			}
		}
	}

	// Logits for the wanted rows only.
	rows, row := 0, 0
	for i := range steps {
		s := &steps[i]
		if s.AllLogits {
			for j := range s.Tokens {
				d.CopyRow(st.sel, rows, st.x, row+j)
				rows++
			}
		} else {
			d.CopyRow(st.sel, rows, st.x, row+len(s.Tokens)-1)
			rows++
		}
		row += len(s.Tokens)
	}
	d.RMSNorm(st.xn, st.sel, m.norm, c.RMSEps, rows)
	d.MatMul(st.Logits, st.xn, m.output, rows)
	st.LastRows = rows
	return rows, nil
}

// f32Bytes views float32 values as bytes.
func f32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*4)
}
