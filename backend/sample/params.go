package sample

import (
	"errors"
	"fmt"
	"math"
)

// Params are the sampling options of one request. The zero value is not valid (TopP 0, penalty 0);
// start from DefaultParams.
type Params struct {
	// Temperature divides the logits before the warpers; 0 means greedy (argmax, the lowest id wins
	// ties) and turns off TopK, TopP, MinP and the draw. Must be finite and >= 0.
	Temperature float32
	// TopK keeps the k highest logits; 0 or >= vocab is off. Must be >= 0. Ties at the k-th logit go
	// to the lower ids, so exactly k survive (Hugging Face keeps every token tied with the k-th; with
	// real logits such ties are rare).
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability reaches TopP, including the
	// token that crosses it (as Hugging Face does); 1 is off. Must be in (0, 1].
	TopP float32
	// MinP drops tokens whose probability is below MinP times the top token's; 0 is off. Must be in
	// [0, 1].
	MinP float32
	// RepetitionPenalty, with Hugging Face semantics: for every id already seen (prompt and output),
	// a positive logit is divided by it and a negative (or zero) logit multiplied by it; 1 is off.
	// Must be finite and > 0.
	RepetitionPenalty float32
	// Seed seeds the draw: the same seed, logits and history give the same tokens.
	Seed uint64
	// MaxTokens caps the number of generated tokens; 0 means no cap from the request (the engine still
	// stops at the context length). Must be >= 0. The Sampler does not read it; the decode loop does.
	MaxTokens int
	// Stop lists stop strings: generation ends when the output text contains one, and the text from
	// it onwards is not returned. Each must be non-empty. See StopMatcher.
	Stop []string

	// FrequencyPenalty and PresencePenalty, with OpenAI/vLLM semantics, look at the generated tokens only
	// (not the prompt): a token generated c times so far has FrequencyPenalty*c, plus PresencePenalty if
	// c > 0, subtracted from its logit. Positive values discourage repeats; 0 is off. Each must be in
	// [-2, 2]. Only Next applies them.
	FrequencyPenalty float32
	PresencePenalty  float32
	// MinTokens holds off the end: until MinTokens tokens have been generated, the end-of-sequence ids
	// (SetEOS; even with IgnoreEOS, as vLLM does) and StopTokenIDs have their logits set to -Inf. Stop
	// strings are not held off. Must be >= 0 and, when MaxTokens > 0, <= MaxTokens. Only Next applies it.
	MinTokens int
	// StopTokenIDs end the generation when sampled (Stop reports them), besides the end-of-sequence ids.
	// Each must be >= 0; the engine checks them against the vocabulary.
	StopTokenIDs []int32
	// IgnoreEOS keeps generating past end-of-sequence ids (Stop does not report them); StopTokenIDs still
	// stop. For benchmarks.
	IgnoreEOS bool
	// N is the number of completions to generate for the prompt, each with its own Sampler. Must be in
	// [1, MaxN]; 0 is read as 1 (so Params literals written before N existed stay valid). More than one
	// needs sampling (Temperature > 0): greedy completions would all be the same. The Sampler does not
	// read it.
	N int
	// Logprobs is the number of most likely tokens whose log-probabilities are reported for each
	// generated token (besides the chosen token's own); 0 means none. Must be in [0, MaxLogprobs]. The
	// Sampler does not read it; see LogProbs.
	Logprobs int
}

// Limits on Params.
const (
	MaxN        = 16 // largest N
	MaxLogprobs = 20 // largest Logprobs
)

// DefaultParams returns the defaults a request starts from: plain sampling at temperature 1 (no top-k,
// top-p, min-p or penalty), seed 0, at most 256 new tokens, no stop strings or stop ids, one completion,
// no log-probabilities.
func DefaultParams() Params {
	return Params{
		Temperature:       1,
		TopK:              0,
		TopP:              1,
		MinP:              0,
		RepetitionPenalty: 1,
		Seed:              0,
		MaxTokens:         256,
		N:                 1,
	}
}

// Validate reports every field out of range, each error naming the field as requests spell it
// (temperature, top_k, top_p, min_p, repetition_penalty, max_tokens, stop, frequency_penalty,
// presence_penalty, min_tokens, stop_token_ids, n, logprobs). NaN and infinities are out of range
// everywhere.
func (p Params) Validate() error {
	var errs []error
	t := float64(p.Temperature)
	if !(t >= 0) || math.IsInf(t, 1) {
		errs = append(errs, fmt.Errorf("temperature must be >= 0 and finite, got %v", p.Temperature))
	}
	if p.TopK < 0 {
		errs = append(errs, fmt.Errorf("top_k must be >= 0, got %d", p.TopK))
	}
	if !(p.TopP > 0 && p.TopP <= 1) {
		errs = append(errs, fmt.Errorf("top_p must be in (0, 1], got %v", p.TopP))
	}
	if !(p.MinP >= 0 && p.MinP <= 1) {
		errs = append(errs, fmt.Errorf("min_p must be in [0, 1], got %v", p.MinP))
	}
	rp := float64(p.RepetitionPenalty)
	if !(rp > 0) || math.IsInf(rp, 1) {
		errs = append(errs, fmt.Errorf("repetition_penalty must be > 0 and finite, got %v", p.RepetitionPenalty))
	}
	if p.MaxTokens < 0 {
		errs = append(errs, fmt.Errorf("max_tokens must be >= 0, got %d", p.MaxTokens))
	}
	for i, s := range p.Stop {
		if s == "" {
			errs = append(errs, fmt.Errorf("stop[%d] must not be empty", i))
		}
	}
	if !(p.FrequencyPenalty >= -2 && p.FrequencyPenalty <= 2) {
		errs = append(errs, fmt.Errorf("frequency_penalty must be in [-2, 2], got %v", p.FrequencyPenalty))
	}
	if !(p.PresencePenalty >= -2 && p.PresencePenalty <= 2) {
		errs = append(errs, fmt.Errorf("presence_penalty must be in [-2, 2], got %v", p.PresencePenalty))
	}
	switch {
	case p.MinTokens < 0:
		errs = append(errs, fmt.Errorf("min_tokens must be >= 0, got %d", p.MinTokens))
	case p.MaxTokens > 0 && p.MinTokens > p.MaxTokens:
		errs = append(errs, fmt.Errorf("min_tokens must be <= max_tokens (%d), got %d", p.MaxTokens, p.MinTokens))
	}
	for i, id := range p.StopTokenIDs {
		if id < 0 {
			errs = append(errs, fmt.Errorf("stop_token_ids[%d] must be >= 0, got %d", i, id))
		}
	}
	switch {
	case p.N < 0 || p.N > MaxN:
		errs = append(errs, fmt.Errorf("n must be in [1, %d], got %d", MaxN, p.N))
	case p.N > 1 && p.Temperature == 0:
		errs = append(errs, fmt.Errorf("n must be 1 with greedy sampling (temperature 0): the %d completions would be the same; set temperature > 0", p.N))
	}
	if p.Logprobs < 0 || p.Logprobs > MaxLogprobs {
		errs = append(errs, fmt.Errorf("logprobs must be in [0, %d], got %d", MaxLogprobs, p.Logprobs))
	}
	return errors.Join(errs...)
}

// FinishReason says why a generation ended. The zero value, FinishNone, means it has not.
type FinishReason uint8

// The reasons a generation ends.
const (
	FinishNone      FinishReason = iota // still running
	FinishStop                          // a stop string or the end-of-sequence token
	FinishLength                        // MaxTokens or the context length reached
	FinishCancelled                     // the client or the server cancelled the request
)

// String returns the name clients see: "stop", "length", "cancelled", or "" for FinishNone.
func (r FinishReason) String() string {
	switch r {
	case FinishNone:
		return ""
	case FinishStop:
		return "stop"
	case FinishLength:
		return "length"
	case FinishCancelled:
		return "cancelled"
	}
	return fmt.Sprintf("FinishReason(%d)", uint8(r))
}
