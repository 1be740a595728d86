package engine

import (
	"sync"
	"time"

	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
)

// A session is one chat conversation. What defines it is its conversation: the messages (template
// sessions, rendered whole with the model's chat template at every turn) or the token stream (raw sessions:
// token-id turns, or text without a template). Its KV cache is only a cache of a prefix of that: each turn
// computes the turn's whole context, keeps the longest cached prefix that matches it and prefills the rest.
// So a turn's context is right whatever ended the turn before (end-of-sequence, max_tokens, a stop string, a
// cancel), and a session whose KV was evicted re-prefills its conversation transparently.
type session struct {
	id     string
	raw    bool                // the conversation is the token stream full (no template)
	msgs   []tokenizer.Message // template sessions: the conversation so far
	full   []int32             // raw sessions: every token so far (prompts, then answers as generated)
	seq    *llama.Sequence     // nil when the session holds no KV (before its first turn, after eviction)
	cached []int32             // the tokens whose KV seq holds, in order (len = seq.Len())
	busy   bool                // a turn is queued or running
	last   time.Time           // the end of its last turn
}

// sessionTable holds an engine's sessions.
type sessionTable struct {
	mu     sync.Mutex
	m      map[string]*session
	reaped chan struct{} // closed when the reaper stops
}

func (t *sessionTable) init() {
	t.m = map[string]*session{}
	t.reaped = make(chan struct{})
}

// dropKV releases a session's KV; the conversation stays. Called with the table locked and the session idle.
func (s *session) dropKV() {
	if s.seq != nil {
		s.seq.Release()
		s.seq, s.cached = nil, nil
	}
}

// Sessions returns the number of sessions held.
func (e *Engine) Sessions() int {
	e.sessions.mu.Lock()
	defer e.sessions.mu.Unlock()
	return len(e.sessions.m)
}

// SessionPages returns the KV pages held by idle sessions (so that logs can tell them from leaks).
func (e *Engine) SessionPages() int {
	e.sessions.mu.Lock()
	defer e.sessions.mu.Unlock()
	n := 0
	for _, s := range e.sessions.m {
		if !s.busy && s.seq != nil {
			n += s.seq.PagesHeld()
		}
	}
	return n
}

// EndSession ends session id and frees its memory: KindNotFound if it does not exist, KindConflict while a
// turn runs.
func (e *Engine) EndSession(id string) error {
	t := &e.sessions
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.m[id]
	switch {
	case s == nil:
		return errorf(KindNotFound, "session %s: unknown or expired (start it with sequence_start)", id)
	case s.busy:
		return errorf(KindConflict, "session %s: a turn is still running", id)
	}
	s.dropKV()
	delete(t.m, id)
	e.met.Set(OpenSessions, float64(len(t.m)))
	e.poke()
	return nil
}

// CheckSession reports whether a turn on session id could start now (no side effects).
func (e *Engine) CheckSession(id string, start bool) error {
	t := &e.sessions
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.m[id]
	switch {
	case start && s == nil && len(t.m) >= e.opt.MaxSessions:
		return e.sessionLimitError()
	case start && s != nil && s.busy, !start && s != nil && s.busy:
		return errorf(KindConflict, "session %s: a turn is still running", id)
	case !start && s == nil:
		return errorf(KindNotFound, "session %s: unknown or expired (start it with sequence_start)", id)
	}
	return nil
}

func (e *Engine) sessionLimitError() error {
	e.met.Add(Refusals, 1)
	return errorf(KindUnavailable, "session limit reached: %d chat sessions are open (max_sessions %d); end one with sequence_end or let idle ones expire (session_idle_timeout_s %.0f)",
		len(e.sessions.m), e.opt.MaxSessions, e.opt.SessionIdle.Seconds())
}

// beginTurn takes session id for a turn (creating it on start) and marks it busy.
func (e *Engine) beginTurn(id string, start bool) (*session, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	t := &e.sessions
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.m[id]
	if start {
		if s != nil && s.busy {
			return nil, errorf(KindConflict, "session %s: a turn is still running", id)
		}
		if s != nil {
			s.dropKV()
		} else if len(t.m) >= e.opt.MaxSessions {
			return nil, e.sessionLimitError()
		}
		s = &session{id: id}
		t.m[id] = s
		e.met.Set(OpenSessions, float64(len(t.m)))
	}
	switch {
	case s == nil:
		return nil, errorf(KindNotFound, "session %s: unknown or expired (start it with sequence_start)", id)
	case s.busy:
		return nil, errorf(KindConflict, "session %s: a turn is still running", id)
	}
	s.busy = true
	return s, nil
}

// abortTurn gives back a session whose turn never reached the scheduler; a session created for the turn
// goes (its start failed).
func (e *Engine) abortTurn(s *session, created bool) {
	t := &e.sessions
	t.mu.Lock()
	defer t.mu.Unlock()
	s.busy, s.last = false, time.Now()
	if created && t.m[s.id] == s && len(s.msgs) == 0 && len(s.full) == 0 {
		s.dropKV()
		delete(t.m, s.id)
		e.met.Set(OpenSessions, float64(len(t.m)))
	}
}

// endTurn records a finished turn in its session: the conversation gains the user's turn and the answer
// as the client saw it (cut at a stop string, or where a cancel stopped it); the cache keeps what the
// sequence holds. A failed turn leaves the conversation as it was and drops the KV (its state is unknown).
// Called by the scheduler before the turn's final event, so that the next turn sees the session idle.
func (e *Engine) endTurn(h *Handle, err error) {
	s := h.req.sess
	t := &e.sessions
	t.mu.Lock()
	defer t.mu.Unlock()
	s.busy, s.last = false, time.Now()
	if s.seq == nil {
		s.seq = h.req.Seq
	}
	if err != nil || t.m[s.id] != s || h.req.end {
		s.dropKV()
		if h.req.end && t.m[s.id] == s {
			delete(t.m, s.id)
			e.met.Set(OpenSessions, float64(len(t.m)))
		}
		e.poke()
		return
	}
	gen := h.history[len(h.req.Prompt):]
	answer := gen
	if h.text != nil && h.text.Stopped() {
		answer = gen[:h.text.Tokens()]
	}
	s.seq.Idle() // an idle session holds its tokens' pages only
	s.cached = append(append(s.cached[:0], h.req.ctx...), gen...)[:s.seq.Len()]
	if s.raw {
		s.full = append(append(s.full[:0], h.req.ctx...), answer...)
	} else {
		s.msgs = append(s.msgs, tokenizer.Message{Role: "user", Content: h.req.user}, tokenizer.Message{Role: "assistant", Content: h.text.Text()})
	}
}

// evictIdle drops the KV of the idle session that ended its last turn longest ago; false when none holds
// any. The scheduler calls it when a request needs memory.
func (e *Engine) evictIdle() bool {
	t := &e.sessions
	t.mu.Lock()
	defer t.mu.Unlock()
	var oldest *session
	for _, s := range t.m {
		if !s.busy && s.seq != nil && (oldest == nil || s.last.Before(oldest.last)) {
			oldest = s
		}
	}
	if oldest == nil {
		return false
	}
	oldest.dropKV()
	e.met.Add(Evictions, 1)
	return true
}

// reap drops sessions idle longer than SessionIdle.
func (e *Engine) reap() {
	t := &e.sessions
	defer close(t.reaped)
	tick := time.NewTicker(min(time.Second, e.opt.SessionIdle/4+time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-e.quit:
			return
		case now := <-tick.C:
			t.mu.Lock()
			n := len(t.m)
			for id, s := range t.m {
				if !s.busy && now.Sub(s.last) > e.opt.SessionIdle {
					s.dropKV()
					delete(t.m, id)
					e.opt.Logf("session expired: KV freed sequence=%s", id)
				}
			}
			if len(t.m) != n {
				e.met.Set(OpenSessions, float64(len(t.m)))
				e.poke()
			}
			t.mu.Unlock()
		}
	}
}

// closeAll frees every session (Close, after the scheduler stopped).
func (t *sessionTable) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, s := range t.m {
		if !s.busy { // a busy one's turn is being refused (ErrClosed); the pool's Close frees its pages
			s.dropKV()
		}
		delete(t.m, id)
	}
}

// poke wakes the scheduler to retry admission (memory was freed outside it).
func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b []int32) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
