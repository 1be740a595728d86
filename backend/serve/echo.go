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
	// EchoDelayParam is an optional INT request parameter: milliseconds to wait before each word.
	EchoDelayParam = "echo_delay_ms"
	// PanicInCheck and PanicInRun, sent as the whole text, make Echo panic on purpose in Check
	// (on Triton's Execute thread) or in Run (on the request's goroutine). They exist to test
	// the panic boundaries and only the echo model reacts to them.
	PanicInCheck = "omnikv-spike-panic-check"
	PanicInRun   = "omnikv-spike-panic-run"
)

// Echo is the plumbing test model (config parameter mode = "echo"): it streams text_input back
// one word per response, then the final flag. It runs no model logic.
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
		if err := out.Send(Response{Outputs: []Tensor{StringTensor(EchoOutput, w)}}); err != nil {
			return err
		}
	}
	return nil
}

// Close does nothing.
func (e *Echo) Close() error { return nil }
