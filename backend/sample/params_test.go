package sample

import (
	"math"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		name  string
		edit  func(*Params)
		field string // "" means valid
	}{
		{"default", func(p *Params) {}, ""},
		{"greedy", func(p *Params) { p.Temperature = 0 }, ""},
		{"all on", func(p *Params) { p.TopK, p.TopP, p.MinP, p.RepetitionPenalty = 40, 0.9, 0.05, 1.3 }, ""},
		{"top_p one", func(p *Params) { p.TopP = 1 }, ""},
		{"min_p one", func(p *Params) { p.MinP = 1 }, ""},
		{"max_tokens zero", func(p *Params) { p.MaxTokens = 0 }, ""},
		{"stops", func(p *Params) { p.Stop = []string{"\n", "</s>"} }, ""},
		{"temperature negative", func(p *Params) { p.Temperature = -0.1 }, "temperature must be >= 0"},
		{"temperature NaN", func(p *Params) { p.Temperature = nan }, "temperature must be >= 0"},
		{"temperature Inf", func(p *Params) { p.Temperature = inf }, "temperature must be >= 0"},
		{"top_k negative", func(p *Params) { p.TopK = -1 }, "top_k must be >= 0"},
		{"top_p zero", func(p *Params) { p.TopP = 0 }, "top_p must be in (0, 1]"},
		{"top_p above one", func(p *Params) { p.TopP = 1.01 }, "top_p must be in (0, 1]"},
		{"top_p negative", func(p *Params) { p.TopP = -0.5 }, "top_p must be in (0, 1]"},
		{"top_p NaN", func(p *Params) { p.TopP = nan }, "top_p must be in (0, 1]"},
		{"min_p negative", func(p *Params) { p.MinP = -0.01 }, "min_p must be in [0, 1]"},
		{"min_p above one", func(p *Params) { p.MinP = 1.5 }, "min_p must be in [0, 1]"},
		{"min_p NaN", func(p *Params) { p.MinP = nan }, "min_p must be in [0, 1]"},
		{"repetition_penalty zero", func(p *Params) { p.RepetitionPenalty = 0 }, "repetition_penalty must be > 0"},
		{"repetition_penalty negative", func(p *Params) { p.RepetitionPenalty = -1 }, "repetition_penalty must be > 0"},
		{"repetition_penalty Inf", func(p *Params) { p.RepetitionPenalty = inf }, "repetition_penalty must be > 0"},
		{"max_tokens negative", func(p *Params) { p.MaxTokens = -1 }, "max_tokens must be >= 0"},
		{"stop empty", func(p *Params) { p.Stop = []string{"a", ""} }, "stop[1] must not be empty"},
		{"penalties at the bounds", func(p *Params) { p.FrequencyPenalty, p.PresencePenalty = -2, 2 }, ""},
		{"frequency_penalty above 2", func(p *Params) { p.FrequencyPenalty = 2.01 }, "frequency_penalty must be in [-2, 2]"},
		{"frequency_penalty NaN", func(p *Params) { p.FrequencyPenalty = nan }, "frequency_penalty must be in [-2, 2]"},
		{"presence_penalty below -2", func(p *Params) { p.PresencePenalty = -2.5 }, "presence_penalty must be in [-2, 2]"},
		{"presence_penalty Inf", func(p *Params) { p.PresencePenalty = inf }, "presence_penalty must be in [-2, 2]"},
		{"min_tokens = max_tokens", func(p *Params) { p.MinTokens = p.MaxTokens }, ""},
		{"min_tokens without a cap", func(p *Params) { p.MinTokens, p.MaxTokens = 5000, 0 }, ""},
		{"min_tokens negative", func(p *Params) { p.MinTokens = -1 }, "min_tokens must be >= 0"},
		{"min_tokens over max_tokens", func(p *Params) { p.MinTokens = p.MaxTokens + 1 }, "min_tokens must be <= max_tokens"},
		{"stop_token_ids", func(p *Params) { p.StopTokenIDs = []int32{0, 2} }, ""},
		{"stop_token_ids negative", func(p *Params) { p.StopTokenIDs = []int32{0, -2} }, "stop_token_ids[1] must be >= 0"},
		{"n 0 reads as 1", func(p *Params) { p.N = 0 }, ""},
		{"n max", func(p *Params) { p.N = MaxN }, ""},
		{"n negative", func(p *Params) { p.N = -1 }, "n must be in [1, 16]"},
		{"n over max", func(p *Params) { p.N = MaxN + 1 }, "n must be in [1, 16]"},
		{"n greedy", func(p *Params) { p.N, p.Temperature = 2, 0 }, "n must be 1 with greedy sampling"},
		{"logprobs max", func(p *Params) { p.Logprobs = MaxLogprobs }, ""},
		{"logprobs negative", func(p *Params) { p.Logprobs = -1 }, "logprobs must be in [0, 20]"},
		{"logprobs over max", func(p *Params) { p.Logprobs = MaxLogprobs + 1 }, "logprobs must be in [0, 20]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			tc.edit(&p)
			err := p.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.field)
			}
			if _, err := New(p, 10); err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("New() error = %v, want one containing %q", err, tc.field)
			}
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	p := Params{Temperature: -1, TopK: -1, TopP: 2, MinP: 2, RepetitionPenalty: 0, MaxTokens: -1,
		FrequencyPenalty: 3, PresencePenalty: -3, MinTokens: -1, StopTokenIDs: []int32{-1}, N: 17, Logprobs: 21}
	err := p.Validate()
	for _, f := range []string{"temperature", "top_k", "top_p", "min_p", "repetition_penalty", "max_tokens",
		"frequency_penalty", "presence_penalty", "min_tokens", "stop_token_ids", "n must", "logprobs"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("Validate() = %v, want it to name %s", err, f)
		}
	}
}

func TestNewBadVocab(t *testing.T) {
	for _, v := range []int{0, -1} {
		if _, err := New(DefaultParams(), v); err == nil || !strings.Contains(err.Error(), "vocab") {
			t.Errorf("New(vocab=%d) error = %v, want one naming vocab", v, err)
		}
	}
}

func TestResetRejectsBadParams(t *testing.T) {
	s, err := New(DefaultParams(), 8)
	if err != nil {
		t.Fatal(err)
	}
	bad := DefaultParams()
	bad.TopP = 0
	if err := s.Reset(bad); err == nil || !strings.Contains(err.Error(), "top_p") {
		t.Fatalf("Reset(bad) = %v, want a top_p error", err)
	}
	if got := s.Params(); got.TopP != 1 {
		t.Fatalf("Reset(bad) changed params: TopP = %v", got.TopP)
	}
}

func TestFinishReasonString(t *testing.T) {
	tests := []struct {
		r    FinishReason
		want string
	}{
		{FinishNone, ""},
		{FinishStop, "stop"},
		{FinishLength, "length"},
		{FinishCancelled, "cancelled"},
		{FinishReason(9), "FinishReason(9)"},
	}
	for _, tc := range tests {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("FinishReason(%d).String() = %q, want %q", uint8(tc.r), got, tc.want)
		}
	}
}
