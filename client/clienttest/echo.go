package clienttest

import (
	"io"
	"strings"
	"sync"
	"time"

	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

// Echo is a decoupled stand-in for the omnikv models. For each request on a stream it answers
// with the words of text_input: with stream=true one response per word (text_output the word,
// with a leading space after the first; output_ids one id, the word's length), then a final
// response holding finish_reason, prompt_tokens and completion_tokens; with stream=false a single
// final response holding all of it. max_tokens caps the words (finish_reason "length", else
// "stop"). A request without text_input gets an error_message. It keeps every request it gets.
type Echo struct {
	// Delay is slept before each response.
	Delay time.Duration

	mu   sync.Mutex
	reqs []*pb.ModelInferRequest
}

// Requests returns the requests received so far.
func (e *Echo) Requests() []*pb.ModelInferRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*pb.ModelInferRequest(nil), e.reqs...)
}

// Handle is the StreamHandler: it answers requests until the client closes its side.
func (e *Echo) Handle(stream pb.GRPCInferenceService_ModelStreamInferServer) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		e.mu.Lock()
		e.reqs = append(e.reqs, req)
		e.mu.Unlock()
		for _, r := range e.answer(req) {
			time.Sleep(e.Delay)
			if err := stream.Send(r); err != nil {
				return err
			}
		}
	}
}

func (e *Echo) answer(req *pb.ModelInferRequest) []*pb.ModelStreamInferResponse {
	id := req.GetId()
	prompt, ok, err := InputString(req, "text_input")
	if err != nil {
		return []*pb.ModelStreamInferResponse{Error(id, err.Error())}
	}
	if !ok {
		return []*pb.ModelStreamInferResponse{Error(id, "input \"text_input\" is missing")}
	}
	stream, _, err := InputBool(req, "stream")
	if err != nil {
		return []*pb.ModelStreamInferResponse{Error(id, err.Error())}
	}
	maxTokens, hasMax, err := InputInt32(req, "max_tokens")
	if err != nil {
		return []*pb.ModelStreamInferResponse{Error(id, err.Error())}
	}
	words := strings.Fields(prompt)
	n, reason := len(words), "stop"
	if hasMax && int(maxTokens) < n {
		n, reason = int(maxTokens), "length"
	}
	texts := make([]string, n)
	ids := make([]int32, n)
	for i := range n {
		texts[i] = words[i]
		if i > 0 {
			texts[i] = " " + words[i]
		}
		ids[i] = int32(len(words[i]))
	}
	usage := []Out{
		Text("finish_reason", reason),
		Int32("prompt_tokens", int32(len(words))),
		Int32("completion_tokens", int32(n)),
	}
	if !stream {
		outs := append([]Out{Text("text_output", strings.Join(texts, "")), Int32("output_ids", ids...)}, usage...)
		return []*pb.ModelStreamInferResponse{Response(id, true, outs...)}
	}
	var out []*pb.ModelStreamInferResponse
	for i := range n {
		out = append(out, Response(id, false, Text("text_output", texts[i]), Int32("output_ids", ids[i])))
	}
	return append(out, Response(id, true, usage...))
}
