package openai

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/omnikv-triton/omnikv-triton/client"
	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

// Options configure a Server.
type Options struct {
	// Models are the Triton models served, by the names clients give in "model"; each must be an
	// omnikv generation model (text_input, input_ids, messages, sampling_parameters inputs).
	Models []string
	// APIKey, when not empty, is required as "Authorization: Bearer <key>".
	APIKey string
	// MaxBodyBytes caps a request body (default 16 MiB).
	MaxBodyBytes int64
	// Log receives one line per request (nil: none).
	Log *log.Logger
}

// Server is the gateway's http.Handler. It is safe for concurrent use: each request runs on its
// own Triton streams.
type Server struct {
	c       *client.Client
	opt     Options
	created int64 // Unix seconds, for /v1/models
	mux     *http.ServeMux
}

// NewServer returns a gateway that sends its requests to Triton through c.
func NewServer(c *client.Client, opt Options) *Server {
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = 16 << 20
	}
	s := &Server{c: c, opt: opt, created: time.Now().Unix(), mux: http.NewServeMux()}
	s.mux.HandleFunc("/v1/chat/completions", s.only(http.MethodPost, func(w http.ResponseWriter, r *http.Request) { s.generate(w, r, chatEndpoint) }))
	s.mux.HandleFunc("/v1/completions", s.only(http.MethodPost, func(w http.ResponseWriter, r *http.Request) { s.generate(w, r, completionEndpoint) }))
	s.mux.HandleFunc("/v1/models", s.only(http.MethodGet, s.models))
	s.mux.HandleFunc("/v1/models/{id}", s.only(http.MethodGet, s.model))
	s.mux.HandleFunc("/health", s.only(http.MethodGet, s.health))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "unknown_url",
			Message: fmt.Sprintf("Unknown request URL: %s %s (served: POST /v1/chat/completions, POST /v1/completions, GET /v1/models)", r.Method, r.URL.Path)})
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opt.APIKey != "" && r.URL.Path != "/health" &&
		subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+s.opt.APIKey)) != 1 {
		writeError(w, &Error{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key",
			Message: "Incorrect or missing API key: send it as Authorization: Bearer <key>"})
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			writeError(w, &Error{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed",
				Message: fmt.Sprintf("%s %s is not allowed: use %s", r.Method, r.URL.Path, method)})
			return
		}
		h(w, r)
	}
}

func (s *Server) logf(format string, a ...any) {
	if s.opt.Log != nil {
		s.opt.Log.Printf(format, a...)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *Error) { writeJSON(w, e.Status, e.body()) }

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	list := ModelList{Object: "list", Data: []Model{}}
	for _, m := range s.opt.Models {
		list.Data = append(list.Data, Model{ID: m, Object: "model", Created: s.created, OwnedBy: "omnikv-triton"})
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) model(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !slices.Contains(s.opt.Models, id) {
		writeError(w, modelNotFound(id, s.opt.Models))
		return
	}
	writeJSON(w, http.StatusOK, Model{ID: id, Object: "model", Created: s.created, OwnedBy: "omnikv-triton"})
}

// health answers 200 when Triton is live and every served model is ready, else 503 saying which.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	for _, m := range s.opt.Models {
		ok, err := s.c.ModelReady(ctx, m, "")
		if err != nil || !ok {
			writeError(w, &Error{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "model_not_ready",
				Message: fmt.Sprintf("model %q is not ready on Triton (%v)", m, err)})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// wireRequest builds the Triton request of a job. Package client always sends text_input; a chat
// request (messages) or a token-id prompt (input_ids) must not.
func wireRequest(r client.GenerateRequest) (*pb.ModelInferRequest, error) {
	w, err := r.Build()
	if err != nil {
		return nil, fmt.Errorf("build Triton request: %w", err)
	}
	if r.Prompt == "" {
		for i, in := range w.Inputs {
			if in.GetName() == client.InputText {
				w.Inputs = slices.Delete(w.Inputs, i, i+1)
				w.RawInputContents = slices.Delete(w.RawInputContents, i, i+1)
				break
			}
		}
	}
	return w, nil
}

// generate serves both generation endpoints.
func (s *Server) generate(w http.ResponseWriter, r *http.Request, ep endpoint) {
	start := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opt.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, &Error{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
				Message: fmt.Sprintf("request body over %d bytes", s.opt.MaxBodyBytes)})
			return
		}
		writeError(w, invalid("", "reading the request body: %v", err))
		return
	}
	p, perr := parseRequest(ep, body)
	if perr == nil && !slices.Contains(s.opt.Models, p.model) {
		perr = modelNotFound(p.model, s.opt.Models)
	}
	if perr != nil {
		s.logf("%s %s: %d %s", r.Method, r.URL.Path, perr.Status, perr.Message)
		writeError(w, perr)
		return
	}
	id := newID(map[endpoint]string{chatEndpoint: "chatcmpl-", completionEndpoint: "cmpl-"}[ep])
	created := time.Now().Unix()
	wires := make([]*pb.ModelInferRequest, len(p.jobs))
	for i := range p.jobs {
		p.jobs[i].req.ID = id
		if len(p.jobs) > 1 {
			p.jobs[i].req.ID = fmt.Sprintf("%s-%d", id, i)
		}
		if wires[i], err = wireRequest(p.jobs[i].req); err != nil {
			writeError(w, invalid("", "%v", err))
			return
		}
	}
	res := newResult(p)
	var out *sse
	if p.stream {
		out = &sse{w: w}
	} else {
		for _, j := range p.jobs {
			for i := range p.n {
				res.choices[j.first+i].text = []byte(j.echo)
			}
		}
	}
	var mu sync.Mutex // guards res and out
	err = s.run(r.Context(), p, wires, func(j job, u update) error {
		mu.Lock()
		defer mu.Unlock()
		ds, err := res.apply(p, j, u)
		if err != nil || out == nil {
			return err
		}
		return out.deltas(p, j, id, created, ds)
	})
	u := res.usage()
	if err != nil {
		e := fromTriton(err)
		s.logf("%s %s %s: %d after %v: %v", r.Method, r.URL.Path, id, e.Status, time.Since(start).Round(time.Millisecond), err)
		switch {
		case e.Status == 499: // nobody to tell
		case out != nil && out.started:
			out.event(e.body())
		default:
			writeError(w, e)
		}
		return
	}
	s.logf("%s %s %s: 200 model=%s prompt_tokens=%d completion_tokens=%d in %v", r.Method, r.URL.Path, id, p.model,
		u.PromptTokens, u.CompletionTokens, time.Since(start).Round(time.Millisecond))
	switch {
	case out != nil:
		if p.includeUsage {
			if ep == chatEndpoint {
				out.event(ChatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: p.model, Choices: []ChatChunkChoice{}, Usage: &u})
			} else {
				out.event(Completion{ID: id, Object: "text_completion", Created: created, Model: p.model, Choices: []CompletionChoice{}, Usage: &u})
			}
		}
		out.done()
	case ep == chatEndpoint:
		writeJSON(w, http.StatusOK, res.chatCompletion(p, id, created))
	default:
		writeJSON(w, http.StatusOK, res.completion(p, id, created))
	}
}

// run sends every job's request on its own stream, at once, and calls onUpdate for each response
// (one call at a time per job). The first failure cancels the other streams and is returned; so
// does ctx ending (the HTTP client went away), which cancels every stream and with it the work on
// the server.
func (s *Server) run(ctx context.Context, p *plan, wires []*pb.ModelInferRequest, onUpdate func(job, update) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(wires))
	var wg sync.WaitGroup
	for i, req := range wires {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.c.StreamInfer(ctx, req, func(resp *pb.ModelInferResponse) error {
				u, err := decodeUpdate(resp)
				if err != nil {
					return fmt.Errorf("model %q: %w", p.model, err)
				}
				return onUpdate(p.jobs[i], u)
			})
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	var first error // the failure that cancelled the others, not one of their cancellations
	for _, err := range errs {
		if err != nil && (first == nil || errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled)) {
			first = err
		}
	}
	return first
}

// sse writes server-sent events: "data: <json>\n\n", then "data: [DONE]\n\n". Its headers go out
// with the first event, so that a request the model refuses at once still gets a plain HTTP error.
type sse struct {
	w       http.ResponseWriter
	started bool
	err     error // the first write error; later writes are skipped
}

func (o *sse) write(data []byte) error {
	if o.err != nil {
		return o.err
	}
	if !o.started {
		h := o.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		o.w.WriteHeader(http.StatusOK)
		o.started = true
	}
	if _, err := fmt.Fprintf(o.w, "data: %s\n\n", data); err != nil {
		o.err = fmt.Errorf("write event: %w", err)
		return o.err
	}
	if f, ok := o.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

func (o *sse) event(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	return o.write(b)
}

func (o *sse) done() { _ = o.write([]byte("[DONE]")) }

// deltas writes the chunks for what one response added: per choice, its opening chunk the first
// time (chat: the assistant role; completions with echo: the prompt), a chunk with its new text
// and log-probabilities, and a closing chunk with its finish reason.
func (o *sse) deltas(p *plan, j job, id string, created int64, ds []delta) error {
	chat := func(c ChatChunkChoice) error {
		return o.event(ChatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: p.model, Choices: []ChatChunkChoice{c}})
	}
	text := func(c CompletionChoice) error {
		return o.event(Completion{ID: id, Object: "text_completion", Created: created, Model: p.model, Choices: []CompletionChoice{c}})
	}
	for _, d := range ds {
		c := d.c
		if !c.started {
			c.started = true
			var err error
			switch {
			case p.endpoint == chatEndpoint:
				err = chat(ChatChunkChoice{Index: c.index, Delta: ChatDelta{Role: "assistant", Content: client.Ptr("")}})
			case j.echo != "":
				err = text(CompletionChoice{Index: c.index, Text: j.echo})
			}
			if err != nil {
				return err
			}
		}
		if d.text != "" || len(d.tokens) > 0 {
			var err error
			if p.endpoint == chatEndpoint {
				cc := ChatChunkChoice{Index: c.index, Delta: ChatDelta{Content: client.Ptr(d.text)}}
				if p.topLogprobs >= 0 {
					cc.Logprobs = chatLogprobs(d.tokens, p.topLogprobs)
				}
				err = chat(cc)
			} else {
				tc := CompletionChoice{Index: c.index, Text: d.text}
				if p.topLogprobs >= 0 {
					tc.Logprobs = completionLogprobs(d.tokens, c.offset)
					for _, t := range d.tokens {
						c.offset += len(t.chosen.Token)
					}
				}
				err = text(tc)
			}
			if err != nil {
				return err
			}
		}
		if d.finish {
			var err error
			if p.endpoint == chatEndpoint {
				err = chat(ChatChunkChoice{Index: c.index, FinishReason: client.Ptr(c.finish)})
			} else {
				err = text(CompletionChoice{Index: c.index, FinishReason: client.Ptr(c.finish)})
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}
