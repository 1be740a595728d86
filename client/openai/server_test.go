package openai

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnikv-triton/omnikv-triton/client"
	"github.com/omnikv-triton/omnikv-triton/client/clienttest"
	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

// fakeTriton is a scripted stand-in for Triton serving the omnikv model, on a real in-process gRPC
// server (clienttest): answer gives the responses to each request (a nil response: send nothing
// more until the stream ends, for 10 s at most). It records the requests, and
// whether a stream's context ended before all responses went out (a cancellation).
type fakeTriton struct {
	answer func(req *pb.ModelInferRequest) []*pb.ModelStreamInferResponse
	delay  time.Duration // before each response

	mu        sync.Mutex
	reqs      []*pb.ModelInferRequest
	cancelled chan struct{} // closed when a stream is cancelled mid-answer
}

func (f *fakeTriton) handle(stream pb.GRPCInferenceService_ModelStreamInferServer) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, req)
		f.mu.Unlock()
		for _, r := range f.answer(req) {
			if r == nil { // silence: send nothing more until the stream ends (at most 10 s)
				select {
				case <-stream.Context().Done():
					close(f.cancelled)
					return stream.Context().Err()
				case <-time.After(10 * time.Second):
					return nil
				}
			}
			select {
			case <-stream.Context().Done():
				close(f.cancelled)
				return stream.Context().Err()
			case <-time.After(f.delay):
			}
			if err := stream.Send(r); err != nil {
				return err
			}
		}
	}
}

// gateway starts f and a gateway in front of it serving model "omnikv"; it returns the gateway's URL.
func gateway(t *testing.T, f *fakeTriton) string {
	t.Helper()
	f.cancelled = make(chan struct{})
	srv := &clienttest.Server{Stream: f.handle}
	addr := srv.Start(t, "omnikv")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	hs := httptest.NewServer(NewServer(c, Options{Models: []string{"omnikv"}}))
	t.Cleanup(hs.Close)
	return hs.URL
}

// final is the omnikv model's last response: texts, finish reasons and counts, one per completion.
func final(texts, finish []string, prompt int32, completion ...int32) *pb.ModelStreamInferResponse {
	return clienttest.Response("", true, clienttest.Text("text_output", texts...), clienttest.Text("finish_reason", finish...),
		clienttest.Int32("prompt_tokens", prompt), clienttest.Int32("completion_tokens", completion...))
}

func piece(texts ...string) *pb.ModelStreamInferResponse {
	return clienttest.Response("", false, clienttest.Text("text_output", texts...))
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// events splits an SSE body into its data payloads.
func events(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	for _, block := range strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n") {
		if !strings.HasPrefix(block, "data: ") {
			t.Fatalf("not an SSE data event: %q", block)
		}
		out = append(out, strings.TrimPrefix(block, "data: "))
	}
	return out
}

// normalize drops the fields that change from run to run (id, created).
func normalize(t *testing.T, js string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatalf("%q: %v", js, err)
	}
	if id, _ := m["id"].(string); id != "" {
		m["id"] = strings.SplitN(id, "-", 2)[0] + "-ID"
	}
	if _, ok := m["created"]; ok {
		m["created"] = 0
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestNonStreaming(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		body     string
		response []*pb.ModelStreamInferResponse
		want     string
	}{
		{
			name:     "chat",
			path:     "/v1/chat/completions",
			body:     `{"model": "omnikv", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0}`,
			response: []*pb.ModelStreamInferResponse{final([]string{"Hello there!"}, []string{"stop"}, 7, 4)},
			want: `{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"Hello there!","refusal":null,"role":"assistant"}}],` +
				`"created":0,"id":"chatcmpl-ID","model":"omnikv","object":"chat.completion","usage":{"completion_tokens":4,"prompt_tokens":7,"total_tokens":11}}`,
		},
		{
			name: "completions, two prompts, n=2, echo",
			path: "/v1/completions",
			body: `{"model": "omnikv", "prompt": ["A", "B"], "n": 2, "echo": true, "max_tokens": 2}`,
			response: []*pb.ModelStreamInferResponse{
				final([]string{" x y", " z"}, []string{"length", "stop"}, 1, 2, 1)},
			want: `{"choices":[{"finish_reason":"length","index":0,"logprobs":null,"text":"A x y"},{"finish_reason":"stop","index":1,"logprobs":null,"text":"A z"},` +
				`{"finish_reason":"length","index":2,"logprobs":null,"text":"B x y"},{"finish_reason":"stop","index":3,"logprobs":null,"text":"B z"}],` +
				`"created":0,"id":"cmpl-ID","model":"omnikv","object":"text_completion","usage":{"completion_tokens":6,"prompt_tokens":2,"total_tokens":8}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := gateway(t, &fakeTriton{answer: func(*pb.ModelInferRequest) []*pb.ModelStreamInferResponse { return tt.response }})
			status, body := post(t, url+tt.path, tt.body)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			if got := normalize(t, body); got != tt.want {
				t.Errorf("body\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestStreaming(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		body     string
		response []*pb.ModelStreamInferResponse
		want     []string // events, normalized
	}{
		{
			name: "chat with usage",
			path: "/v1/chat/completions",
			body: `{"model": "omnikv", "messages": [{"role": "user", "content": "Hi"}], "stream": true, "stream_options": {"include_usage": true}}`,
			response: []*pb.ModelStreamInferResponse{piece("Hel"), piece(""), piece("lo"),
				final([]string{""}, []string{"length"}, 5, 3)},
			want: []string{
				`{"choices":[{"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":0,"id":"chatcmpl-ID","model":"omnikv","object":"chat.completion.chunk"}`,
				`{"choices":[{"delta":{"content":"Hel"},"finish_reason":null,"index":0,"logprobs":null}],"created":0,"id":"chatcmpl-ID","model":"omnikv","object":"chat.completion.chunk"}`,
				`{"choices":[{"delta":{"content":"lo"},"finish_reason":null,"index":0,"logprobs":null}],"created":0,"id":"chatcmpl-ID","model":"omnikv","object":"chat.completion.chunk"}`,
				`{"choices":[{"delta":{},"finish_reason":"length","index":0,"logprobs":null}],"created":0,"id":"chatcmpl-ID","model":"omnikv","object":"chat.completion.chunk"}`,
				`{"choices":[],"created":0,"id":"chatcmpl-ID","model":"omnikv","object":"chat.completion.chunk","usage":{"completion_tokens":3,"prompt_tokens":5,"total_tokens":8}}`,
				`[DONE]`,
			},
		},
		{
			name:     "an error after the first chunk comes as an error event, without [DONE]",
			path:     "/v1/chat/completions",
			body:     `{"model": "omnikv", "messages": [{"role": "user", "content": "Hi"}], "stream": true}`,
			response: []*pb.ModelStreamInferResponse{piece("Hel"), clienttest.Error("", "engine: closed")},
			want: []string{
				`{"choices":[{"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":0,"id":"chatcmpl-ID","model":"omnikv","object":"chat.completion.chunk"}`,
				`{"choices":[{"delta":{"content":"Hel"},"finish_reason":null,"index":0,"logprobs":null}],"created":0,"id":"chatcmpl-ID","model":"omnikv","object":"chat.completion.chunk"}`,
				`{"error":{"code":"server_overloaded","message":"Triton: engine: closed","param":null,"type":"server_error"}}`,
			},
		},
		{
			name:     "completions, n=2, without usage",
			path:     "/v1/completions",
			body:     `{"model": "omnikv", "prompt": "P", "n": 2, "stream": true}`,
			response: []*pb.ModelStreamInferResponse{piece("a", ""), piece("", "b"), final([]string{"", ""}, []string{"stop", "length"}, 1, 1, 1)},
			want: []string{
				`{"choices":[{"finish_reason":null,"index":0,"logprobs":null,"text":"a"}],"created":0,"id":"cmpl-ID","model":"omnikv","object":"text_completion"}`,
				`{"choices":[{"finish_reason":null,"index":1,"logprobs":null,"text":"b"}],"created":0,"id":"cmpl-ID","model":"omnikv","object":"text_completion"}`,
				`{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"text":""}],"created":0,"id":"cmpl-ID","model":"omnikv","object":"text_completion"}`,
				`{"choices":[{"finish_reason":"length","index":1,"logprobs":null,"text":""}],"created":0,"id":"cmpl-ID","model":"omnikv","object":"text_completion"}`,
				`[DONE]`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := gateway(t, &fakeTriton{answer: func(*pb.ModelInferRequest) []*pb.ModelStreamInferResponse { return tt.response }})
			resp, err := http.Post(url+tt.path, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, content type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
			}
			var got []string
			for _, e := range events(t, string(b)) {
				if e != "[DONE]" {
					e = normalize(t, e)
				}
				got = append(got, e)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.want, "\n     "))
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		body   string
		triton string // the model's error_message; "" answers normally
		status int
		want   string // normalized error body
	}{
		{"unknown model, Triton not asked", "/v1/chat/completions", `{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}`, "", 404,
			`{"error":{"code":"model_not_found","message":"The model \"gpt-4\" does not exist on this server (served: omnikv)","param":"model","type":"invalid_request_error"}}`},
		{"backend refuses", "/v1/completions", `{"model": "omnikv", "prompt": "x", "n": 2, "temperature": 0}`, "n must be 1 with greedy sampling", 400,
			`{"error":{"code":null,"message":"Triton: n must be 1 with greedy sampling","param":null,"type":"invalid_request_error"}}`},
		{"backend out of KV memory, streaming", "/v1/completions", `{"model": "omnikv", "prompt": "x", "stream": true}`, "engine: no KV memory for this request", 503,
			`{"error":{"code":"server_overloaded","message":"Triton: engine: no KV memory for this request","param":null,"type":"server_error"}}`},
		{"wrong method", "/v1/models", `{}`, "", 405,
			`{"error":{"code":"method_not_allowed","message":"POST /v1/models is not allowed: use GET","param":null,"type":"invalid_request_error"}}`},
		{"unknown path", "/v1/embeddings", `{}`, "", 404,
			`{"error":{"code":"unknown_url","message":"Unknown request URL: POST /v1/embeddings (served: POST /v1/chat/completions, POST /v1/completions, GET /v1/models)","param":null,"type":"invalid_request_error"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTriton{answer: func(*pb.ModelInferRequest) []*pb.ModelStreamInferResponse {
				if tt.triton != "" {
					return []*pb.ModelStreamInferResponse{clienttest.Error("", tt.triton)}
				}
				return []*pb.ModelStreamInferResponse{final([]string{"ok"}, []string{"stop"}, 1, 1)}
			}}
			url := gateway(t, f)
			status, body := post(t, url+tt.path, tt.body)
			if status != tt.status {
				t.Errorf("status %d, want %d", status, tt.status)
			}
			if got := normalize(t, body); got != tt.want {
				t.Errorf("body\n got %s\nwant %s", got, tt.want)
			}
			if tt.triton == "" && len(f.reqs) != 0 {
				t.Errorf("Triton got %d requests, want none", len(f.reqs))
			}
		})
	}
}

// TestLogprobs checks both layouts against the backend's logprobs output, the chosen token first
// (here the second most likely), -Infinity included.
func TestLogprobs(t *testing.T) {
	lp := `[{"7":{"logprob":-0.5,"rank":2,"decoded_token":" b"},"3":{"logprob":-0.25,"rank":1,"decoded_token":" a"},"9":{"logprob":-Infinity,"rank":3,"decoded_token":"é"}}]`
	resp := clienttest.Response("", true, clienttest.Text("text_output", " b"), clienttest.Text("finish_reason", "length"),
		clienttest.Int32("prompt_tokens", 2), clienttest.Int32("completion_tokens", 1), clienttest.Text("logprobs", lp))
	url := gateway(t, &fakeTriton{answer: func(*pb.ModelInferRequest) []*pb.ModelStreamInferResponse {
		return []*pb.ModelStreamInferResponse{resp}
	}})

	_, body := post(t, url+"/v1/chat/completions", `{"model": "omnikv", "messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 1}`)
	var chat ChatCompletion
	if err := json.Unmarshal([]byte(body), &chat); err != nil || len(chat.Choices) != 1 || chat.Choices[0].Logprobs == nil {
		t.Fatalf("chat answer %s: %v", body, err)
	}
	wantChat := []TokenLogprob{{Token: " b", Logprob: -0.5, Bytes: []int{32, 98}, TopLogprobs: []TopLogprob{{Token: " a", Logprob: -0.25, Bytes: []int{32, 97}}}}}
	if got := chat.Choices[0].Logprobs.Content; !reflect.DeepEqual(got, wantChat) {
		t.Errorf("chat logprobs %+v, want %+v", got, wantChat)
	}

	_, body = post(t, url+"/v1/completions", `{"model": "omnikv", "prompt": "x", "logprobs": 2}`)
	var cmpl Completion
	if err := json.Unmarshal([]byte(body), &cmpl); err != nil || len(cmpl.Choices) != 1 || cmpl.Choices[0].Logprobs == nil {
		t.Fatalf("completion answer %s: %v", body, err)
	}
	wantCmpl := &CompletionLogprobs{Tokens: []string{" b"}, TokenLogprobs: []float64{-0.5},
		TopLogprobs: []map[string]float64{{" b": -0.5, " a": -0.25, "é": -9999}}, TextOffset: []int{0}}
	if got := cmpl.Choices[0].Logprobs; !reflect.DeepEqual(got, wantCmpl) {
		t.Errorf("completion logprobs %+v, want %+v", got, wantCmpl)
	}
}

// TestStreamedLogprobs checks that each streamed completion chunk carries its own tokens, with
// text offsets running on across chunks.
func TestStreamedLogprobs(t *testing.T) {
	tok := func(id int, text string) string {
		return `[{"` + fmt.Sprint(id) + `":{"logprob":-0.5,"rank":1,"decoded_token":"` + text + `"}}]`
	}
	step := func(text string, id int) *pb.ModelStreamInferResponse {
		return clienttest.Response("", false, clienttest.Text("text_output", text), clienttest.Text("logprobs", tok(id, text)))
	}
	url := gateway(t, &fakeTriton{answer: func(*pb.ModelInferRequest) []*pb.ModelStreamInferResponse {
		return []*pb.ModelStreamInferResponse{step("ab", 1), step("cde", 2), final([]string{""}, []string{"length"}, 1, 2)}
	}})
	status, body := post(t, url+"/v1/completions", `{"model": "omnikv", "prompt": "x", "logprobs": 0, "stream": true}`)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var offsets [][]int
	for _, e := range events(t, body) {
		var c Completion
		if e == "[DONE]" || json.Unmarshal([]byte(e), &c) != nil || len(c.Choices) == 0 || c.Choices[0].Logprobs == nil {
			continue
		}
		offsets = append(offsets, c.Choices[0].Logprobs.TextOffset)
	}
	if want := [][]int{{0}, {2}}; !reflect.DeepEqual(offsets, want) {
		t.Errorf("text offsets per chunk %v, want %v", offsets, want)
	}
}

// TestDisconnectCancels checks that a client leaving mid-stream cancels the Triton stream: when
// the model is silent (only the HTTP request's context can tell), and when it keeps sending (the
// failed write stops it too).
func TestDisconnectCancels(t *testing.T) {
	for _, tt := range []struct {
		name   string
		silent bool
	}{{"silent model", true}, {"talking model", false}} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTriton{delay: 20 * time.Millisecond, answer: func(*pb.ModelInferRequest) []*pb.ModelStreamInferResponse {
				out := []*pb.ModelStreamInferResponse{piece("a"), piece("b")}
				if tt.silent {
					return append(out, nil)
				}
				for range 500 {
					out = append(out, piece("tok "))
				}
				return append(out, final([]string{""}, []string{"length"}, 1, 502))
			}}
			url := gateway(t, f)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions",
				strings.NewReader(`{"model": "omnikv", "messages": [{"role": "user", "content": "x"}], "stream": true}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(resp.Body)
			for range 6 { // the role chunk and two pieces, each an event line and a blank line
				if _, err := r.ReadString('\n'); err != nil {
					t.Fatal(err)
				}
			}
			cancel()
			resp.Body.Close()
			select {
			case <-f.cancelled:
			case <-time.After(5 * time.Second):
				t.Fatal("the Triton stream was not cancelled 5 s after the client left")
			}
		})
	}
}

func TestModels(t *testing.T) {
	url := gateway(t, &fakeTriton{})
	resp, err := http.Get(url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list ModelList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if list.Object != "list" || len(list.Data) != 1 || list.Data[0].ID != "omnikv" || list.Data[0].Object != "model" {
		t.Errorf("models %+v", list)
	}
	status, _ := func() (int, string) {
		r, err := http.Get(url + "/v1/models/nope")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		return r.StatusCode, ""
	}()
	if status != http.StatusNotFound {
		t.Errorf("GET /v1/models/nope: %d, want 404", status)
	}
}

func TestAPIKey(t *testing.T) {
	hs := httptest.NewServer(NewServer(nil, Options{Models: []string{"omnikv"}, APIKey: "sesame"}))
	defer hs.Close()
	for _, tt := range []struct {
		auth   string
		status int
	}{{"", 401}, {"Bearer nope", 401}, {"sesame", 401}, {"Bearer sesame", 200}} {
		req, _ := http.NewRequest(http.MethodGet, hs.URL+"/v1/models", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("Authorization %q: status %d, want %d", tt.auth, resp.StatusCode, tt.status)
		}
	}
}
