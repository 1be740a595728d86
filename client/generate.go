package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

// Input and output names of the omnikv models (the vLLM backend's convention).
const (
	InputText         = "text_input"              // BYTES [1]: the prompt, or this turn's user message
	InputStream       = "stream"                  // BOOL [1]: true streams deltas, false one response
	InputMaxTokens    = "max_tokens"              // INT32 [1]: new tokens at most
	InputSampling     = "sampling_parameters"     // BYTES [1]: Sampling as JSON
	InputExcludeInput = "exclude_input_in_output" // BOOL [1]

	OutputText             = "text_output"       // BYTES: text delta (all of it when not streaming)
	OutputIDs              = "output_ids"        // INT32 [n]: token ids of this delta
	OutputFinishReason     = "finish_reason"     // BYTES [1]: "stop", "length", ... on the last
	OutputPromptTokens     = "prompt_tokens"     // INT32 [1]
	OutputCompletionTokens = "completion_tokens" // INT32 [1]
)

// Sampling is the JSON of the sampling_parameters input. Nil fields are left out so the server's
// defaults apply.
type Sampling struct {
	Temperature       *float64 `json:"temperature,omitempty"` // 0 is greedy
	TopK              *int     `json:"top_k,omitempty"`
	TopP              *float64 `json:"top_p,omitempty"`
	MinP              *float64 `json:"min_p,omitempty"`
	RepetitionPenalty *float64 `json:"repetition_penalty,omitempty"`
	Seed              *uint64  `json:"seed,omitempty"`
	Stop              []string `json:"stop,omitempty"`
}

// Ptr returns a pointer to v, for the optional fields of Sampling and GenerateRequest.
func Ptr[T any](v T) *T { return &v }

// Sequence puts a request in a server-side session (Triton's sequence batcher; the omnikv_chat
// model keeps the conversation's KV cache between turns). Exactly one of ID and StringID is set.
type Sequence struct {
	ID       int64  // numeric correlation id, non-zero
	StringID string // string correlation id
	Start    bool   // first request of the sequence
	End      bool   // last request: the server frees the session after it
}

// GenerateRequest is one generation. Only Model and Prompt are required.
type GenerateRequest struct {
	Model   string
	Version string // "" lets the server choose
	ID      string // request id echoed in responses; optional
	Prompt  string
	// Stream asks for one response per decoded piece of text; false asks for one response.
	Stream bool
	// MaxTokens > 0 sends the max_tokens input; 0 leaves it to the server.
	MaxTokens int
	// Sampling, when not nil, is sent as the sampling_parameters input.
	Sampling *Sampling
	// ExcludeInput, when not nil, is sent as exclude_input_in_output.
	ExcludeInput *bool
	// Sequence, when not nil, adds sequence_id / sequence_start / sequence_end parameters.
	Sequence *Sequence
	// Parameters are extra request parameters (bool, int, int64, string, float64, uint64).
	Parameters map[string]any
	// Inputs are extra input tensors, sent after the standard ones; a name given here replaces
	// the standard input of that name.
	Inputs []Tensor
	// Outputs names the outputs to return; empty returns all of the model's outputs.
	Outputs []string
}

// Build turns r into the wire request, inputs in raw form.
func (r GenerateRequest) Build() (*pb.ModelInferRequest, error) {
	if r.Model == "" {
		return nil, errors.New("request: model name is empty")
	}
	if r.MaxTokens < 0 || r.MaxTokens > math.MaxInt32 {
		return nil, fmt.Errorf("request: max_tokens %d out of range", r.MaxTokens)
	}
	inputs := []Tensor{StringTensor(InputText, r.Prompt), BoolTensor(InputStream, r.Stream)}
	if r.MaxTokens > 0 {
		inputs = append(inputs, Int32Tensor(InputMaxTokens, int32(r.MaxTokens)))
	}
	if r.Sampling != nil {
		js, err := json.Marshal(r.Sampling)
		if err != nil {
			return nil, fmt.Errorf("request: sampling_parameters: %w", err)
		}
		inputs = append(inputs, StringTensor(InputSampling, string(js)))
	}
	if r.ExcludeInput != nil {
		inputs = append(inputs, BoolTensor(InputExcludeInput, *r.ExcludeInput))
	}
	for _, extra := range r.Inputs {
		replaced := false
		for i := range inputs {
			if inputs[i].Name == extra.Name {
				inputs[i], replaced = extra, true
			}
		}
		if !replaced {
			inputs = append(inputs, extra)
		}
	}
	params := make(map[string]any, len(r.Parameters)+3)
	for k, v := range r.Parameters {
		params[k] = v
	}
	if s := r.Sequence; s != nil {
		switch {
		case s.ID != 0 && s.StringID != "":
			return nil, errors.New("request: sequence has both a numeric and a string id")
		case s.ID != 0:
			params["sequence_id"] = s.ID
		case s.StringID != "":
			params["sequence_id"] = s.StringID
		default:
			return nil, errors.New("request: sequence has no id")
		}
		params["sequence_start"] = s.Start
		params["sequence_end"] = s.End
	}
	pbParams, err := toParams(params)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	req := &pb.ModelInferRequest{ModelName: r.Model, ModelVersion: r.Version, Id: r.ID, Parameters: pbParams}
	for _, t := range inputs {
		if err := t.check(); err != nil {
			return nil, fmt.Errorf("request: input %w", err)
		}
		req.Inputs = append(req.Inputs, &pb.ModelInferRequest_InferInputTensor{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
		req.RawInputContents = append(req.RawInputContents, t.Raw)
	}
	for _, name := range r.Outputs {
		req.Outputs = append(req.Outputs, &pb.ModelInferRequest_InferRequestedOutputTensor{Name: name})
	}
	return req, nil
}

// Delta is what one streamed response adds.
type Delta struct {
	Index        int     // 0 for the first response of the request
	Text         string  // text_output, its elements joined; "" if absent
	TokenIDs     []int32 // output_ids; nil if absent
	FinishReason string  // finish_reason; "" if absent (only the last response has one)
	// PromptTokens and CompletionTokens hold prompt_tokens and completion_tokens when HasUsage.
	PromptTokens, CompletionTokens int
	HasUsage                       bool
	Final                          bool // the response carried triton_final_response=true
	// Response is the decoded response, for outputs Delta does not name.
	Response *pb.ModelInferResponse
}

// DecodeDelta reads the omnikv outputs of one response. An absent output leaves its field empty;
// an output of the wrong datatype or a malformed one is an error naming it.
func DecodeDelta(resp *pb.ModelInferResponse) (Delta, error) {
	d := Delta{Final: IsFinal(resp), Response: resp}
	outs, err := DecodeOutputs(resp)
	if err != nil {
		return d, err
	}
	for _, o := range outs {
		switch o.Name {
		case OutputText:
			s, err := o.Strings()
			if err != nil {
				return d, err
			}
			d.Text = strings.Join(s, "")
		case OutputIDs:
			if d.TokenIDs, err = o.Int32s(); err != nil {
				return d, err
			}
		case OutputFinishReason:
			s, err := o.Strings()
			if err != nil {
				return d, err
			}
			d.FinishReason = strings.Join(s, "")
		case OutputPromptTokens, OutputCompletionTokens:
			v, err := o.Int32s()
			if err != nil {
				return d, err
			}
			if len(v) != 1 {
				return d, fmt.Errorf("output %q: want 1 value, got %d", o.Name, len(v))
			}
			if o.Name == OutputPromptTokens {
				d.PromptTokens = int(v[0])
			} else {
				d.CompletionTokens = int(v[0])
			}
			d.HasUsage = true
		}
	}
	return d, nil
}

// Result sums up a generation.
type Result struct {
	Text         string  // all deltas' text, in order
	TokenIDs     []int32 // all deltas' output_ids, in order
	FinishReason string  // the last finish_reason seen
	// PromptTokens and CompletionTokens are the last values the server reported (HasUsage).
	PromptTokens, CompletionTokens int
	HasUsage                       bool
	Responses                      int // responses received, the final empty one included
	// FirstToken is the time from sending the request to the first response with text or ids
	// (0 if none came); Elapsed the time to the final response.
	FirstToken, Elapsed time.Duration
}

// Tokens is the number of generated tokens: completion_tokens when the server reported it,
// else the number of output ids.
func (r Result) Tokens() int {
	if r.HasUsage && r.CompletionTokens > 0 {
		return r.CompletionTokens
	}
	return len(r.TokenIDs)
}

// Generate runs req on ModelStreamInfer and calls onDelta (if not nil) for every response,
// the final one included, as it arrives; an error from onDelta stops the generation (the stream
// is cancelled) and is returned. See StreamInfer for the end-of-stream and error rules; on an
// error the Result holds what arrived before it.
func (c *Client) Generate(ctx context.Context, req GenerateRequest, onDelta func(Delta) error) (Result, error) {
	var res Result
	var text strings.Builder
	wire, err := req.Build()
	if err != nil {
		return res, fmt.Errorf("generate: %w", err)
	}
	start := time.Now()
	err = c.StreamInfer(ctx, wire, func(resp *pb.ModelInferResponse) error {
		d, err := DecodeDelta(resp)
		if err != nil {
			return fmt.Errorf("model %q response %d: %w", req.Model, res.Responses, err)
		}
		d.Index = res.Responses
		res.Responses++
		if res.FirstToken == 0 && (d.Text != "" || len(d.TokenIDs) > 0) {
			res.FirstToken = time.Since(start)
		}
		text.WriteString(d.Text)
		res.TokenIDs = append(res.TokenIDs, d.TokenIDs...)
		if d.FinishReason != "" {
			res.FinishReason = d.FinishReason
		}
		if d.HasUsage {
			res.PromptTokens, res.CompletionTokens, res.HasUsage = d.PromptTokens, d.CompletionTokens, true
		}
		if onDelta != nil {
			if err := onDelta(d); err != nil {
				return fmt.Errorf("delta handler: %w", err)
			}
		}
		return nil
	})
	res.Elapsed = time.Since(start)
	res.Text = text.String()
	if err != nil {
		return res, fmt.Errorf("generate: %w", err)
	}
	return res, nil
}
