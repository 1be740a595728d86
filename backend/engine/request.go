package engine

import (
	"context"

	"github.com/omnikv-triton/omnikv-triton/backend/sample"
	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
)

// GenRequest is one generation as a client asks it: text or token ids, sampling, and for chat the session
// and turn flags. Generate validates it, renders and tokenizes it and runs it.
type GenRequest struct {
	Session string        // chat session id; "" for a stateless request
	Start   bool          // the turn starts the session (an existing one of that id is replaced)
	End     bool          // the session ends after this turn (its memory is freed)
	Text    string        // the user's text (wrapped with the chat template when Templated says so)
	IDs     []int32       // the prompt as token ids instead of Text (never templated)
	Params  sample.Params // ignore_eos, n and logprobs among them
	// Messages: the prompt as a conversation, rendered with the model's chat template and the generation
	// prompt (instead of Text or IDs; stateless requests only; an error when the model has no template).
	Messages []tokenizer.Message
	// Template overrides the engine's ChatTemplate for Text (nil keeps it): false tokenizes the text as it
	// is (with the model's BOS), true wraps it as a user turn.
	Template *bool
	// Logprobs: token events carry log-probabilities (and the Params.Logprobs most likely tokens').
	Logprobs bool
}

// Generate validates req, builds its context (a session's whole conversation) and queues it. Errors are
// *Error with a kind; the handle's events carry the answer.
func (e *Engine) Generate(ctx context.Context, req GenRequest) (*Handle, error) {
	if len(req.IDs) == 0 {
		req.IDs = nil
	}
	given := 0
	for _, g := range []bool{req.Text != "", req.IDs != nil, len(req.Messages) > 0} {
		if g {
			given++
		}
	}
	if given != 1 {
		return nil, errorf(KindInvalid, "engine: give the prompt as text, as token ids or as messages (exactly one)")
	}
	if req.IDs == nil && e.tok == nil {
		return nil, errorf(KindInvalid, "engine: a text prompt needs a tokenizer")
	}
	if len(req.Messages) > 0 && req.Session != "" {
		return nil, errorf(KindInvalid, "engine: messages are for stateless requests; a chat session takes each turn's text (it keeps the conversation)")
	}
	if len(req.Messages) > 0 && !e.tok.HasChatTemplate() {
		return nil, errorf(KindInvalid, "messages: the model has no chat template to render them with (send text_input)")
	}
	if req.Session == "" {
		prompt, err := e.statelessPrompt(req)
		if err != nil {
			return nil, err
		}
		h, err := e.newHandle(ctx, Request{Prompt: prompt, Params: req.Params, Logprobs: req.Logprobs})
		if err != nil {
			return nil, err
		}
		h.fault = faultOf(req.Text)
		// n > 1: the other completions wait until this one has the prompt in its cache, then fork it
		// (sharing its pages) and sample on their own, each with the next seed.
		for i := 1; i < req.Params.N; i++ {
			p := req.Params
			p.Seed += uint64(i)
			k, err := e.newHandle(ctx, Request{Prompt: prompt, Params: p, Logprobs: req.Logprobs})
			if err != nil {
				h.cancelAll()
				return nil, err
			}
			h.kids = append(h.kids, k)
		}
		h.siblings = h.kids
		if err := e.enqueue(h); err != nil {
			h.cancelAll()
			return nil, err
		}
		return h, nil
	}
	if req.Params.N > 1 {
		return nil, errorf(KindInvalid, "engine: n = %d: several completions are not supported in a chat session (one answer continues the conversation)", req.Params.N)
	}
	s, err := e.beginTurn(req.Session, req.Start)
	if err != nil {
		return nil, err
	}
	h, err := e.turn(ctx, s, req)
	if err != nil {
		e.abortTurn(s, req.Start)
		return nil, err
	}
	return h, nil
}

// statelessPrompt tokenizes a stateless request.
func (e *Engine) statelessPrompt(req GenRequest) ([]int32, error) {
	if req.IDs != nil {
		return req.IDs, nil
	}
	msgs := req.Messages
	if msgs == nil && e.Templated(req) {
		msgs = []tokenizer.Message{{Role: "user", Content: req.Text}}
	}
	if msgs == nil {
		return e.encode(req.Text, true)
	}
	text, err := e.tok.ApplyChat(msgs, true)
	if err != nil {
		return nil, errorf(KindInvalid, "%w", err) // "chat template: ..."
	}
	return e.encode(text, false)
}

// Templated reports whether req's prompt is rendered with the chat template: messages always; text when
// req.Template, or else the engine's ChatTemplate, says so and the model has a template (a model without
// one serves text as it is); token ids never.
func (e *Engine) Templated(req GenRequest) bool {
	if len(req.Messages) > 0 {
		return true
	}
	on := e.opt.ChatTemplate
	if req.Template != nil {
		on = *req.Template
	}
	return req.IDs == nil && on && e.HasChatTemplate()
}

// HasChatTemplate reports whether the model carries a chat template.
func (e *Engine) HasChatTemplate() bool { return e.tok != nil && e.tok.HasChatTemplate() }

func (e *Engine) encode(text string, bos bool) ([]int32, error) {
	ids, err := e.tok.Encode(text, bos)
	if err != nil {
		return nil, errorf(KindInvalid, "text: %w", err)
	}
	if len(ids) == 0 {
		return nil, errorf(KindInvalid, "text: no tokens")
	}
	return ids, nil
}

// turn builds a session turn's context, keeps the longest cached prefix of it, and queues the rest. The
// session is busy (beginTurn), so nothing else touches it.
func (e *Engine) turn(ctx context.Context, s *session, req GenRequest) (*Handle, error) {
	template := e.Templated(req)
	first := len(s.msgs) == 0 && len(s.full) == 0
	if first {
		s.raw = !template
	} else if s.raw == template {
		kind := map[bool]string{true: "token ids or untemplated text", false: "text wrapped by the chat template"}
		return nil, errorf(KindInvalid, "session %s: its turns are %s; this turn is not", s.id, kind[s.raw])
	}
	var full []int32
	if template {
		msgs := append(s.msgs[:len(s.msgs):len(s.msgs)], tokenizer.Message{Role: "user", Content: req.Text})
		text, err := e.tok.ApplyChat(msgs, true)
		if err != nil {
			return nil, errorf(KindInvalid, "%w", err) // "chat template: ..."
		}
		if full, err = e.encode(text, false); err != nil {
			return nil, err
		}
	} else {
		ids := req.IDs
		if ids == nil {
			var err error
			if ids, err = e.encode(req.Text, first); err != nil {
				return nil, err
			}
		}
		full = append(append(make([]int32, 0, len(s.full)+len(ids)), s.full...), ids...)
	}
	if s.seq == nil {
		s.seq = e.NewSequence()
		s.cached = s.cached[:0]
	}
	// Keep the longest cached prefix, but prefill at least the last token (its logits start the answer) and,
	// with a windowed OmniKV selector, the window's tokens (their queries score the selection, as they do
	// for a request that prefills the whole context).
	p := min(commonPrefix(s.cached, full), len(full)-e.minPrefill())
	p = max(p, 0)
	s.seq.Truncate(p)
	s.cached = s.cached[:p]
	h, err := e.newHandle(ctx, Request{Prompt: full[p:], Params: req.Params, Logprobs: req.Logprobs, Seq: s.seq, sess: s, ctx: full, user: req.Text, end: req.End})
	if err != nil {
		return nil, err
	}
	h.fault = faultOf(req.Text)
	return h, e.enqueue(h)
}

// cancelAll releases the contexts of a request that never reached the scheduler, its other completions'
// too.
func (h *Handle) cancelAll() {
	h.cancel()
	for _, k := range h.kids {
		k.cancel()
	}
}

// minPrefill is how many of a context's last tokens a turn or a fork prefills however much is cached: 1, or
// the observation window of a windowed OmniKV selector.
func (e *Engine) minPrefill() int {
	if c := e.model.OmniKV(); c.Enabled && c.Selector.Windowed() {
		return max(c.Window, 1)
	}
	return 1
}
