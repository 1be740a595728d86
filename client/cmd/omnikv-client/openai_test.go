package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnikv-triton/omnikv-triton/client/clienttest"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader at a time.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestOpenAI serves the gateway on a free port in front of the Echo model, answers one completion
// through it, and stops it with an interrupt (exit 0).
func TestOpenAI(t *testing.T) {
	echo := &clienttest.Echo{}
	addr := (&clienttest.Server{Stream: echo.Handle}).Start(t, "omnikv")
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var errOut syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"openai", "--url", addr, "--listen", "127.0.0.1:0"}, strings.NewReader(""), false, io.Discard, &errOut)
	}()
	serving := regexp.MustCompile(`on (http://\S+/v1) `)
	var base string
	for deadline := time.Now().Add(5 * time.Second); base == ""; time.Sleep(10 * time.Millisecond) {
		if m := serving.FindStringSubmatch(errOut.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("gateway not serving after 5 s; stderr: %s", errOut.String())
		}
	}
	resp, err := http.Post(base+"/completions", "application/json", strings.NewReader(`{"model": "omnikv", "prompt": "one two three", "max_tokens": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		Choices []struct {
			Text         string `json:"text"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || len(c.Choices) != 1 {
		t.Fatalf("answer: %v %+v", err, c)
	}
	if c.Choices[0].Text != "one two" || c.Choices[0].FinishReason != "length" {
		t.Errorf("choice %+v, want the echo's first two words and length", c.Choices[0])
	}
	cancel()
	select {
	case got := <-code:
		if got != 0 {
			t.Errorf("exit %d after an interrupt, want 0; stderr: %s", got, errOut.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("gateway still running 5 s after the interrupt")
	}
	if !strings.Contains(errOut.String(), "POST /v1/completions cmpl-") {
		t.Errorf("no request log line; stderr: %s", errOut.String())
	}
}

func TestOpenAIUsage(t *testing.T) {
	addr := (&clienttest.Server{Stream: (&clienttest.Echo{}).Handle}).Start(t, "omnikv")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no model", []string{"openai", "--model", " , "}, 2, "--model names no model"},
		{"no server", []string{"openai", "--url", "127.0.0.1:1", "--dial-timeout", "200ms"}, 1, "connection not ready"},
		{"empty url", []string{"openai", "--url", ""}, 1, "empty address"},
		{"bad listen address", []string{"openai", "--url", addr, "--listen", "nowhere"}, 1, "listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, testCtx(t), "", tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("exit %d stderr %q; want %d and %q", code, errOut, tt.code, tt.stderr)
			}
		})
	}
}
