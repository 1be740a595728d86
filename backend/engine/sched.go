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
	running := make([]*Handle, 0, e.opt.MaxSequences)
	var waiting []*Handle // taken from the queue, waiting for a slot or KV memory
	sc := &stepScratch{steps: make([]llama.Step, 0, e.opt.MaxSequences), owners: make([]*Handle, 0, e.opt.MaxSequences)}

	defer func() {
		for _, h := range append(append(running, waiting...), sc.spawned...) {
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

	var retry *time.Timer // while requests wait for memory with nothing running
	for {
		// Take new submissions: block when idle, or until memory may have been freed.
		if len(running) == 0 {
			var tick <-chan time.Time
			if len(waiting) > 0 {
				if retry == nil {
					retry = time.NewTimer(admissionRetry)
				} else {
					retry.Reset(admissionRetry)
				}
				tick = retry.C
			}
			select {
			case h := <-e.submit:
				waiting = append(waiting, h)
			case <-e.wake:
			case <-tick:
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
		running, waiting = e.schedule(running, waiting, sc)
	}
}

// schedule admits what fits and runs a step. A panic here outside a step (admission, a metrics sink) fails
// every sequence the scheduler holds, with an internal error, and the scheduler goes on.
func (e *Engine) schedule(running, waiting []*Handle, sc *stepScratch) (_, _ []*Handle) {
	defer func() {
		if r := recover(); r != nil {
			err := errorf(KindInternal, "engine: internal error in the scheduler: %v", r)
			for _, h := range append(append(running, waiting...), sc.spawned...) {
				e.finishSafe(h, err)
			}
			running, waiting, sc.spawned = running[:0], nil, nil
		}
	}()
	if len(sc.spawned) > 0 { // forks go first: their prompt is in the cache already
		waiting = append(sc.spawned, waiting...)
		sc.spawned = nil
	}
	running, waiting = e.admit(running, waiting)
	e.met.Set(RunningSequences, float64(len(running)))
	e.met.Set(QueuedSequences, float64(len(waiting)+len(e.submit)))
	if len(running) == 0 {
		e.trim()
		e.reportMemory()
		return running, waiting
	}
	n := len(running)
	running = e.step(running, sc)
	if len(running) < n || len(running) == 0 {
		e.trim()
	}
	e.met.Set(RunningSequences, float64(len(running)))
	e.reportMemory()
	return running, waiting
}

// finishSafe ends h with err after a panic: a second panic (in finish itself) is swallowed, so that the
// scheduler survives; h's memory may then stay held.
func (e *Engine) finishSafe(h *Handle, err error) {
	defer func() { _ = recover() }()
	e.finish(h, sample.FinishCancelled, err)
}

// admissionRetry is how often requests waiting for memory retry when nothing runs (sessions ending and
// idle-session reaping also wake the scheduler).
const admissionRetry = 20 * time.Millisecond

// admit moves waiting sequences into the running batch while slots and KV memory last, first come first
// served. A request that does not fit evicts idle sessions' KV, oldest first, then waits for running
// sequences to free memory, up to QueueTimeout; then it is refused with the budget named.
func (e *Engine) admit(running, waiting []*Handle) ([]*Handle, []*Handle) {
	m := e.model
	waiting = slices.DeleteFunc(waiting, func(h *Handle) bool { // cancelled while waiting, wherever in the queue
		if h.ctx.Err() != nil {
			e.finish(h, sample.FinishCancelled, nil)
			return true
		}
		return false
	})
	for len(waiting) > 0 && len(running) < e.opt.MaxSequences {
		h := waiting[0]
		if h.ctx.Err() != nil {
			waiting = waiting[1:]
			e.finish(h, sample.FinishCancelled, nil)
			continue
		}
		rest := len(h.req.Prompt) - h.fed // a fork has part of its prompt already
		need := rest + h.req.Params.MaxTokens
		seq := h.req.Seq
		switch {
		case h.forked != nil:
			seq = h.forked
		case seq == nil:
			seq = llama.NewSequence(e.pool, need)
		}
		// The turn's KV and, with OmniKV, its staging are reserved here, so that a step never fails for
		// want of pages. A request bigger than the whole budget is refused at once.
		staging := m.StagingTokens(seq.Len()+rest, h.req.Params.MaxTokens)
		err := e.pool.CanEverFit(seq.Len()+need, staging)
		if err == nil {
			err = seq.Reserve(need)
		}
		if err == nil && staging > 0 {
			err = seq.ReserveStaging(staging)
		}
		if err != nil {
			if h.req.Seq == nil && h.forked == nil {
				seq.Release() // do not hold pages while waiting (a fork keeps its shared prompt pages)
			}
			var be *kvcache.BudgetError
			never := errors.As(err, &be) && be.Never()
			if errors.Is(err, kvcache.ErrNoMemory) {
				if !never && e.evictIdle() {
					continue
				}
				if waited := time.Since(h.t0); !never && waited < e.opt.QueueTimeout {
					break // wait for running sequences or sessions to free memory
				}
				e.met.Add(Refusals, 1)
				if never {
					err = errorf(KindUnavailable, "engine: this request needs more KV memory than the whole budget: %w", err)
				} else {
					err = errorf(KindUnavailable, "engine: no KV memory for this request after waiting %v (queue_timeout_s): %w", e.opt.QueueTimeout, err)
				}
			} else {
				err = errorf(KindUnavailable, "engine: no KV memory for this request: %w", err) // the device's or the offload file's
			}
			waiting = waiting[1:]
			e.finish(h, sample.FinishCancelled, err)
			continue
		}
		waiting = waiting[1:]
		h.seq, h.tStart = seq, time.Now()
		h.stats.Queued = h.tStart.Sub(h.t0)
		running = append(running, h)
	}
	return running, waiting
}

// stepScratch is the scheduler's reused per-step storage.
type stepScratch struct {
	steps   []llama.Step
	owners  []*Handle
	logits  []float32 // (rows, vocab) host copy of the step's logits, one read per step
	raw     []float32 // (vocab) one row before sampling modifies it (log-probabilities)
	spawned []*Handle // completions of n > 1 forked in the step, to admit next
}

// step runs one forward step over the running sequences and samples their tokens; it returns the sequences
// still running. A panic anywhere in it (planning, the forward pass, a device worker, sampling) fails the
// step's sequences with an internal error instead of the process.
func (e *Engine) step(running []*Handle, sc *stepScratch) (out []*Handle) {
	sc.steps, sc.owners = sc.steps[:0], sc.owners[:0]
	defer func() {
		if r := recover(); r != nil {
			err := errorf(KindInternal, "engine: internal error in a step: %v", r)
			for _, h := range sc.owners {
				e.finishSafe(h, err)
			}
			// running may be half compacted by a DeleteFunc that panicked: keep each live handle once.
			seen := map[*Handle]bool{}
			out = out[:0]
			for _, h := range running {
				if !h.finished && !seen[h] {
					seen[h] = true
					out = append(out, h)
				}
			}
			e.met.Add(StepErrors, 1)
		}
	}()
	// Drop cancelled sequences.
	running = slices.DeleteFunc(running, func(h *Handle) bool {
		if h.ctx.Err() != nil {
			e.finish(h, sample.FinishCancelled, nil)
			return true
		}
		return false
	})
	sc.steps, sc.owners = e.plan(running, sc.steps, sc.owners)
	if len(sc.steps) == 0 {
		return running
	}
	faultPoint(sc.owners)
	if e.onStep != nil {
		e.onStep(sc.steps)
	}
	if e.onOwners != nil {
		e.onOwners(sc.owners)
	}
	t0 := time.Now()
	m := e.model
	rows, err := e.forward(sc.steps)
	if err == nil {
		if want := logitRows(sc.steps); rows != want {
			err = errorf(KindInternal, "engine: internal error: %d logit rows for a step that wants %d", rows, want)
		} else {
			sc.logits = m.ReadLogits(e.st, sc.logits)
		}
	}
	if err != nil {
		e.failStep(sc.owners, err)
		return slices.DeleteFunc(running, func(h *Handle) bool { return h.seq == nil })
	}
	now := time.Now()
	e.met.Observe(StepLatency, now.Sub(t0).Seconds())
	row, prefilled, generated := 0, 0, 0
	for i, s := range sc.steps {
		h := sc.owners[i]
		n := 1
		if s.AllLogits {
			n = len(s.Tokens)
		}
		row += n
		if h.fed < len(h.req.Prompt) {
			h.fed += len(s.Tokens)
			prefilled += len(s.Tokens)
			if h.fed < len(h.req.Prompt) {
				continue
			}
			sc.spawned = e.fork(h, sc.spawned)
		}
		logits := sc.logits[(row-1)*m.Vocab : row*m.Vocab]
		var lp float32
		var rank int
		var top []sample.TokenLogprob
		if h.logprob {
			// Of the raw logits, before Next penalises them: the chosen token is known after, so the
			// argument is re-read below.
			sc.raw = append(sc.raw[:0], logits...)
		}
		tok := h.sampler.Next(logits, h.context, h.history[len(h.req.Prompt):len(h.req.Prompt)+h.gen])
		if h.logprob {
			lp, top = sample.LogProbs(sc.raw, tok, h.req.Params.Logprobs, nil)
			rank = sample.Rank(sc.raw, tok)
		}
		generated++
		if h.gen == 0 {
			h.tFirst = now
			e.met.Observe(TimeToFirstToken, now.Sub(h.t0).Seconds())
		} else {
			e.met.Observe(InterTokenLatency, now.Sub(h.tLast).Seconds())
		}
		h.tLast = now
		h.gen++
		h.last = tok
		h.history = append(h.history[:len(h.req.Prompt)+h.gen-1], tok)
		ev := Event{Token: tok, Logprob: lp, Rank: rank, Top: top}
		stopped := false
		if h.text != nil {
			ev.Text, stopped = h.text.Add(tok)
		}
		h.events <- ev
		switch {
		case stopped:
			e.finish(h, sample.FinishStop, nil)
		case h.sampler.Stop(tok):
			e.finish(h, sample.FinishStop, nil)
		case h.gen >= h.req.Params.MaxTokens:
			e.finish(h, sample.FinishLength, nil)
		default:
			continue
		}
		h.seq = nil
	}
	e.met.Add(PromptTokens, float64(prefilled))
	e.met.Add(GeneratedTokens, float64(generated))
	return slices.DeleteFunc(running, func(h *Handle) bool { return h.seq == nil })
}

// fork starts the other completions of h (n > 1) once h's prompt is in its cache: each shares the prompt's
// whole pages and prefills only the rest (at least the last prompt token, whose logits start its answer).
func (e *Engine) fork(h *Handle, spawned []*Handle) []*Handle {
	if len(h.kids) == 0 {
		return spawned
	}
	ps := e.opt.PageSize
	shared := max(len(h.req.Prompt)-e.minPrefill(), 0) / ps * ps
	for _, k := range h.kids {
		seq, err := h.seq.Fork(shared, len(k.req.Prompt)+k.req.Params.MaxTokens)
		if err != nil {
			e.finish(k, sample.FinishCancelled, errorf(KindInternal, "engine: %w", err))
			continue
		}
		k.forked, k.fed = seq, shared
		k.stats.PrefillTokens = len(k.req.Prompt) - shared
		spawned = append(spawned, k)
	}
	h.kids = nil
	return spawned
}

// failStep ends a failed step's sequences with err.
func (e *Engine) failStep(owners []*Handle, err error) {
	e.met.Add(StepErrors, 1)
	for _, h := range owners {
		if h.seq != nil {
			e.finish(h, sample.FinishCancelled, err)
			h.seq = nil
		}
	}
}

// reportMemory sets the KV gauges.
func (e *Engine) reportMemory() {
	u := e.pool.Usage()
	e.met.Set(KVResidentUsed, float64(u.ResidentUsed))
	e.met.Set(KVResidentFree, float64(u.ResidentFree))
	e.met.Set(KVOffloadUsed, float64(u.OffloadUsed))
	e.met.Set(KVOffloadFree, float64(u.OffloadFree))
}

// trim gives free KV memory above the watermark back to the OS (after sequences ended, so that admitted
// ones reuse warm pages first).
func (e *Engine) trim() {
	if _, err := e.pool.MaybeTrim(); err != nil && !e.trimFailed {
		e.trimFailed = true // reported once: the pages stay usable, the memory stays with the process
		e.opt.Logf("giving free KV memory back to the OS failed (reported once): %v", err)
	}
}

// logitRows is the number of logit rows a step's forward call writes.
func logitRows(steps []llama.Step) int {
	n := 0
	for _, s := range steps {
		if s.AllLogits {
			n += len(s.Tokens)
		} else {
			n++
		}
	}
	return n
}

// forward runs one step; a panic below (a programming error in the model or a device) fails the step's
// sequences instead of the process.
func (e *Engine) forward(steps []llama.Step) (rows int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("engine: internal error in a forward step: %v", r)
		}
	}()
	return e.model.Forward(e.st, steps)
}

// plan builds the next step: every decoding sequence gives one token, then prompts fill what the prefill
// budget allows, first come first served, in chunks.
func (e *Engine) plan(running []*Handle, steps []llama.Step, owners []*Handle) ([]llama.Step, []*Handle) {
	decodeCost := 0.0
	for _, h := range running {
		if h.fed == len(h.req.Prompt) {
			steps = append(steps, llama.Step{Seq: h.seq, Tokens: h.history[len(h.history)-1:], Decode: true, GenLimit: h.req.Params.MaxTokens})
			owners = append(owners, h)
			decodeCost += e.tokenCost(h.seq.Len(), decodeAttnFactor)
		}
	}
	tokens := e.opt.StepTokens - len(steps)
	budget := e.prefillBudget(len(steps), decodeCost)
	first := true // the first prompt token of a step goes whatever its cost, so that prompts always advance
	for _, h := range running {
		rest := len(h.req.Prompt) - h.fed
		if rest <= 0 || tokens <= 0 {
			continue
		}
		// As many tokens as the budget pays for at this sequence's positions.
		n, pos := 0, h.seq.Len()
		for n < min(rest, tokens) {
			c := e.tokenCost(pos+n, prefillAttnFactor)
			if !first && c > budget {
				break
			}
			budget -= c
			n, first = n+1, false
		}
		if n == 0 {
			break
		}
		steps = append(steps, llama.Step{Seq: h.seq, Tokens: h.req.Prompt[h.fed : h.fed+n]})
		owners = append(owners, h)
		tokens -= n
	}
	return steps, owners
}

// Prefill budget. A token's cost is counted in units of one token's weight work (the matmuls, the same for
// every token), plus its attention, which grows with the tokens before it: in flops, cross tokens of
// context cost as much as the weights (4·heads·headDim flops per context token and layer, against 2 per
// weight), and the attention kernels turn flops into time slower than the matmuls do, by a factor measured
// on the CPU device (SmolLM2, 2 cores): a decoding row, alone with its KV, ~7x; the rows of a prompt chunk,
// sharing theirs, ~3.4x (BenchmarkAttention; decode at 128 against 2048 context). A step costs at least
// bandwidthTokens units (the weights are read once per step however few tokens use them: one decoding
// sequence's step takes about two tokens' weight work). Prompt tokens may add PrefillStretch-1 times the
// decode part's cost, so that the decoding sequences' inter-token time grows by about that factor while a
// long prompt is prefilled; with nothing decoding a prompt takes the whole step.
const (
	bandwidthTokens   = 2
	decodeAttnFactor  = 7.0
	prefillAttnFactor = 3.4
)

// tokenCost is the cost of a token at position pos whose attention runs factor times slower per flop than
// the matmuls.
func (e *Engine) tokenCost(pos int, factor float64) float64 {
	return 1 + float64(pos)*factor/e.cross
}

// prefillBudget is what prompt tokens may cost in a step with decoders decoding sequences of cost
// decodeCost; unlimited (the step's token limit decides) when nothing decodes.
func (e *Engine) prefillBudget(decoders int, decodeCost float64) float64 {
	if decoders == 0 {
		return float64(e.opt.StepTokens) * e.tokenCost(e.model.MaxContext, prefillAttnFactor)
	}
	base := max(decodeCost, bandwidthTokens)
	return e.opt.PrefillStretch*base - decodeCost
}

// finish releases a sequence's memory, records a session's turn and sends the final event.
func (e *Engine) finish(h *Handle, reason sample.FinishReason, err error) {
	if h.finished {
		return
	}
	h.finished = true
	var flushed string
	if h.text != nil && err == nil && reason != sample.FinishCancelled {
		flushed = h.text.Flush()
	}
	if h.seq != nil {
		// A sequence's OmniKV counters start at its turn (new sequences, forks and idle sessions have none).
		if st := h.seq.Selection(); st.RowsFetched > 0 {
			e.met.Add(RowsFetched, float64(st.RowsFetched))
			e.met.Add(BytesFetched, float64(st.BytesFetched))
		}
	}
	for _, k := range h.kids { // n > 1, ended before its prompt was in the cache: so do the others
		e.finish(k, reason, err)
	}
	h.kids = nil
	switch {
	case h.req.sess != nil:
		e.endTurn(h, err)
	case h.seq != nil && h.req.Seq == nil:
		h.seq.Release()
	case h.forked != nil && h.seq == nil: // a fork that never ran
		h.forked.Release()
	}
	if h.text != nil && h.text.Stopped() {
		h.gen = h.text.Tokens()
	}
	h.stats.GeneratedTokens = h.gen
	if !h.tFirst.IsZero() {
		h.stats.Prefill = h.tFirst.Sub(h.tStart)
		h.stats.Decode = time.Since(h.tFirst)
	}
	e.met.Add(RequestsDone, 1)
	if reason == sample.FinishCancelled && err == nil {
		e.met.Add(Cancellations, 1)
	}
	e.samplers.Put(h.sampler) // no step uses it any more
	h.sampler = nil
	h.events <- Event{Done: true, Text: flushed, Reason: reason, Err: err, Stats: h.stats}
	close(h.events)
	h.cancel()
}
