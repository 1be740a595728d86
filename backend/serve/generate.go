package serve

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/omnikv-triton/omnikv-triton/backend/engine"
	"github.com/omnikv-triton/omnikv-triton/backend/sample"
)

// Generator serves text generation from one loaded model (modes "generate" and "chat"). It maps Triton
// requests to engine requests and engine events to responses; the engine owns the rest (the device and the
// model, validation, tokenization, sessions, stop strings, memory).
type Generator struct {
	name string
	opt  GenOptions
	log  zerolog.Logger
	eng  *engine.Engine
	chat bool // turns of sequence-batched sessions
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
	t0 := time.Now()
	log.Info().Str("weights", o.Weights).Str("device", device).Msg("loading model")
	eng, err := engine.Open(engine.ModelSpec{Weights: o.Weights, Device: device, MaxContext: o.MaxContext, OmniKV: o.OmniKV}, engine.Options{
		MaxSequences: o.MaxSequences, StepTokens: o.StepTokens, KVDType: o.KVDType,
		ChatTemplate: o.ChatTemplate, MaxSessions: o.MaxSessions, SessionIdle: o.SessionIdle,
		QueueTimeout: o.QueueTimeout, Metrics: cfg.Metrics, ResidentBytes: o.ResidentBudget, OffloadBytes: o.OffloadBudget,
		FreeWatermark: o.FreeWatermark, Logf: func(f string, a ...any) { log.Info().Msgf(f, a...) },
	})
	if err != nil {
		code := CodeInvalidArg
		if engine.KindOf(err) == engine.KindUnavailable {
			code = CodeUnsupported
		}
		return nil, Errorf(code, "model %q: instance %s (KIND_%v): %w", cfg.Name, inst.Name, inst.Kind, err)
	}
	setGoMemoryLimit(o, log)
	log.Info().Str("model", eng.Describe()).Dur("took", time.Since(t0)).Msg("model ready")
	return &Generator{name: cfg.Name, opt: o, log: log, eng: eng, chat: chat}, nil
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

// sessionID returns the engine session id of a chat request's correlation id.
func sessionID(req *Request) (string, error) {
	switch {
	case req.CorrelationIDString != "":
		return req.CorrelationIDString, nil
	case req.CorrelationID != 0:
		return strconv.FormatUint(req.CorrelationID, 10), nil
	}
	return "", Errorf(CodeInvalidArg, "this model keeps chat sessions: the request needs a sequence_id")
}

// Check validates the request's inputs and parameters (no tokenization, no side effects).
func (g *Generator) Check(req *Request) error {
	if !g.chat || !isCloseTurn(req) {
		gr, err := DecodeGenRequest(req, &g.opt)
		if err != nil {
			return err
		}
		if _, err := g.prepare(gr); err != nil {
			return err
		}
	}
	if g.chat {
		id, err := sessionID(req)
		if err != nil {
			return err
		}
		return engineError(g.eng.CheckSession(id, req.SequenceStart))
	}
	return nil
}

// Close stops the engine and frees every session and the model.
func (g *Generator) Close() error {
	g.eng.Close()
	return nil
}

// Run maps the request to the engine and streams the answer.
func (g *Generator) Run(ctx context.Context, req *Request, out Sender) error {
	var ereq engine.GenRequest
	if g.chat {
		id, err := sessionID(req)
		if err != nil {
			return err
		}
		if isCloseTurn(req) {
			if err := g.eng.EndSession(id); err != nil {
				return engineError(err)
			}
			return out.Send(Response{Final: true, Outputs: []Tensor{StringTensor(OutText, ""), Int32Tensor(OutIDs),
				StringTensor(OutFinish, sample.FinishStop.String()), int32Scalar(OutPromptN, 0), int32Scalar(OutGenerated, 0)}})
		}
		ereq.Session, ereq.Start, ereq.End = id, req.SequenceStart, req.SequenceEnd
	}
	gr, err := DecodeGenRequest(req, &g.opt)
	if err != nil {
		return err
	}
	tmpl, err := g.prepare(gr)
	if err != nil {
		return err
	}
	ereq.Text, ereq.IDs, ereq.Messages, ereq.Template, ereq.Params, ereq.Logprobs = gr.Text, gr.IDs, gr.Messages, tmpl, gr.Params, gr.LogprobsSet
	h, err := g.eng.Generate(ctx, ereq)
	if err != nil {
		return engineError(err)
	}
	return g.stream(h, gr, out)
}

// prepare resolves the request's chat template switch: template is the engine's override (nil: the model's
// apply_chat_template decides).
// A templated prompt (messages, or text_input wrapped as a user turn) is left out of text_output unless
// exclude_input_in_output is given false (then text_input is echoed as the client sent it; messages never
// are). Asking for a template the model lacks, or messages with apply_chat_template false, is an error.
func (g *Generator) prepare(gr *GenRequest) (template *bool, err error) {
	has := g.eng.HasChatTemplate()
	switch {
	case gr.Messages != nil && gr.TemplateSet && !gr.Template:
		return nil, Errorf(CodeInvalidArg, "input %s is always rendered with the chat template: drop %s=false, or send text_input", InMessages, InTemplate)
	case gr.Messages != nil && !has:
		return nil, Errorf(CodeInvalidArg, "model %q has no chat template: input %s cannot be rendered (send text_input)", g.name, InMessages)
	case gr.IDs != nil && gr.TemplateSet && gr.Template:
		return nil, Errorf(CodeInvalidArg, "%s=true applies to text_input: input_ids are never templated", InTemplate)
	case gr.Messages == nil && gr.IDs == nil && gr.TemplateSet && gr.Template && !has:
		return nil, Errorf(CodeInvalidArg, "%s=true, but model %q has no chat template (send the text as it is)", InTemplate, g.name)
	}
	if gr.TemplateSet {
		template = &gr.Template
	}
	if !gr.ExcludeSet && g.eng.Templated(engine.GenRequest{Text: gr.Text, IDs: gr.IDs, Messages: gr.Messages, Template: template}) {
		gr.Exclude = true
	}
	return template, nil
}

// stream turns engine events into responses: text and id deltas of every completion when streaming (never
// the prompt, as the vLLM backend), one response otherwise (the prompt text first unless
// exclude_input_in_output); the last response carries finish_reason and the token counts.
func (g *Generator) stream(h *engine.Handle, gr *GenRequest, out Sender) error {
	handles := append([]*engine.Handle{h}, h.Siblings()...)
	comps := make([]*completion, len(handles))
	for i := range comps {
		comps[i] = &completion{}
		if !gr.Stream && !gr.Exclude {
			comps[i].text = gr.Text
		}
	}
	type indexed struct {
		i  int
		ev engine.Event
	}
	events := make(chan indexed)
	stop := make(chan struct{})
	defer close(stop)
	for i, h := range handles {
		go func() {
			for ev := range h.Events() {
				select {
				case events <- indexed{i, ev}:
				case <-stop:
					h.Cancel()
				}
			}
		}()
	}
	// abort cancels every completion and waits until the engine is done with them all.
	abort := func(done int) {
		for _, h := range handles {
			h.Cancel()
		}
		for ; done < len(handles); done++ {
			for x := range events {
				if x.ev.Done {
					break
				}
			}
		}
	}
	done := 0
	for done < len(handles) {
		x := <-events
		c := comps[x.i]
		if !x.ev.Done {
			c.add(x.ev, gr.LogprobsSet, g.eng.TokenText)
			if gr.Stream {
				if err := out.Send(g.response(gr, comps, h.PromptTokens(), false)); err != nil {
					abort(done)
					return err
				}
			}
			continue
		}
		done++
		c.done, c.fin = true, x.ev
		c.text += x.ev.Text
		if err := x.ev.Err; err != nil {
			abort(done)
			return engineError(err)
		}
		if x.ev.Reason == sample.FinishCancelled {
			abort(done)
			g.log.Info().Msgf("request cancelled after %d tokens; KV pages in use: %d (idle sessions hold %d)", c.gen, g.eng.KVPagesInUse(), g.eng.SessionPages())
			return Errorf(CodeCancelled, "request cancelled")
		}
		if st := x.ev.Stats; st.GeneratedTokens > 1 {
			g.log.Debug().Int("prompt_tokens", st.PromptTokens).Int("prefilled", st.PrefillTokens).Int("generated", st.GeneratedTokens).
				Dur("queued", st.Queued).Dur("prefill", st.Prefill).
				Float64("decode_ms_per_token", float64(st.Decode.Microseconds())/1000/float64(st.GeneratedTokens-1)).Msg("request done")
		}
	}
	return out.Send(g.response(gr, comps, h.PromptTokens(), true))
}
