package client

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnikv-triton/omnikv-triton/client/clienttest"
	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

// dial starts srv and returns a client connected to it.
func dial(t *testing.T, srv *clienttest.Server, models ...string) *Client {
	t.Helper()
	addr := srv.Start(t, models...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGenerateEcho(t *testing.T) {
	tests := []struct {
		name      string
		req       GenerateRequest
		deltas    []string // text of each delta, in order
		text      string
		ids       []int32
		finish    string
		responses int
		usage     [2]int
	}{
		{
			name:   "streamed",
			req:    GenerateRequest{Model: "omnikv", Prompt: "the quick brown fox", Stream: true},
			deltas: []string{"the", " quick", " brown", " fox", ""}, text: "the quick brown fox",
			ids: []int32{3, 5, 5, 3}, finish: "stop", responses: 5, usage: [2]int{4, 4},
		},
		{
			name:   "streamed, cut by max_tokens",
			req:    GenerateRequest{Model: "omnikv", Prompt: "a bb ccc dddd", Stream: true, MaxTokens: 2},
			deltas: []string{"a", " bb", ""}, text: "a bb", ids: []int32{1, 2}, finish: "length", responses: 3, usage: [2]int{4, 2},
		},
		{
			name:   "one response",
			req:    GenerateRequest{Model: "omnikv", Prompt: "x yz"},
			deltas: []string{"x yz"}, text: "x yz", ids: []int32{1, 2}, finish: "stop", responses: 1, usage: [2]int{2, 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			echo := &clienttest.Echo{}
			c := dial(t, &clienttest.Server{Stream: echo.Handle})
			var deltas []string
			res, err := c.Generate(testCtx(t), tt.req, func(d Delta) error {
				if d.Index != len(deltas) {
					t.Errorf("delta index %d, want %d", d.Index, len(deltas))
				}
				deltas = append(deltas, d.Text)
				return nil
			})
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if !slices.Equal(deltas, tt.deltas) {
				t.Errorf("deltas = %q, want %q", deltas, tt.deltas)
			}
			if res.Text != tt.text || !slices.Equal(res.TokenIDs, tt.ids) || res.FinishReason != tt.finish || res.Responses != tt.responses {
				t.Errorf("result = %+v", res)
			}
			if !res.HasUsage || res.PromptTokens != tt.usage[0] || res.CompletionTokens != tt.usage[1] || res.Tokens() != tt.usage[1] {
				t.Errorf("usage = %v %d/%d, want %v", res.HasUsage, res.PromptTokens, res.CompletionTokens, tt.usage)
			}
			if res.FirstToken <= 0 || res.FirstToken > res.Elapsed {
				t.Errorf("first token %v, elapsed %v", res.FirstToken, res.Elapsed)
			}
			reqs := echo.Requests()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests", len(reqs))
			}
			if !reqs[0].GetParameters()["triton_enable_empty_final_response"].GetBoolParam() {
				t.Errorf("request lacks triton_enable_empty_final_response=true: %v", reqs[0].GetParameters())
			}
			if s, _, _ := clienttest.InputString(reqs[0], "text_input"); s != tt.req.Prompt {
				t.Errorf("server read text_input %q", s)
			}
		})
	}
}

// script returns a handler that reads the request and sends resps in order, then returns end.
func script(end error, resps ...*pb.ModelStreamInferResponse) clienttest.StreamHandler {
	return func(s pb.GRPCInferenceService_ModelStreamInferServer) error {
		if _, err := s.Recv(); err != nil {
			return err
		}
		for _, r := range resps {
			if err := s.Send(r); err != nil {
				return err
			}
		}
		return end
	}
}

func TestStreamEnd(t *testing.T) {
	text := func(s string, final bool) *pb.ModelStreamInferResponse {
		return clienttest.Response("", final, clienttest.Text("text_output", s))
	}
	tests := []struct {
		name    string
		handler clienttest.StreamHandler
		text    string
		n       int
		wantErr string
	}{
		{"stops at the final flag", script(nil, text("a", false), text("b", true), text("late", false)), "ab", 2, ""},
		{"bare final", script(nil, text("a", false), clienttest.Response("", true)), "a", 2, ""},
		{"clean close after a response", script(nil, text("only", false)), "only", 1, ""},
		{"clean close without a response", script(nil), "", 0, "closed the stream without a response"},
		{"server error message", script(nil, text("a", false), clienttest.Error("", "boom: bad sampling_parameters")), "a", 1, "server error: boom: bad sampling_parameters"},
		{"rpc error", script(errors.New("handler failed"), text("a", false)), "a", 1, "handler failed"},
		{"malformed response", script(nil, clienttest.Response("", true, clienttest.Out{Name: "text_output", Datatype: "BYTES", Shape: []int64{1}, Raw: []byte{1}})), "", 0, "need a 4-byte length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, &clienttest.Server{Stream: tt.handler})
			var got strings.Builder
			res, err := c.Generate(testCtx(t), GenerateRequest{Model: "m", Prompt: "p", Stream: true}, func(d Delta) error {
				got.WriteString(d.Text)
				return nil
			})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Generate() error = %v, want %q", err, tt.wantErr)
			}
			if got.String() != tt.text || res.Text != tt.text || res.Responses != tt.n {
				t.Errorf("deltas %q, result %q in %d responses; want %q in %d", got.String(), res.Text, res.Responses, tt.text, tt.n)
			}
		})
	}
}

func TestServerErrorType(t *testing.T) {
	c := dial(t, &clienttest.Server{Stream: script(nil, clienttest.Error("r9", "model not ready"))})
	_, err := c.Generate(testCtx(t), GenerateRequest{Model: "omnikv", ID: "r9", Prompt: "p"}, nil)
	var se *ServerError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *ServerError", err, err)
	}
	if se.Model != "omnikv" || se.ID != "r9" || se.Message != "model not ready" {
		t.Errorf("ServerError = %+v", se)
	}
}

// TestCancel checks that ending the call (context cancelled, or the delta handler failing)
// cancels the stream on the server, which a backend relies on to stop decoding.
func TestCancel(t *testing.T) {
	stop := errors.New("enough")
	tests := []struct {
		name    string
		handler func(cancel context.CancelFunc) error
		want    error
	}{
		{"context cancelled", func(cancel context.CancelFunc) error { cancel(); return nil }, context.Canceled},
		{"handler error", func(context.CancelFunc) error { return stop }, stop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serverSawCancel := make(chan struct{})
			handler := func(s pb.GRPCInferenceService_ModelStreamInferServer) error {
				if _, err := s.Recv(); err != nil {
					return err
				}
				if err := s.Send(clienttest.Response("", false, clienttest.Text("text_output", "tok"))); err != nil {
					return err
				}
				select { // a real model keeps decoding until it sees the cancellation
				case <-s.Context().Done():
					close(serverSawCancel)
				case <-time.After(10 * time.Second):
				}
				return nil
			}
			c := dial(t, &clienttest.Server{Stream: handler})
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			res, err := c.Generate(ctx, GenerateRequest{Model: "m", Prompt: "p", Stream: true}, func(Delta) error { return tt.handler(cancel) })
			if !errors.Is(err, tt.want) {
				t.Fatalf("Generate() error = %v, want %v", err, tt.want)
			}
			if res.Text != "tok" {
				t.Errorf("partial result %q, want %q", res.Text, "tok")
			}
			select {
			case <-serverSawCancel:
			case <-time.After(5 * time.Second):
				t.Fatal("server stream not cancelled 5s after Generate returned")
			}
		})
	}
}

func TestHealthAndRepository(t *testing.T) {
	srv := &clienttest.Server{NotReady: true}
	c := dial(t, srv, "omnikv")
	ctx := testCtx(t)
	if live, err := c.Live(ctx); err != nil || !live {
		t.Errorf("Live = %v, %v", live, err)
	}
	if ready, err := c.Ready(ctx); err != nil || ready {
		t.Errorf("Ready = %v, %v; want false", ready, err)
	}
	if ready, err := c.ModelReady(ctx, "omnikv", ""); err != nil || !ready {
		t.Errorf("ModelReady(omnikv) = %v, %v", ready, err)
	}
	if _, err := c.ModelReady(ctx, "nope", ""); err == nil || !strings.Contains(err.Error(), `ModelReady "nope"`) {
		t.Errorf("ModelReady(nope) error = %v", err)
	}
	if err := c.Unload(ctx, "omnikv"); err != nil {
		t.Fatalf("Unload: %v", err)
	}
	if ready, _ := c.ModelReady(ctx, "omnikv", ""); ready {
		t.Errorf("ready after unload")
	}
	if err := c.Load(ctx, "omnikv", `{"max_batch_size":0}`); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := c.Unload(ctx, "ghost"); err == nil || !strings.Contains(err.Error(), `unload model "ghost"`) {
		t.Errorf("Unload(ghost) error = %v", err)
	}
	want := []string{"unload omnikv", `load omnikv config={"max_batch_size":0}`}
	if got := srv.Calls(); !slices.Equal(got, want) {
		t.Errorf("server calls = %q, want %q", got, want)
	}
	// An RPC the test server does not implement comes back as an error, not a hang.
	if _, err := c.Generate(ctx, GenerateRequest{Model: "m"}, nil); err == nil || !strings.Contains(err.Error(), "no stream handler") {
		t.Errorf("Generate without handler: %v", err)
	}
}

func TestDialFails(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, addr); err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), addr) {
		t.Errorf("Dial(closed port) = %v, want a deadline error naming %s", err, addr)
	}
	if _, err := Dial(ctx, "grpc://"); err == nil || !strings.Contains(err.Error(), "empty address") {
		t.Errorf("Dial(empty) = %v", err)
	}
}
