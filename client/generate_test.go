package client

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/client/clienttest"
	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

func TestBuild(t *testing.T) {
	tests := []struct {
		name    string
		req     GenerateRequest
		wantErr string
		check   func(t *testing.T, r *pb.ModelInferRequest)
	}{
		{
			name: "minimal",
			req:  GenerateRequest{Model: "omnikv", Prompt: "hi"},
			check: func(t *testing.T, r *pb.ModelInferRequest) {
				wantInputs(t, r, "text_input", "stream")
				if s, _, _ := clienttest.InputString(r, "text_input"); s != "hi" {
					t.Errorf("text_input = %q", s)
				}
				if b, _, _ := clienttest.InputBool(r, "stream"); b {
					t.Errorf("stream = true")
				}
				if len(r.GetParameters()) != 0 {
					t.Errorf("parameters = %v, want none", r.GetParameters())
				}
			},
		},
		{
			name: "all standard inputs",
			req: GenerateRequest{Model: "omnikv", Version: "1", ID: "r1", Prompt: "p", Stream: true, MaxTokens: 5,
				Sampling:     &Sampling{Temperature: Ptr(0.0), TopP: Ptr(0.9), Seed: Ptr(uint64(42)), Stop: []string{"\n"}},
				ExcludeInput: Ptr(true), Outputs: []string{"text_output"}},
			check: func(t *testing.T, r *pb.ModelInferRequest) {
				wantInputs(t, r, "text_input", "stream", "max_tokens", "sampling_parameters", "exclude_input_in_output")
				if r.GetModelVersion() != "1" || r.GetId() != "r1" {
					t.Errorf("version %q id %q", r.GetModelVersion(), r.GetId())
				}
				if v, _, _ := clienttest.InputInt32(r, "max_tokens"); v != 5 {
					t.Errorf("max_tokens = %d", v)
				}
				js, _, _ := clienttest.InputString(r, "sampling_parameters")
				var m map[string]any
				if err := json.Unmarshal([]byte(js), &m); err != nil {
					t.Fatalf("sampling_parameters %q: %v", js, err)
				}
				// temperature 0 (greedy) must be sent, not dropped as a zero value.
				if m["temperature"] != 0.0 || m["top_p"] != 0.9 || m["seed"] != 42.0 || len(m) != 4 {
					t.Errorf("sampling_parameters = %s", js)
				}
				if b, _, _ := clienttest.InputBool(r, "exclude_input_in_output"); !b {
					t.Errorf("exclude_input_in_output = false")
				}
				if len(r.GetOutputs()) != 1 || r.GetOutputs()[0].GetName() != "text_output" {
					t.Errorf("outputs = %v", r.GetOutputs())
				}
			},
		},
		{
			name: "numeric sequence start",
			req:  GenerateRequest{Model: "omnikv_chat", Prompt: "x", Sequence: &Sequence{ID: 77, Start: true}},
			check: func(t *testing.T, r *pb.ModelInferRequest) {
				p := r.GetParameters()
				if p["sequence_id"].GetInt64Param() != 77 || !p["sequence_start"].GetBoolParam() || p["sequence_end"].GetBoolParam() {
					t.Errorf("parameters = %v", p)
				}
			},
		},
		{
			name: "string sequence end and extra params",
			req:  GenerateRequest{Model: "m", Sequence: &Sequence{StringID: "conv-1", End: true}, Parameters: map[string]any{"priority": 2}},
			check: func(t *testing.T, r *pb.ModelInferRequest) {
				p := r.GetParameters()
				if p["sequence_id"].GetStringParam() != "conv-1" || !p["sequence_end"].GetBoolParam() || p["priority"].GetInt64Param() != 2 {
					t.Errorf("parameters = %v", p)
				}
			},
		},
		{
			name: "extra input replaces and appends",
			req:  GenerateRequest{Model: "m", Prompt: "x", Inputs: []Tensor{BoolTensor("stream", true), Int32Tensor("n", 3)}},
			check: func(t *testing.T, r *pb.ModelInferRequest) {
				wantInputs(t, r, "text_input", "stream", "n")
				if b, _, _ := clienttest.InputBool(r, "stream"); !b {
					t.Errorf("stream not replaced")
				}
			},
		},
		{name: "no model", req: GenerateRequest{Prompt: "x"}, wantErr: "model name is empty"},
		{name: "negative max tokens", req: GenerateRequest{Model: "m", MaxTokens: -1}, wantErr: "max_tokens -1"},
		{name: "sequence without id", req: GenerateRequest{Model: "m", Sequence: &Sequence{Start: true}}, wantErr: "sequence has no id"},
		{name: "sequence with two ids", req: GenerateRequest{Model: "m", Sequence: &Sequence{ID: 1, StringID: "a"}}, wantErr: "both"},
		{name: "bad parameter", req: GenerateRequest{Model: "m", Parameters: map[string]any{"x": []int{1}}}, wantErr: `parameter "x"`},
		{name: "bad extra input", req: GenerateRequest{Model: "m", Inputs: []Tensor{{Name: "q", Datatype: "INT32", Shape: []int64{2}}}}, wantErr: `input tensor "q"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.req.Build()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Build() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if len(r.GetRawInputContents()) != len(r.GetInputs()) {
				t.Fatalf("%d raw contents for %d inputs", len(r.GetRawInputContents()), len(r.GetInputs()))
			}
			for _, in := range r.GetInputs() {
				if in.GetContents() != nil {
					t.Errorf("input %q has typed contents beside raw ones", in.GetName())
				}
			}
			tt.check(t, r)
		})
	}
}

func wantInputs(t *testing.T, r *pb.ModelInferRequest, names ...string) {
	t.Helper()
	var got []string
	for _, in := range r.GetInputs() {
		got = append(got, in.GetName())
	}
	if !slices.Equal(got, names) {
		t.Errorf("inputs = %v, want %v", got, names)
	}
}

func TestDecodeDelta(t *testing.T) {
	tests := []struct {
		name    string
		resp    *pb.ModelStreamInferResponse
		want    Delta
		wantErr string
	}{
		{
			name: "text and ids",
			resp: clienttest.Response("", false, clienttest.Text("text_output", " wor", "ld"), clienttest.Int32("output_ids", 5, 6)),
			want: Delta{Text: " world", TokenIDs: []int32{5, 6}},
		},
		{
			name: "final with usage",
			resp: clienttest.Response("", true, clienttest.Text("finish_reason", "length"), clienttest.Int32("prompt_tokens", 9), clienttest.Int32("completion_tokens", 3)),
			want: Delta{FinishReason: "length", PromptTokens: 9, CompletionTokens: 3, HasUsage: true, Final: true},
		},
		{name: "bare final", resp: clienttest.Response("", true), want: Delta{Final: true}},
		{
			name:    "text of wrong type",
			resp:    clienttest.Response("", false, clienttest.Int32("text_output", 1)),
			wantErr: `"text_output": want BYTES`,
		},
		{
			name:    "two prompt token counts",
			resp:    clienttest.Response("", false, clienttest.Int32("prompt_tokens", 1, 2)),
			wantErr: `"prompt_tokens": want 1 value, got 2`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecodeDelta(tt.resp.GetInferResponse())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DecodeDelta() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeDelta: %v", err)
			}
			d.Response = nil
			if d.Text != tt.want.Text || !slices.Equal(d.TokenIDs, tt.want.TokenIDs) || d.FinishReason != tt.want.FinishReason ||
				d.PromptTokens != tt.want.PromptTokens || d.CompletionTokens != tt.want.CompletionTokens ||
				d.HasUsage != tt.want.HasUsage || d.Final != tt.want.Final {
				t.Errorf("DecodeDelta = %+v, want %+v", d, tt.want)
			}
		})
	}
}
