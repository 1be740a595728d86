package sample

import (
	"math"
	"slices"
)

// SetEOS tells the Sampler the model's end-of-sequence ids: Next holds them off until MinTokens tokens
// are generated, and Stop reports them unless IgnoreEOS. The ids are copied into a buffer that later
// calls reuse. Reset keeps them.
func (s *Sampler) SetEOS(ids []int32) { s.eos = append(s.eos[:0], ids...) }

// Next returns the next token id given this step's logits (vocab), the prompt, and the tokens generated
// so far (output). It applies, in this order:
//
//  1. the repetition penalty, once per distinct id of prompt and output (as Sample);
//  2. the frequency and presence penalties over output alone: for each distinct id generated c times,
//     logit -= FrequencyPenalty*c, then logit -= PresencePenalty (vLLM's two subtractions);
//  3. while len(output) < MinTokens, -Inf to the end-of-sequence ids (SetEOS) and StopTokenIDs;
//  4. greedy, or temperature, top-k, top-p, min-p and the draw, as Sample.
//
// Ids outside [0, vocab) in prompt, output, the end-of-sequence ids or StopTokenIDs are ignored. Like
// Sample it modifies logits in place, reads only the first vocab of them, returns -1 when logits is empty
// and the lowest id when every logit is -Inf or NaN (so a step whose only finite logits were held off by
// MinTokens returns id 0). It allocates nothing, except a vocab-sized count buffer on the first call
// that needs a frequency or presence penalty.
func (s *Sampler) Next(logits []float32, prompt, output []int32) int32 {
	if len(logits) > s.vocab {
		logits = logits[:s.vocab]
	}
	if len(logits) == 0 {
		return -1
	}
	if s.p.RepetitionPenalty != 1 {
		s.penalize2(logits, prompt, output)
	}
	if s.p.FrequencyPenalty != 0 || s.p.PresencePenalty != 0 {
		s.penalizeOutput(logits, output)
	}
	if len(output) < s.p.MinTokens {
		s.holdEnd(logits)
	}
	k, id, decided := s.warp(logits)
	if decided {
		return id
	}
	return s.draw(k, s.rng.Float64())
}

// penalizeOutput applies the frequency and presence penalties of the ids in output. s.count is zero on
// entry and on return: the first pass counts, the second applies each distinct id once and clears it.
func (s *Sampler) penalizeOutput(logits []float32, output []int32) {
	if s.count == nil {
		s.count = make([]int32, s.vocab)
	}
	for _, id := range output {
		if id >= 0 && int(id) < len(logits) {
			s.count[id]++
		}
	}
	fp, pp := s.p.FrequencyPenalty, s.p.PresencePenalty
	for _, id := range output {
		if id < 0 || int(id) >= len(logits) || s.count[id] == 0 {
			continue
		}
		// The conversions round each product and difference to float32 (no fused multiply-add).
		v := logits[id] - float32(fp*float32(s.count[id]))
		logits[id] = float32(v - pp)
		s.count[id] = 0
	}
}

// holdEnd sets the logits of the end-of-sequence ids and of StopTokenIDs to -Inf.
func (s *Sampler) holdEnd(logits []float32) {
	negInf := float32(math.Inf(-1))
	for _, ids := range [2][]int32{s.eos, s.p.StopTokenIDs} {
		for _, id := range ids {
			if id >= 0 && int(id) < len(logits) {
				logits[id] = negInf
			}
		}
	}
}

// Stop reports whether tok ends the generation: it is one of StopTokenIDs, or an end-of-sequence id
// (SetEOS) and IgnoreEOS is off. The token itself is part of the output. MinTokens is Next's business: it
// never returns these ids earlier (but see Next for the all -Inf case).
func (s *Sampler) Stop(tok int32) bool {
	return slices.Contains(s.p.StopTokenIDs, tok) || (!s.p.IgnoreEOS && slices.Contains(s.eos, tok))
}
