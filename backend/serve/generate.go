package serve

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/omnikv-triton/omnikv-triton/backend/compute/devices"
	"github.com/omnikv-triton/omnikv-triton/backend/engine"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
	"github.com/omnikv-triton/omnikv-triton/backend/sample"
	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
)

// Generator serves text generation from one loaded model (modes "generate" and "chat"): stateless requests,
// or, in chat mode, turns of sequence-batched sessions whose KV stays with the session between turns.
type Generator struct {
	name     string
	opt      GenOptions
	log      zerolog.Logger
	model    *llama.Model
	tok      *tokenizer.Tokenizer
	eng      *engine.Engine
	sessions *sessions // nil in generate mode
}

// NewGenerator loads the model and starts its engine.
func NewGenerator(cfg Config, inst Instance, log zerolog.Logger, chat bool) (*Generator, error) {
	o, err := ParseGenOptions(cfg)
	if err != nil {
		return nil, err
	}
	device := "cpu"
	if inst.Kind == KindGPU {
		device = fmt.Sprintf("cuda:%d", inst.DeviceID)
	}
	dev, err := devices.Open(device)
	if err != nil {
		return nil, Errorf(CodeUnsupported, "model %q: instance %s (KIND_%v): %w", cfg.Name, inst.Name, inst.Kind, err)
	}
	t0 := time.Now()
	log.Info().Str("weights", o.Weights).Str("device", dev.Name()).Msg("loading model")
	m, err := llama.Load(o.Weights, dev, llama.Options{MaxContext: o.MaxContext})
	if err != nil {
		return nil, Errorf(CodeInvalidArg, "model %q: parameter weights: %w", cfg.Name, err)
	}
	fail := func(err error) (*Generator, error) { m.Close(); return nil, err }
	tok, err := llama.LoadTokenizer(m.Set)
	if err != nil {
		return fail(Errorf(CodeInvalidArg, "model %q: %w", cfg.Name, err))
	}
	if o.OmniKV.Enabled {
		if o.OmniKV.FilterLayers == nil {
			o.OmniKV.FilterLayers = omnikv.DefaultConfig(m.Layers).FilterLayers
		}
		if err := m.SetOmniKV(o.OmniKV); err != nil {
			return fail(Errorf(CodeInvalidArg, "model %q: %w", cfg.Name, err))
		}
	}
	eng, err := engine.New(m, engine.Options{MaxSequences: o.MaxSequences, StepTokens: o.StepTokens, KVDType: o.KVDType})
	if err != nil {
		return fail(err)
	}
	g := &Generator{name: cfg.Name, opt: o, log: log, model: m, tok: tok, eng: eng}
	if chat {
		g.sessions = newSessions(eng, o.SessionIdle, log)
	}
	log.Info().Str("model", m.String()).Str("omnikv", o.OmniKV.String()).Dur("took", time.Since(t0)).Msg("model ready")
	return g, nil
}

// isCloseTurn reports a chat turn that only ends its session: sequence_end with an empty text_input.
func isCloseTurn(req *Request) bool {
	if !req.SequenceEnd {
		return false
	}
	s, err := req.InputString(InText)
	_, hasIDs := req.Input(InIDs)
	return err == nil && s == "" && !hasIDs
}

// Check validates the request's inputs and parameters (no tokenization, no side effects).
func (g *Generator) Check(req *Request) error {
	if g.sessions != nil && isCloseTurn(req) {
		return g.sessions.check(req)
	}
	if _, err := DecodeGenRequest(req, &g.opt); err != nil {
		return err
	}
	if g.sessions != nil {
		return g.sessions.check(req)
	}
	return nil
}

// Close stops the engine and frees every session and the model.
func (g *Generator) Close() error {
	if g.sessions != nil {
		g.sessions.close()
	}
	g.eng.Close()
	return g.model.Close()
}

// Run tokenizes, submits to the engine and streams the answer.
func (g *Generator) Run(ctx context.Context, req *Request, out Sender) error {
	if g.sessions != nil && isCloseTurn(req) {
		sess, err := g.sessions.begin(req)
		if err != nil {
			return err
		}
		g.sessions.end(sess, true)
		return out.Send(Response{Final: true, Outputs: []Tensor{StringTensor(OutText, ""), Int32Tensor(OutIDs),
			StringTensor(OutFinish, sample.FinishStop.String()), int32Scalar(OutPromptN, 0), int32Scalar(OutGenerated, 0)}})
	}
	gr, err := DecodeGenRequest(req, &g.opt)
	if err != nil {
		return err
	}
	prompt := gr.IDs
	if prompt == nil {
		text := gr.Text
		if g.opt.ChatTemplate {
			msg := []tokenizer.Message{{Role: "user", Content: gr.Text}}
			if g.sessions != nil && !req.SequenceStart {
				text, err = g.tok.ContinueChat(msg, true) // earlier turns are in the session's cache
			} else {
				text, err = g.tok.ApplyChat(msg, true)
			}
			if err != nil {
				return Errorf(CodeInvalidArg, "chat_template: %w", err)
			}
		}
		if prompt, err = g.tok.Encode(text, g.sessions == nil && !g.opt.ChatTemplate); err != nil {
			return Errorf(CodeInvalidArg, "input %s: %w", InText, err)
		}
		if len(prompt) == 0 {
			return Errorf(CodeInvalidArg, "input %s: the text has no tokens", InText)
		}
	}
	for _, id := range prompt {
		if id < 0 || int(id) >= g.model.Vocab {
			return Errorf(CodeInvalidArg, "input %s: token id %d outside the vocabulary [0, %d)", InIDs, id, g.model.Vocab)
		}
	}
	ereq := engine.Request{Prompt: prompt, Params: gr.Params, IgnoreEOS: gr.IgnoreEOS}
	var sess *session
	if g.sessions != nil {
		if sess, err = g.sessions.begin(req); err != nil {
			return err
		}
		defer g.sessions.end(sess, req.SequenceEnd)
		ereq.Seq = sess.seq
		ereq.Prompt = append(append([]int32(nil), sess.pending...), prompt...)
		sess.pending = nil
	}
	if total := seqLen(ereq.Seq) + len(ereq.Prompt) + gr.Params.MaxTokens; total > g.model.MaxContext {
		return Errorf(CodeInvalidArg, "prompt of %d tokens (plus %d cached) and max_tokens %d exceed the model's context of %d",
			len(ereq.Prompt), seqLen(ereq.Seq), gr.Params.MaxTokens, g.model.MaxContext)
	}
	h, err := g.eng.Submit(ctx, ereq)
	if err == nil && sess != nil {
		sess.addPrompt(len(prompt))
	}
	if err != nil {
		if sess != nil {
			sess.broken = true // the pending tokens were taken
		}
		if errors.Is(err, engine.ErrBusy) || errors.Is(err, engine.ErrClosed) {
			return Errorf(CodeUnavailable, "%w", err)
		}
		return Errorf(CodeInvalidArg, "%w", err)
	}
	return g.stream(h, gr, prompt, sess, out)
}

func seqLen(s *llama.Sequence) int {
	if s == nil {
		return 0
	}
	return s.Len()
}

// stream turns engine events into responses: text and id deltas when streaming, one response otherwise; the
// last response carries finish_reason and the token counts.
func (g *Generator) stream(h *engine.Handle, gr *GenRequest, prompt []int32, sess *session, out Sender) error {
	ts := engine.NewTextStream(g.tok, gr.Params.Stop)
	var ids []int32 // generated ids not yet sent
	var text string // text not yet sent
	var all []int32 // every generated id (sessions)
	if !gr.Exclude {
		text = gr.Text
		if gr.Text == "" {
			text = g.tok.Decode(prompt, true)
		}
	}
	for ev := range h.Events() {
		if !ev.Done {
			if ts.Stopped() {
				continue
			}
			ids = append(ids, ev.Token)
			all = append(all, ev.Token)
			delta, stopped := ts.Add(ev.Token)
			text += delta
			if stopped {
				h.Cancel()
				continue
			}
			if gr.Stream && (delta != "" || len(ids) > 0) {
				if err := out.Send(Response{Outputs: []Tensor{StringTensor(OutText, text), Int32Tensor(OutIDs, ids...)}}); err != nil {
					// The engine stops at its next step; wait for it to be done with the sequence, which a
					// session may release when this returns.
					h.Cancel()
					for range h.Events() {
					}
					if sess != nil {
						sess.broken = true
					}
					return err
				}
				text, ids = "", ids[:0]
			}
			continue
		}
		if ev.Err != nil {
			if sess != nil {
				sess.broken = true
			}
			if errors.Is(ev.Err, kvcache.ErrNoMemory) {
				return Errorf(CodeUnavailable, "%w", ev.Err)
			}
			return Errorf(CodeInternal, "%w", ev.Err)
		}
		reason := ev.Reason
		if ts.Stopped() {
			reason = sample.FinishStop
			all = all[:ts.Tokens()]
		}
		text += ts.Flush()
		if sess != nil {
			sess.finishTurn(all, reason)
		}
		if n := ev.Stats.GeneratedTokens - 1; n > 0 {
			g.log.Debug().Int("prompt_tokens", ev.Stats.PromptTokens).Int("generated", ev.Stats.GeneratedTokens).
				Dur("queued", ev.Stats.Queued).Dur("prefill", ev.Stats.Prefill).
				Float64("decode_ms_per_token", float64(ev.Stats.Decode.Microseconds())/1000/float64(n)).Msg("request done")
		}
		if reason == sample.FinishCancelled {
			g.log.Info().Msgf("request cancelled after %d tokens; KV pages in use: %d", len(all), g.eng.Pool().InUse()-g.sessionPages())
			return Errorf(CodeCancelled, "request cancelled")
		}
		return out.Send(Response{Final: true, Outputs: []Tensor{
			StringTensor(OutText, text), Int32Tensor(OutIDs, ids...), StringTensor(OutFinish, reason.String()),
			int32Scalar(OutPromptN, len(prompt)), int32Scalar(OutGenerated, len(all)),
		}})
	}
	return fmt.Errorf("engine closed the sequence without a final event")
}

// sessionPages counts the KV pages held by idle chat sessions (so that logs can tell them from leaks).
func (g *Generator) sessionPages() int {
	if g.sessions == nil {
		return 0
	}
	return g.sessions.pages()
}
