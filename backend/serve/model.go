package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/omnikv-triton/omnikv-triton/backend/engine"
)

// Response is one streamed response: output tensors and parameters.
type Response struct {
	Outputs []Tensor
	Params  map[string]Param // STRING, INT and BOOL kinds only
	// Final marks the last response of the request.
	Final bool
}

// Sender delivers the responses of one request to the client. The C adapter in cgo/ implements it
// over a Triton response factory. Calls come from one goroutine at a time.
type Sender interface {
	// Send sends one response; with r.Final it is the last one.
	Send(r Response) error
	// SendError sends err as the final response (code from CodeOf).
	SendError(err error) error
	// Finish sends a final flag with no payload.
	Finish() error
	// Cancelled reports whether the client has gone away. Unlike the other methods it may be
	// called concurrently with them.
	Cancelled() bool
}

// CancelPoll is how often Serve asks the Sender whether the client cancelled.
var CancelPoll = 50 * time.Millisecond

// Model serves requests of one loaded model.
type Model interface {
	// Check runs on Triton's Execute thread before the backend takes ownership of the request: it
	// must be quick and have no side effects. An error is answered to that request alone.
	Check(req *Request) error
	// Run serves req to completion on its own goroutine, sending responses through out. It may end
	// with a Final response, or return: nil makes Serve send the final flag, an error makes Serve
	// send it as the final response. Run stops early when ctx is done.
	Run(ctx context.Context, req *Request, out Sender) error
	// Close releases the model's resources; no Run is in progress.
	Close() error
}

// Serve runs m.Run for req and guarantees that exactly one final response reaches out: the one
// Run sent, or the error Run returned, or a CodeInternal error if Run panicked. Responses that
// Run tries to send after a final one are refused with an error. The ctx given to Run is also
// cancelled, with a CodeCancelled cause, when the client cancels (polled every CancelPoll).
// Serve returns the error that ended the request (nil on success).
func Serve(ctx context.Context, m Model, req *Request, out Sender) (err error) {
	g := &guard{out: out}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go watchCancel(ctx, out, cancel)
	defer func() {
		if p := recover(); p != nil {
			err = &Error{Code: CodeInternal, Err: &PanicError{Value: p, Stack: debug.Stack()}}
		}
		if g.isFinal() {
			return
		}
		if err != nil {
			if serr := g.SendError(err); serr != nil {
				err = fmt.Errorf("%w (and sending it failed: %v)", err, serr)
			}
			return
		}
		err = g.Finish()
	}()
	return m.Run(ctx, req, g)
}

// watchCancel cancels ctx when out reports the client gone; it returns when ctx is done.
func watchCancel(ctx context.Context, out Sender, cancel context.CancelCauseFunc) {
	t := time.NewTicker(CancelPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if out.Cancelled() {
				cancel(Errorf(CodeCancelled, "client cancelled the request"))
				return
			}
		}
	}
}

// PanicError is a recovered panic: Error() says what panicked, Stack holds the goroutine's stack
// for the log (clients see only Error()).
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("internal error: panic: %v", e.Value) }

// guard wraps a Sender and tracks whether the final response went out.
type guard struct {
	mu    sync.Mutex
	out   Sender
	final bool
}

func (g *guard) isFinal() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.final
}

func (g *guard) begin(final bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.final {
		return Errorf(CodeInternal, "response after the final one")
	}
	g.final = final
	return nil
}

func (g *guard) Send(r Response) error {
	if err := g.begin(r.Final); err != nil {
		return err
	}
	return g.out.Send(r)
}

func (g *guard) SendError(err error) error {
	if e := g.begin(true); e != nil {
		return e
	}
	return g.out.SendError(err)
}

func (g *guard) Finish() error {
	if err := g.begin(true); err != nil {
		return err
	}
	return g.out.Finish()
}

func (g *guard) Cancelled() bool { return g.out.Cancelled() }

// Config is what the backend needs from a model's Triton configuration.
type Config struct {
	Name          string
	Version       int64
	RepositoryDir string // the model's directory (holds config.pbtxt and version folders)
	MaxBatchSize  int
	Decoupled     bool
	Instances     int // instances over every instance_group entry (0 when the config names none)
	// Params are the config's `parameters { key: .. value { string_value: .. } }` entries.
	Params map[string]string
	// Backend holds the server's `--backend-config=omnikv,<key>=<value>` settings (plus the
	// entries Triton adds itself, such as "default-max-batch-size").
	Backend map[string]string
	// Metrics, set by the Triton adapter, receives the model's engine metrics (nil: none).
	Metrics engine.Sink
}

// ParseBackendConfig reads the JSON backend configuration Triton hands a backend,
// {"cmdline": {"key": "value", ...}}, into a map.
func ParseBackendConfig(js []byte) (map[string]string, error) {
	var raw struct {
		Cmdline map[string]string `json:"cmdline"`
	}
	if len(js) == 0 {
		return map[string]string{}, nil
	}
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, Errorf(CodeInvalidArg, "backend config JSON: %w", err)
	}
	if raw.Cmdline == nil {
		raw.Cmdline = map[string]string{}
	}
	return raw.Cmdline, nil
}

// ParseConfig reads the JSON form of a model configuration (as Triton serializes it) into a
// Config. Name, version and repository come from elsewhere and are left empty.
func ParseConfig(js []byte) (Config, error) {
	var raw struct {
		Name         string `json:"name"`
		MaxBatchSize int    `json:"max_batch_size"`
		Policy       *struct {
			Decoupled bool `json:"decoupled"`
		} `json:"model_transaction_policy"`
		Parameters map[string]struct {
			StringValue string `json:"string_value"`
		} `json:"parameters"`
		InstanceGroup []struct {
			Count int `json:"count"`
		} `json:"instance_group"`
	}
	if err := json.Unmarshal(js, &raw); err != nil {
		return Config{}, Errorf(CodeInvalidArg, "model config JSON: %w", err)
	}
	cfg := Config{Name: raw.Name, MaxBatchSize: raw.MaxBatchSize, Params: map[string]string{}}
	if raw.Policy != nil {
		cfg.Decoupled = raw.Policy.Decoupled
	}
	for k, v := range raw.Parameters {
		cfg.Params[k] = v.StringValue
	}
	for _, g := range raw.InstanceGroup {
		cfg.Instances += max(g.Count, 1)
	}
	return cfg, nil
}

// InstanceKind is where a model instance runs (values follow TRITONSERVER_InstanceGroupKind).
type InstanceKind int

// Instance kinds.
const (
	KindAuto  InstanceKind = 0
	KindCPU   InstanceKind = 1
	KindGPU   InstanceKind = 2
	KindModel InstanceKind = 3
)

func (k InstanceKind) String() string {
	switch k {
	case KindAuto:
		return "AUTO"
	case KindCPU:
		return "CPU"
	case KindGPU:
		return "GPU"
	case KindModel:
		return "MODEL"
	}
	return fmt.Sprintf("InstanceKind(%d)", int(k))
}

// Instance is one Triton model instance: a placement of the model on a device.
type Instance struct {
	Name     string // e.g. "omnikv_spike_0_0"
	Kind     InstanceKind
	DeviceID int // GPU ordinal for KindGPU
}

// modes maps a config "mode" parameter to the constructor of its per-instance Model.
var modes = map[string]func(cfg Config, inst Instance, log zerolog.Logger) (Model, error){
	"echo": func(cfg Config, inst Instance, log zerolog.Logger) (Model, error) { return NewEcho(cfg, log) },
	"generate": func(cfg Config, inst Instance, log zerolog.Logger) (Model, error) {
		return NewGenerator(cfg, inst, log, false)
	},
	"chat": func(cfg Config, inst Instance, log zerolog.Logger) (Model, error) {
		return NewGenerator(cfg, inst, log, true)
	},
}

// CheckConfig validates a model configuration as a whole, at model load, so that a bad one fails
// there: decoupled, max_batch_size 0 (the engine batches), and a known "mode" parameter. Only
// "echo" (the plumbing test model, see Echo) exists so far; engine-backed modes come with the
// engine.
func CheckConfig(cfg Config) error {
	if !cfg.Decoupled {
		return Errorf(CodeInvalidArg, "model %q: needs model_transaction_policy { decoupled: true }", cfg.Name)
	}
	if cfg.MaxBatchSize != 0 {
		return Errorf(CodeInvalidArg, "model %q: max_batch_size must be 0 (the engine batches), got %d", cfg.Name, cfg.MaxBatchSize)
	}
	if mode := cfg.Params["mode"]; mode == "generate" || mode == "chat" {
		if _, err := ParseGenOptions(cfg); err != nil {
			return err
		}
		if cfg.Instances > 1 {
			return Errorf(CodeInvalidArg, "model %q: instance_group asks for %d instances; this backend runs one instance per model "+
				"(its engine batches every request into each step and owns the model's KV memory budget and chat sessions, "+
				"which separate instances could not share): set count: 1 and raise the parameter max_sequences for more concurrency", cfg.Name, cfg.Instances)
		}
	}
	if _, ok := modes[cfg.Params["mode"]]; !ok {
		known := make([]string, 0, len(modes))
		for m := range modes {
			known = append(known, m)
		}
		sort.Strings(known)
		return Errorf(CodeUnsupported, "model %q: parameter mode %q is not supported (known: %s)", cfg.Name, cfg.Params["mode"], strings.Join(known, ", "))
	}
	return nil
}

// NewModel builds the Model that serves one instance of the model cfg describes.
func NewModel(cfg Config, inst Instance, log zerolog.Logger) (Model, error) {
	if err := CheckConfig(cfg); err != nil {
		return nil, err
	}
	m, err := modes[cfg.Params["mode"]](cfg, inst, log)
	if err != nil {
		return nil, fmt.Errorf("model %q instance %q: %w", cfg.Name, inst.Name, err)
	}
	return m, nil
}
