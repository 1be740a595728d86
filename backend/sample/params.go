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
}

// DefaultParams returns the defaults a request starts from: plain sampling at temperature 1 (no top-k,
// top-p, min-p or penalty), seed 0, at most 256 new tokens, no stop strings.
func DefaultParams() Params {
	return Params{
		Temperature:       1,
		TopK:              0,
		TopP:              1,
		MinP:              0,
		RepetitionPenalty: 1,
		Seed:              0,
		MaxTokens:         256,
	}
}

// Validate reports every field out of range, each error naming the field as requests spell it
// (temperature, top_k, top_p, min_p, repetition_penalty, max_tokens, stop). NaN and infinities are out
// of range everywhere.
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
