package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnikv-triton/omnikv-triton/client/clienttest"
	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

// runCLI runs the command against addr with stdin and returns the exit code, stdout and stderr.
func runCLI(t *testing.T, ctx context.Context, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), false, &out, &errOut)
	return code, out.String(), errOut.String()
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGenerate(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		stdout  string
		stats   *regexp.Regexp
		request func(t *testing.T, r *pb.ModelInferRequest)
	}{
		{
			name:   "stream",
			args:   []string{"--stream", "--prompt", "one two three"},
			stdout: "one two three\n",
			stats:  regexp.MustCompile(`^tokens=3 seconds=\d+\.\d{3} tokens/s=\d+\.\d\d ttft=\d+\.\d{3}s prompt_tokens=3 finish=stop( decode_tokens/s=\S+)?\n$`),
			request: func(t *testing.T, r *pb.ModelInferRequest) {
				if b, _, _ := clienttest.InputBool(r, "stream"); !b {
					t.Errorf("stream input false")
				}
				if _, ok, _ := clienttest.Input(r, "sampling_parameters"); ok {
					t.Errorf("sampling_parameters sent without sampling flags")
				}
			},
		},
		{
			name:   "sampling flags and max tokens",
			args:   []string{"--prompt", "a b c d", "--max-tokens", "2", "--temperature", "0", "--seed", "7", "--top-k", "5", "--exclude-input"},
			stdout: "a b\n",
			stats:  regexp.MustCompile(`^tokens=2 .* finish=length`),
			request: func(t *testing.T, r *pb.ModelInferRequest) {
				if v, _, _ := clienttest.InputInt32(r, "max_tokens"); v != 2 {
					t.Errorf("max_tokens = %d", v)
				}
				js, _, _ := clienttest.InputString(r, "sampling_parameters")
				if js != `{"temperature":0,"top_k":5,"seed":7}` {
					t.Errorf("sampling_parameters = %s", js)
				}
				if b, ok, _ := clienttest.InputBool(r, "exclude_input_in_output"); !ok || !b {
					t.Errorf("exclude_input_in_output = %v (sent %v)", b, ok)
				}
				if _, ok, _ := clienttest.InputBool(r, "apply_chat_template"); ok {
					t.Errorf("apply_chat_template sent without --raw")
				}
			},
		},
		{
			name:   "raw",
			args:   []string{"--prompt", "a b", "--raw"},
			stdout: "a b\n",
			stats:  regexp.MustCompile(`^tokens=2 `),
			request: func(t *testing.T, r *pb.ModelInferRequest) {
				if b, ok, _ := clienttest.InputBool(r, "apply_chat_template"); !ok || b {
					t.Errorf("apply_chat_template = %v (sent %v), want false", b, ok)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			echo := &clienttest.Echo{}
			addr := (&clienttest.Server{Stream: echo.Handle}).Start(t)
			code, out, errOut := runCLI(t, testCtx(t), "", append([]string{"generate", "--url", addr, "--model", "omnikv"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if out != tt.stdout {
				t.Errorf("stdout %q, want %q", out, tt.stdout)
			}
			if !tt.stats.MatchString(errOut) {
				t.Errorf("stderr %q does not match %v", errOut, tt.stats)
			}
			reqs := echo.Requests()
			if len(reqs) != 1 || reqs[0].GetModelName() != "omnikv" {
				t.Fatalf("server got %d requests", len(reqs))
			}
			tt.request(t, reqs[0])
		})
	}
}

func TestChat(t *testing.T) {
	type turn struct {
		text       string
		start, end bool
	}
	tests := []struct {
		name  string
		flags []string
		turns []turn
	}{
		{"piped: the last line ends", nil, []turn{{"hello there", true, false}, {"how are you", false, true}}},
		{"closing turn", []string{"--end", "turn"}, []turn{{"hello there", true, false}, {"how are you", false, false}, {" ", false, true}}},
		{"left open", []string{"--end", "none"}, []turn{{"hello there", true, false}, {"how are you", false, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			echo := &clienttest.Echo{}
			addr := (&clienttest.Server{Stream: echo.Handle}).Start(t)
			args := append([]string{"chat", "--url", addr, "--sequence-id", "42"}, tt.flags...)
			code, out, errOut := runCLI(t, testCtx(t), "hello there\n\n  \nhow are you\n", args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if out != "hello there\n\nhow are you\n\n" {
				t.Errorf("stdout %q", out)
			}
			reqs := echo.Requests()
			if len(reqs) != len(tt.turns) {
				t.Fatalf("server got %d requests, want %d", len(reqs), len(tt.turns))
			}
			for i, w := range tt.turns {
				r := reqs[i]
				p := r.GetParameters()
				text, _, _ := clienttest.InputString(r, "text_input")
				exclude, _, _ := clienttest.InputBool(r, "exclude_input_in_output")
				if r.GetModelName() != "omnikv_chat" || p["sequence_id"].GetInt64Param() != 42 || text != w.text || !exclude ||
					p["sequence_start"].GetBoolParam() != w.start || p["sequence_end"].GetBoolParam() != w.end {
					t.Errorf("request %d: model %q text %q exclude %v params %v; want text %q start %v end %v",
						i, r.GetModelName(), text, exclude, p, w.text, w.start, w.end)
				}
			}
		})
	}
}

// TestChatFailedTurn: a turn the server rejects is reported, and the next turn starts the sequence.
func TestChatFailedTurn(t *testing.T) {
	var (
		mu   sync.Mutex
		reqs []*pb.ModelInferRequest
	)
	handler := func(s pb.GRPCInferenceService_ModelStreamInferServer) error {
		r, err := s.Recv()
		if err != nil {
			return err
		}
		mu.Lock()
		reqs = append(reqs, r)
		n := len(reqs)
		mu.Unlock()
		if n == 1 {
			return s.Send(clienttest.Error("", "prompt too long"))
		}
		return s.Send(clienttest.Response("", true, clienttest.Text("text_output", "ok")))
	}
	addr := (&clienttest.Server{Stream: handler}).Start(t)
	code, out, errOut := runCLI(t, testCtx(t), "first\nsecond\n", "chat", "--url", addr, "--end", "none")
	if code != 1 || !strings.Contains(errOut, "turn failed") || !strings.Contains(errOut, "prompt too long") || !strings.Contains(errOut, "1 turn(s) failed") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if out != "\n\nok\n\n" {
		t.Errorf("stdout %q", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (no closing turn with --end none)", len(reqs))
	}
	id := reqs[0].GetParameters()["sequence_id"].GetInt64Param()
	if id <= 0 || reqs[1].GetParameters()["sequence_id"].GetInt64Param() != id {
		t.Errorf("sequence ids %v, %v", reqs[0].GetParameters(), reqs[1].GetParameters())
	}
	if !reqs[1].GetParameters()["sequence_start"].GetBoolParam() {
		t.Errorf("second turn does not start the sequence after the first failed")
	}
}

func TestExitCodes(t *testing.T) {
	echo := &clienttest.Echo{Delay: 200 * time.Millisecond}
	addr := (&clienttest.Server{Stream: echo.Handle}).Start(t, "omnikv")
	tests := []struct {
		name   string
		after  time.Duration // > 0: interrupt (cancel the context) after this long
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no command", 0, nil, 2, "", "usage:"},
		{"unknown command", 0, []string{"fly"}, 2, "", `unknown command "fly"`},
		{"missing prompt", 0, []string{"generate", "--url", addr}, 2, "", "--prompt or --prompt-file is required"},
		{"bad flag", 0, []string{"generate", "--temperature", "hot"}, 2, "", "invalid value"},
		{"bad end mode", 0, []string{"chat", "--url", addr, "--end", "never"}, 2, "", "--end must be"},
		{"stray argument", 0, []string{"health", "--url", addr, "extra"}, 2, "", "unexpected arguments"},
		{"health", 0, []string{"health", "--url", addr, "--model", "omnikv"}, 0, "live=true ready=true model omnikv ready=true\n", ""},
		{"health unknown model", 0, []string{"health", "--url", addr, "--model", "x"}, 1, "live=true ready=true\n", `ModelReady "x"`},
		{"unload", 0, []string{"unload", "--url", addr, "--model", "omnikv"}, 0, "unloaded omnikv\n", ""},
		{"load", 0, []string{"load", "--url", addr, "--model", "omnikv"}, 0, "loaded omnikv\n", ""},
		{"interrupted", 300 * time.Millisecond, []string{"generate", "--url", addr, "--stream", "--prompt", "a b c d e f"}, 130, "a\n", "interrupted"},
		{"no server", 0, []string{"generate", "--url", "127.0.0.1:1", "--dial-timeout", "200ms", "--prompt", "x"}, 1, "", "connection not ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			if tt.after > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(tt.after, cancel)
			}
			code, out, errOut := runCLI(t, ctx, "", tt.args...)
			if code != tt.code || out != tt.stdout || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("exit %d stdout %q stderr %q; want exit %d stdout %q stderr containing %q", code, out, errOut, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestChatInterruptWhileReading: an interrupt while chat waits for a line ends it at once, even
// though stdin stays open.
func TestChatInterruptWhileReading(t *testing.T) {
	echo := &clienttest.Echo{}
	addr := (&clienttest.Server{Stream: echo.Handle}).Start(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(testCtx(t))
	go func() {
		_, _ = io.WriteString(pw, "first turn\n")
		time.Sleep(300 * time.Millisecond)
		cancel()
	}()
	var out, errOut bytes.Buffer
	done := make(chan int)
	go func() { done <- run(ctx, []string{"chat", "--url", addr, "--end", "turn"}, pr, false, &out, &errOut) }()
	select {
	case code := <-done:
		if code != 130 || !strings.Contains(errOut.String(), "waiting for input") {
			t.Errorf("exit %d, stderr %q", code, errOut.String())
		}
		if out.String() != "first turn\n\n" || len(echo.Requests()) != 1 {
			t.Errorf("stdout %q after %d requests", out.String(), len(echo.Requests()))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("chat still waiting for input 5s after the interrupt")
	}
}
