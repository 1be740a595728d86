package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/fault"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/sample"
	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
)

// Options configure an engine.
type Options struct {
	MaxSequences int             // sequences running at once (default 32)
	StepTokens   int             // tokens per forward step, prefill chunks included (default 256)
	PageSize     int             // tokens per KV page (default 64)
	KVDType      compute.KVDType // default fp16
	MaxKVPages   int             // resident page limit across sequences (0 = unlimited; tests)
	// KV memory budgets in bytes (0 = unlimited): the resident tier (device memory; RAM on the CPU: resident
	// layers and OmniKV staging) and the offload tier (OmniKV's sparse layers: host RAM or the offload file).
	ResidentBytes, OffloadBytes int64
	// FreeWatermark: free KV memory above it is given back to the OS (0 = kvcache.DefaultFreeWatermark,
	// < 0 = never).
	FreeWatermark int64
	MaxQueue      int    // submissions waiting to start (default 64)
	OffloadDir    string // non-empty: the offload tier is a memory-mapped file in this directory
	// SparseResident keeps OmniKV's sparse layers' KV in device memory instead of the offload tier
	// (kvcache.Config.SparseResident).
	SparseResident bool
	// PrefillStretch bounds how much a prompt chunk may slow the sequences that are decoding: a step that
	// carries prefill tokens is planned to cost at most PrefillStretch times the step without them (see
	// prefillBudget; default 1.8).
	PrefillStretch float64
	// QueueTimeout bounds how long an admitted request may wait for KV memory before it is refused with
	// KindUnavailable naming the budget (default 30 s).
	QueueTimeout time.Duration
	// Tokenizer turns text into tokens and tokens into text deltas (Generate, stop strings); nil: Submit
	// with token ids only.
	Tokenizer *tokenizer.Tokenizer
	// ChatTemplate: Generate wraps text as a user turn with the model's chat template when the model has one
	// (a request's Template overrides it; sessions render the whole conversation with it).
	ChatTemplate bool
	MaxSessions  int           // chat sessions held at once (default 256); a new one beyond is refused at once
	SessionIdle  time.Duration // an idle session is dropped after this long (default 600 s)
	// Metrics receives the engine's measurements (nil: none).
	Metrics Sink
	// Logf reports what the engine cannot return to a caller (nil: discarded).
	Logf func(format string, args ...any)
}

func (o *Options) defaults() {
	if o.MaxSequences <= 0 {
		o.MaxSequences = 32
	}
	if o.PrefillStretch <= 1 {
		o.PrefillStretch = 1.8
	}
	if o.StepTokens <= 0 {
		o.StepTokens = 256
	}
	if o.StepTokens < o.MaxSequences {
		o.StepTokens = o.MaxSequences
	}
	if o.PageSize <= 0 {
		o.PageSize = 64
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 64
	}
	if o.QueueTimeout <= 0 {
		o.QueueTimeout = 30 * time.Second
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 256
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = 600 * time.Second
	}
	if o.Metrics == nil {
		o.Metrics = NopSink{}
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// Request is one generation over token ids (Generate builds them from text and sessions).
type Request struct {
	Prompt []int32       // token ids, not empty
	Params sample.Params // MaxTokens > 0
	// IgnoreEOS keeps generating past end-of-sequence tokens (benchmarks; or Params.IgnoreEOS).
	IgnoreEOS bool
	// Logprobs: each token event carries its log-probability, and the Params.Logprobs most likely tokens'.
	Logprobs bool
	// Seq, when set, continues an existing sequence (from NewSequence): the prompt is appended to what it
	// holds, and the caller keeps it after the request ends. Its cache then holds every token but the last
	// generated one.
	Seq *llama.Sequence

	sess *session // the chat session of a Generate turn (Seq is its sequence)
	ctx  []int32  // with sess: the turn's whole context (cached prefix + Prompt)
	user string   // with sess: the turn's user text (template sessions)
	end  bool     // with sess: the session ends after this turn
}

// Event is what a sequence emits: one per generated token, then a final one with Done set.
type Event struct {
	Token   int32                 // valid when !Done
	Logprob float32               // the token's log-probability under the raw logits (Request.Logprobs)
	Rank    int                   // the token's rank by log-probability, 1 = the most likely (Request.Logprobs)
	Top     []sample.TokenLogprob // the Params.Logprobs most likely tokens, best first (Request.Logprobs)
	Text    string                // the text this token completes (with a tokenizer; "" for special tokens and held-back text)
	Done    bool
	Reason  sample.FinishReason // on Done
	Err     error               // on Done, when generation failed
	Stats   Stats               // on Done
}

// Stats times one sequence.
type Stats struct {
	PromptTokens    int // tokens of the turn's context (the whole conversation for a session)
	PrefillTokens   int // of those, tokens prefilled (the rest were cached)
	GeneratedTokens int
	Queued          time.Duration // submission to first step
	Prefill         time.Duration // first step to first token
	Decode          time.Duration // first token to the last
}

// Engine runs sequences on one model.
type Engine struct {
	model      *llama.Model
	opt        Options
	tok        *tokenizer.Tokenizer // nil: token ids only
	pool       *kvcache.Pool
	st         *llama.State // the scheduler's forward state
	cross      float64      // context tokens whose attention flops equal one token's weight flops (see tokenCost)
	met        Sink
	trimFailed bool // MaybeTrim failed once (reported once)
	ownsModel  bool // Open loaded the model: Close closes it

	submit   chan *Handle
	wake     chan struct{}            // memory was freed outside the scheduler (a session ended): retry admission
	onStep   func(steps []llama.Step) // tests: sees each step's composition before it runs
	onOwners func(owners []*Handle)   // tests: sees each step's sequences before it runs (scheduler goroutine)
	quit     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	closed   bool

	sessions sessionTable
	samplers sync.Pool // *sample.Sampler: each holds vocab-sized buffers (~0.8 MB at 49K), reused across requests
}

// sampler returns a sampler for p, reused when one is free.
func (e *Engine) sampler(p sample.Params) (*sample.Sampler, error) {
	if s, ok := e.samplers.Get().(*sample.Sampler); ok {
		if err := s.Reset(p); err != nil {
			e.samplers.Put(s)
			return nil, err
		}
		return s, nil
	}
	s, err := sample.New(p, e.model.Vocab)
	if err != nil {
		return nil, err
	}
	s.SetEOS(e.model.EOS)
	return s, nil
}

// New starts an engine on m.
func New(m *llama.Model, opt Options) (*Engine, error) {
	opt.defaults()
	pool, err := kvcache.NewPool(m.Device(), kvcache.Config{
		Layers: m.Layers, KVDim: m.KVDim(), PageSize: opt.PageSize, DType: opt.KVDType, MaxPages: opt.MaxKVPages,
		ResidentBytes: opt.ResidentBytes, OffloadBytes: opt.OffloadBytes, FreeWatermarkBytes: opt.FreeWatermark,
		Offload: m.OffloadLayers(), OffloadDir: opt.OffloadDir, SparseResident: opt.SparseResident,
	})
	if err != nil {
		return nil, err
	}
	st, err := m.NewState(opt.StepTokens, opt.MaxSequences)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("engine: %w", err)
	}
	e := &Engine{
		st:    st,
		model: m, opt: opt, pool: pool, tok: opt.Tokenizer, met: opt.Metrics,
		cross:  float64(m.WeightMACs()) / float64(2*m.Heads*m.HeadDim*m.Layers),
		submit: make(chan *Handle, opt.MaxQueue),
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	e.sessions.init()
	go e.loop()
	go e.reap()
	return e, nil
}

// TokenText returns one token's text, special tokens included ("" without a tokenizer).
func (e *Engine) TokenText(id int32) string {
	if e.tok == nil {
		return ""
	}
	return e.tok.Decode([]int32{id}, false)
}

// Model returns the engine's model.
func (e *Engine) Model() *llama.Model { return e.model }

// Pool returns the engine's KV page pool.
func (e *Engine) Pool() *kvcache.Pool { return e.pool }

// Handle is a submitted sequence.
type Handle struct {
	req      Request
	events   chan Event
	ctx      context.Context
	cancel   context.CancelFunc
	sampler  *sample.Sampler
	text     *TextStream // nil without a tokenizer
	seq      *llama.Sequence
	history  []int32         // prompt then generated tokens
	context  []int32         // the whole context the penalties see: a session's conversation, or the prompt
	logprob  bool            // report log-probabilities (Event.Logprob, Event.Top)
	fed      int             // prompt tokens already in the cache
	gen      int             // tokens generated
	last     int32           // newest token, fed at the next decode step
	fault    fault.Point     // faultinject builds: the fault this request's steps inject
	siblings []*Handle       // n > 1: every other completion (Siblings)
	finished bool            // the Done event went out (finish runs once)
	kids     []*Handle       // n > 1: the other completions, forked from this one when its prompt is in the cache
	forked   *llama.Sequence // a completion of n > 1: its sequence, sharing the prompt's pages with the first
	stats    Stats
	t0       time.Time
	tFirst   time.Time
	tLast    time.Time // the newest token's time (inter-token latency)
	tStart   time.Time
}

// Siblings returns the other completions of a request with n > 1 (Params.N), in order: they share the
// prompt's prefill with this one (nil when n is 1).
func (h *Handle) Siblings() []*Handle { return h.siblings }

// PromptTokens returns the tokens of the request's context (a session's whole conversation).
func (h *Handle) PromptTokens() int { return h.stats.PromptTokens }

// Events returns the sequence's events; the channel is closed after the Done event.
func (h *Handle) Events() <-chan Event { return h.events }

// Cancel stops the sequence before its next step; its final event says cancelled.
func (h *Handle) Cancel() { h.cancel() }

// Submit queues a request over token ids. The context cancels it as Cancel does.
func (e *Engine) Submit(ctx context.Context, req Request) (*Handle, error) {
	h, err := e.newHandle(ctx, req)
	if err != nil {
		return nil, err
	}
	return h, e.enqueue(h)
}

// newHandle validates req (the one place a request's ids, lengths and sampling are checked).
func (e *Engine) newHandle(ctx context.Context, req Request) (*Handle, error) {
	m := e.model
	if len(req.Prompt) == 0 {
		return nil, errorf(KindInvalid, "engine: empty prompt")
	}
	for _, id := range req.Prompt {
		if id < 0 || int(id) >= m.Vocab {
			return nil, errorf(KindInvalid, "engine: token id %d outside the vocabulary [0, %d)", id, m.Vocab)
		}
	}
	if req.Params.MaxTokens <= 0 {
		return nil, errorf(KindInvalid, "engine: max_tokens must be > 0, got %d", req.Params.MaxTokens)
	}
	cached := 0
	if req.Seq != nil {
		cached = req.Seq.Len()
	}
	if total := cached + len(req.Prompt) + req.Params.MaxTokens; total > m.MaxContext {
		if cached > 0 {
			return nil, errorf(KindInvalid, "engine: %d cached tokens plus a prompt of %d plus max_tokens %d exceed the context of %d", cached, len(req.Prompt), req.Params.MaxTokens, m.MaxContext)
		}
		return nil, errorf(KindInvalid, "engine: prompt of %d tokens plus max_tokens %d exceeds the context of %d", len(req.Prompt), req.Params.MaxTokens, m.MaxContext)
	}
	if len(req.Params.Stop) > 0 && e.tok == nil {
		return nil, errorf(KindInvalid, "engine: stop strings need a tokenizer")
	}
	p := req.Params
	p.IgnoreEOS = p.IgnoreEOS || req.IgnoreEOS
	for i, id := range p.StopTokenIDs {
		if id < 0 || int(id) >= m.Vocab {
			return nil, errorf(KindInvalid, "engine: stop_token_ids[%d]: %d is outside the vocabulary [0, %d)", i, id, m.Vocab)
		}
	}
	s, err := e.sampler(p)
	if err != nil {
		return nil, errorf(KindInvalid, "engine: %w", err)
	}
	h := &Handle{req: req, sampler: s, events: make(chan Event, req.Params.MaxTokens+1), t0: time.Now()}
	if e.tok != nil {
		h.text = NewTextStream(e.tok, req.Params.Stop)
	}
	h.ctx, h.cancel = context.WithCancel(ctx)
	h.history = make([]int32, 0, len(req.Prompt)+req.Params.MaxTokens)
	h.history = append(h.history, req.Prompt...)
	h.context = req.Prompt
	if req.sess != nil {
		h.context = req.ctx
	}
	h.logprob = req.Logprobs || p.Logprobs > 0
	h.stats.PromptTokens = len(req.Prompt) + cached
	h.stats.PrefillTokens = len(req.Prompt)
	return h, nil
}

// enqueue hands h to the scheduler.
func (e *Engine) enqueue(h *Handle) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		h.cancel()
		return ErrClosed
	}
	select {
	case e.submit <- h:
		return nil
	default:
		h.cancel()
		e.met.Add(Refusals, 1)
		return ErrBusy
	}
}

// NewSequence returns an empty sequence for Request.Seq that may grow to the model's context; release it with
// its Release method when done (never while a request runs on it).
func (e *Engine) NewSequence() *llama.Sequence { return llama.NewSequence(e.pool, e.model.MaxContext) }

// Close stops the scheduler; running sequences end cancelled and every session is freed. Sequences made by
// NewSequence must be released before Close.
func (e *Engine) Close() {
	e.mu.Lock()
	first := !e.closed
	if first {
		e.closed = true
		close(e.quit)
	}
	e.mu.Unlock()
	<-e.done
	if first {
		<-e.sessions.reaped
		e.sessions.closeAll()
		e.st.Free(e.model)
		e.pool.Close()
		if e.ownsModel {
			e.model.Close()
		}
	}
}

// KVPagesInUse returns the KV pages held (every layer's, staging included), by running sequences and
// sessions alike (logs).
func (e *Engine) KVPagesInUse() int { return e.pool.InUse() }
