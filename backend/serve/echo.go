package serve

import (
	"context"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Inputs, outputs and test triggers of the echo model.
const (
	EchoInput  = "text_input"  // BYTES (1): the text to echo
	EchoOutput = "text_output" // BYTES (1) per response: one word
	EchoIndex  = "word_index"  // INT32 (1) per response: the word's index
	// EchoDelayParam is an optional INT request parameter: milliseconds to wait before each word.
	EchoDelayParam = "echo_delay_ms"
	// PanicInCheck and PanicInRun, sent as the whole text, make Echo panic on purpose in Check
	// (on Triton's Execute thread) or in Run (on the request's goroutine). They exist to test
	// the panic boundaries and only the echo model reacts to them.
	PanicInCheck = "omnikv-spike-panic-check"
	PanicInRun   = "omnikv-spike-panic-run"
)

// Echo is the plumbing test model (config parameter mode = "echo"): it streams text_input back
// one word per response (outputs text_output and word_index), then the final flag. Each
// response carries parameters word_index (INT), sequence_start and sequence_end (BOOL) and, for a
// request with a correlation id, sequence_id (INT or STRING), so that tests can see what the
// backend read. It runs no model logic.
type Echo struct {
	name string
	log  zerolog.Logger
}

// NewEcho returns the echo model for cfg.
func NewEcho(cfg Config, log zerolog.Logger) (*Echo, error) {
	return &Echo{name: cfg.Name, log: log}, nil
}

// Check validates text_input and panics on PanicInCheck.
func (e *Echo) Check(req *Request) error {
	text, err := req.InputString(EchoInput)
	if err != nil {
		return err
	}
	if text == PanicInCheck {
		panic("echo: deliberate panic in Check (test trigger)")
	}
	if p, ok := req.Params[EchoDelayParam]; ok && (p.Kind != ParamInt || p.Int < 0 || p.Int > 10_000) {
		return Errorf(CodeInvalidArg, "parameter %s: want an INT in [0, 10000], got %v", EchoDelayParam, p)
	}
	return nil
}

// Run streams the words of text_input.
func (e *Echo) Run(ctx context.Context, req *Request, out Sender) error {
	text, err := req.InputString(EchoInput)
	if err != nil {
		return err
	}
	if text == PanicInRun {
		panic("echo: deliberate panic in Run (test trigger)")
	}
	e.log.Debug().Str("request", req.ID).Int("bytes", len(text)).Msg("echo")
	delay := time.Duration(req.Params[EchoDelayParam].Int) * time.Millisecond
	for i, w := range strings.Fields(text) {
		if delay > 0 {
			select {
			case <-ctx.Done():
				return Errorf(CodeCancelled, "echo: stopped after %d words: %w", i, context.Cause(ctx))
			case <-time.After(delay):
			}
		}
		if out.Cancelled() {
			return Errorf(CodeCancelled, "echo: stopped after %d words: client cancelled the request", i)
		}
		if i > 0 {
			w = " " + w
		}
		resp := Response{
			Outputs: []Tensor{StringTensor(EchoOutput, w), Int32Tensor(EchoIndex, int32(i))},
			Params: map[string]Param{
				"word_index":     {Kind: ParamInt, Int: int64(i)},
				"sequence_start": {Kind: ParamBool, Bool: req.SequenceStart},
				"sequence_end":   {Kind: ParamBool, Bool: req.SequenceEnd},
			},
		}
		switch {
		case req.CorrelationIDString != "":
			resp.Params["sequence_id"] = Param{Kind: ParamString, Str: req.CorrelationIDString}
		case req.CorrelationID != 0:
			resp.Params["sequence_id"] = Param{Kind: ParamInt, Int: int64(req.CorrelationID)}
		}
		if err := out.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

// Close does nothing.
func (e *Echo) Close() error { return nil }
