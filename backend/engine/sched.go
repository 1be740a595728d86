package engine

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/sample"
)

// loop is the scheduler: it owns every running sequence and the forward state.
func (e *Engine) loop() {
	defer close(e.done)
	m := e.model
	st := m.NewState(e.opt.StepTokens, e.opt.MaxSequences)
	logits := make([]float32, m.Vocab) // (vocab) host copy of one logits row
	running := make([]*Handle, 0, e.opt.MaxSequences)
	var waiting []*Handle // admitted from the queue, waiting for KV memory
	steps := make([]llama.Step, 0, e.opt.MaxSequences)
	owners := make([]*Handle, 0, e.opt.MaxSequences)

	defer func() {
		for _, h := range append(running, waiting...) {
			e.finish(h, sample.FinishCancelled, nil)
		}
		for {
			select {
			case h := <-e.submit:
				e.finish(h, sample.FinishCancelled, nil)
			default:
				return
			}
		}
	}()

	for {
		// Take new submissions: block when idle.
		if len(running) == 0 && len(waiting) == 0 {
			select {
			case h := <-e.submit:
				waiting = append(waiting, h)
			case <-e.quit:
				return
			}
		}
	drain:
		for len(waiting) < e.opt.MaxQueue {
			select {
			case h := <-e.submit:
				waiting = append(waiting, h)
			default:
				break drain
			}
		}
		select {
		case <-e.quit:
			return
		default:
		}
		// Admit waiting sequences while slots and KV pages last (first come, first served).
		for len(waiting) > 0 && len(running) < e.opt.MaxSequences {
			h := waiting[0]
			if h.ctx.Err() != nil {
				waiting = waiting[1:]
				e.finish(h, sample.FinishCancelled, nil)
				continue
			}
			need := len(h.req.Prompt) + h.req.Params.MaxTokens
			seq := h.req.Seq
			if seq == nil {
				seq = e.pool.NewSequence(need)
			}
			if err := seq.Reserve(need); err != nil {
				if errors.Is(err, kvcache.ErrNoMemory) && len(running) > 0 {
					break // wait for a running sequence to free its pages
				}
				waiting = waiting[1:]
				e.finish(h, sample.FinishCancelled, fmt.Errorf("engine: %w", err))
				continue
			}
			waiting = waiting[1:]
			h.seq, h.tStart = seq, time.Now()
			h.stats.Queued = h.tStart.Sub(h.t0)
			running = append(running, h)
		}
		if len(running) == 0 {
			continue
		}
		// Drop cancelled sequences.
		running = slices.DeleteFunc(running, func(h *Handle) bool {
			if h.ctx.Err() != nil {
				e.finish(h, sample.FinishCancelled, nil)
				return true
			}
			return false
		})
		// Build the step: every decoding sequence gives one token, prompts fill the rest of the budget.
		steps, owners = steps[:0], owners[:0]
		budget := e.opt.StepTokens
		for _, h := range running {
			if h.fed == len(h.req.Prompt) {
				steps = append(steps, llama.Step{Seq: h.seq, Tokens: h.history[len(h.history)-1:], Decode: true})
				owners = append(owners, h)
				budget--
			}
		}
		for _, h := range running {
			if rest := len(h.req.Prompt) - h.fed; rest > 0 && budget > 0 {
				n := min(rest, budget)
				steps = append(steps, llama.Step{Seq: h.seq, Tokens: h.req.Prompt[h.fed : h.fed+n]})
				owners = append(owners, h)
				budget -= n
			}
		}
		if len(steps) == 0 {
			continue
		}
		if _, err := m.Forward(st, steps); err != nil {
			for _, h := range owners {
				e.finish(h, sample.FinishCancelled, err)
			}
			running = slices.DeleteFunc(running, func(h *Handle) bool { return slices.Contains(owners, h) })
			continue
		}
		now := time.Now()
		for i, s := range steps {
			h := owners[i]
			if h.fed < len(h.req.Prompt) {
				h.fed += len(s.Tokens)
				if h.fed < len(h.req.Prompt) {
					continue
				}
			}
			m.Device().Read(logits, st.Logits, i)
			tok := h.sampler.Sample(logits, h.history[:len(h.req.Prompt)+h.gen])
			if h.gen == 0 {
				h.tFirst = now
			}
			h.gen++
			h.last = tok
			h.history = append(h.history[:len(h.req.Prompt)+h.gen-1], tok)
			h.events <- Event{Token: tok}
			switch {
			case !h.req.IgnoreEOS && slices.Contains(m.EOS, tok):
				e.finish(h, sample.FinishStop, nil)
			case h.gen >= h.req.Params.MaxTokens:
				e.finish(h, sample.FinishLength, nil)
			default:
				continue
			}
			h.seq = nil
		}
		running = slices.DeleteFunc(running, func(h *Handle) bool { return h.seq == nil })
	}
}

// finish releases a sequence's memory and sends its final event.
func (e *Engine) finish(h *Handle, reason sample.FinishReason, err error) {
	if h.seq != nil && h.req.Seq == nil {
		h.seq.Release()
	}
	h.stats.GeneratedTokens = h.gen
	if !h.tFirst.IsZero() {
		h.stats.Prefill = h.tFirst.Sub(h.tStart)
		h.stats.Decode = time.Since(h.tFirst)
	}
	h.events <- Event{Done: true, Reason: reason, Err: err, Stats: h.stats}
	close(h.events)
	h.cancel()
}
