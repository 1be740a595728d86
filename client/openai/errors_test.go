package openai

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/omnikv-triton/omnikv-triton/client"
)

func TestFromTriton(t *testing.T) {
	server := func(msg string) error {
		return fmt.Errorf("generate: %w", &client.ServerError{Model: "omnikv", Message: msg})
	}
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"bad input", server("input sampling_parameters: unknown key \"x\""), 400, ""},
		{"KV budget", server("engine: no KV memory for this request after waiting 30s (queue_timeout_s): kv cache: ..."), 503, "server_overloaded"},
		{"session limit", server("session limit reached: 2 chat sessions are open (max_sessions 2); ..."), 503, "server_overloaded"},
		{"model unloading", server("Request for unknown model: 'omnikv' has no available versions"), 503, "server_overloaded"},
		{"model unknown", server("Request for unknown model: 'x' is not found"), 404, "model_not_found"},
		{"backend internal", server("internal error: step panicked"), 500, ""},
		{"Triton down", fmt.Errorf("model \"omnikv\": open stream: %w", status.Error(codes.Unavailable, "connection refused")), 503, "triton_unavailable"},
		{"gRPC not found", status.Error(codes.NotFound, "no model"), 404, "model_not_found"},
		{"client left", fmt.Errorf("x: %w", context.Canceled), 499, "client_closed_request"},
		{"anything else", errors.New("boom"), 500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := fromTriton(tt.err)
			if e.Status != tt.status || e.Code != tt.code {
				t.Errorf("status %d code %q, want %d %q (%v)", e.Status, e.Code, tt.status, tt.code, e)
			}
		})
	}
}
