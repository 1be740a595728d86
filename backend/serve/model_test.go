package serve

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// recorder is a Sender that records what reaches the client.
type recorder struct {
	responses []Response
	errs      []error
	finishes  int
	cancelled atomic.Bool
}

func (r *recorder) Send(resp Response) error { r.responses = append(r.responses, resp); return nil }
func (r *recorder) SendError(err error) error {
	r.errs = append(r.errs, err)
	return nil
}
func (r *recorder) Finish() error   { r.finishes++; return nil }
func (r *recorder) Cancelled() bool { return r.cancelled.Load() }

// finals counts the final responses that reached the client.
func (r *recorder) finals() int {
	n := r.finishes + len(r.errs)
	for _, resp := range r.responses {
		if resp.Final {
			n++
		}
	}
	return n
}

// funcModel adapts a function to Model.
type funcModel func(ctx context.Context, req *Request, out Sender) error

func (f funcModel) Check(*Request) error                                    { return nil }
func (f funcModel) Run(ctx context.Context, req *Request, out Sender) error { return f(ctx, req, out) }
func (f funcModel) Close() error                                            { return nil }

func TestServeSendsExactlyOneFinal(t *testing.T) {
	word := Response{Outputs: []Tensor{StringTensor("text_output", "w")}}
	tests := []struct {
		name      string
		run       funcModel
		wantResp  int
		wantCode  Code // of the error response, if any
		wantErrIn string
	}{
		{"returns nil", func(_ context.Context, _ *Request, out Sender) error {
			return out.Send(word)
		}, 1, -1, ""},
		{"sends final itself", func(_ context.Context, _ *Request, out Sender) error {
			r := word
			r.Final = true
			return out.Send(r)
		}, 1, -1, ""},
		{"returns error", func(_ context.Context, _ *Request, out Sender) error {
			_ = out.Send(word)
			return Errorf(CodeInvalidArg, "bad max_tokens")
		}, 1, CodeInvalidArg, "bad max_tokens"},
		{"panics", func(_ context.Context, _ *Request, out Sender) error {
			_ = out.Send(word)
			panic("boom")
		}, 1, CodeInternal, "internal error: panic: boom"},
		{"error after final is not sent", func(_ context.Context, _ *Request, out Sender) error {
			_ = out.Send(Response{Final: true})
			return errors.New("late")
		}, 1, -1, ""},
		{"send after final refused", func(_ context.Context, _ *Request, out Sender) error {
			_ = out.Finish()
			if err := out.Send(word); err == nil {
				t.Error("Send after Finish: want an error")
			}
			return nil
		}, 0, -1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			err := Serve(context.Background(), tc.run, &Request{ID: "r1"}, rec)
			if got := rec.finals(); got != 1 {
				t.Fatalf("%d final responses, want exactly 1", got)
			}
			if len(rec.responses) != tc.wantResp {
				t.Errorf("%d responses, want %d", len(rec.responses), tc.wantResp)
			}
			if tc.wantCode < 0 {
				if len(rec.errs) != 0 {
					t.Errorf("unexpected error response %v", rec.errs)
				}
				return
			}
			if len(rec.errs) != 1 {
				t.Fatalf("%d error responses, want 1", len(rec.errs))
			}
			if c := CodeOf(rec.errs[0]); c != tc.wantCode {
				t.Errorf("code %v, want %v", c, tc.wantCode)
			}
			if !strings.Contains(rec.errs[0].Error(), tc.wantErrIn) {
				t.Errorf("error %q, want it to contain %q", rec.errs[0], tc.wantErrIn)
			}
			if err == nil {
				t.Error("Serve returned nil for a failed request")
			}
		})
	}
}

func TestServePanicKeepsStack(t *testing.T) {
	err := Serve(context.Background(), funcModel(func(context.Context, *Request, Sender) error { panic("x") }), &Request{}, &recorder{})
	var pe *PanicError
	if !errors.As(err, &pe) || !strings.Contains(string(pe.Stack), "model_test.go") {
		t.Fatalf("want a PanicError with the panicking frame in its stack, got %v", err)
	}
	if strings.Contains(err.Error(), "goroutine") {
		t.Errorf("the client-facing message must not hold the stack: %q", err)
	}
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		err  error
		want Code
	}{
		{nil, CodeUnknown},
		{errors.New("plain"), CodeInternal},
		{Errorf(CodeNotFound, "x"), CodeNotFound},
		{errorsJoin(Errorf(CodeInvalidArg, "inner")), CodeInvalidArg},
		{context.Canceled, CodeCancelled},
		{context.DeadlineExceeded, CodeCancelled},
	}
	for _, tc := range tests {
		if got := CodeOf(tc.err); got != tc.want {
			t.Errorf("CodeOf(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func errorsJoin(err error) error { return errors.Join(errors.New("outer"), err) }

func TestParseConfigAndNewModel(t *testing.T) {
	tests := []struct {
		name    string
		js      string
		wantErr string
	}{
		{"echo", `{"name":"m","max_batch_size":0,"model_transaction_policy":{"decoupled":true},"parameters":{"mode":{"string_value":"echo"}}}`, ""},
		{"not decoupled", `{"name":"m","parameters":{"mode":{"string_value":"echo"}}}`, "decoupled: true"},
		{"batched", `{"name":"m","max_batch_size":8,"model_transaction_policy":{"decoupled":true},"parameters":{"mode":{"string_value":"echo"}}}`, "max_batch_size must be 0"},
		{"unknown mode", `{"name":"m","model_transaction_policy":{"decoupled":true},"parameters":{"mode":{"string_value":"llama"}}}`, `mode "llama" is not supported (known: `},
		{"no mode", `{"name":"m","model_transaction_policy":{"decoupled":true}}`, `mode "" is not supported`},
		{"bad json", `{"name":`, "model config JSON"},
		{"two instances", `{"name":"m","model_transaction_policy":{"decoupled":true},"parameters":{"mode":{"string_value":"generate"},"weights":{"string_value":"model_test.go"}},"instance_group":[{"count":2,"kind":"KIND_CPU"}]}`, "instance_group asks for 2 instances; this backend runs one instance per model"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tc.js))
			cfg.RepositoryDir = "."
			var m Model
			if err == nil {
				m, err = NewModel(cfg, Instance{Name: "m_0", Kind: KindCPU}, zerolog.Nop())
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := m.(*Echo); !ok {
					t.Fatalf("got %T, want *Echo", m)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseBackendConfig(t *testing.T) {
	tests := []struct {
		js      string
		want    map[string]string
		wantErr bool
	}{
		{`{"cmdline":{"auto-complete-config":"true","kv_pages":"64"}}`, map[string]string{"auto-complete-config": "true", "kv_pages": "64"}, false},
		{`{}`, map[string]string{}, false},
		{``, map[string]string{}, false},
		{`{"cmdline":{"n":5}}`, nil, true},
		{`[`, nil, true},
	}
	for _, tc := range tests {
		got, err := ParseBackendConfig([]byte(tc.js))
		if (err != nil) != tc.wantErr {
			t.Fatalf("%s: err = %v, want error %v", tc.js, err, tc.wantErr)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("%s: got %v, want %v", tc.js, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", tc.js, k, got[k], v)
			}
		}
	}
}

func TestServeCancelsContextWhenClientLeaves(t *testing.T) {
	rec := &recorder{}
	started := make(chan struct{})
	run := funcModel(func(ctx context.Context, _ *Request, _ Sender) error {
		close(started)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(10 * time.Second):
			return errors.New("ctx was never cancelled")
		}
	})
	go func() { <-started; rec.cancelled.Store(true) }()
	t0 := time.Now()
	err := Serve(context.Background(), run, &Request{}, rec)
	if CodeOf(err) != CodeCancelled {
		t.Fatalf("err = %v (code %v), want CANCELLED", err, CodeOf(err))
	}
	if d := time.Since(t0); d > 5*CancelPoll+time.Second {
		t.Errorf("cancellation took %v", d)
	}
}
