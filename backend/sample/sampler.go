package sample

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// pcgStream is the second PCG word; the first is Params.Seed. Fixed so that a seed means the same
// stream in every build.
const pcgStream = 0x9e3779b97f4a7c15

// Sampler picks tokens for one sequence. Build it with New (which allocates every buffer it will need),
// tell it the model's end-of-sequence ids with SetEOS, call Next (or Sample) once per decode step and Stop
// on the token it returns, and Reset it to serve another request. Not safe for concurrent use.
type Sampler struct {
	p     Params
	vocab int

	pcg *rand.PCG  // seeded from p.Seed in New and Reset
	rng *rand.Rand // draws from pcg

	seen  []uint32 // (vocab) stamp of the last Sample call that penalised each id
	stamp uint32   // current stamp for seen; 0 is never a live stamp

	count []int32 // (vocab) scratch for the frequency penalty: all zero between calls; made on first use
	eos   []int32 // the model's end-of-sequence ids (SetEOS)

	cand []int32   // (vocab) surviving token ids, best first once sorted
	w    []float64 // (vocab) by token id: exp(logit - max logit), the unnormalised probability

	mass [nBuckets]float64 // probability mass per logit-distance bin, for top-p
}

// New returns a Sampler for a vocabulary of vocab tokens, after validating p.
func New(p Params, vocab int) (*Sampler, error) {
	if vocab <= 0 {
		return nil, fmt.Errorf("sample: vocab must be > 0, got %d", vocab)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("sample: invalid params: %w", err)
	}
	pcg := rand.NewPCG(p.Seed, pcgStream)
	return &Sampler{
		p:     p,
		vocab: vocab,
		pcg:   pcg,
		rng:   rand.New(pcg),
		seen:  make([]uint32, vocab),
		cand:  make([]int32, vocab),
		w:     make([]float64, vocab),
	}, nil
}

// Reset validates p and makes the Sampler as New(p, vocab) would, reusing its buffers: the draw
// restarts from p.Seed. The end-of-sequence ids (SetEOS) are the model's and stay. On error the
// Sampler is unchanged.
func (s *Sampler) Reset(p Params) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("sample: invalid params: %w", err)
	}
	s.p = p
	s.pcg.Seed(p.Seed, pcgStream)
	return nil
}

// Params returns the parameters the Sampler was built or last Reset with.
func (s *Sampler) Params() Params { return s.p }

// Vocab returns the vocabulary size the Sampler was built for.
func (s *Sampler) Vocab() int { return s.vocab }

// Sample returns the next token id given this step's logits (vocab) and the ids seen so far (prompt
// then output, for the repetition penalty; ids outside [0, vocab) are ignored; order and repeats do
// not matter). It cannot tell the output from the prompt, so it applies neither FrequencyPenalty,
// PresencePenalty nor MinTokens: Next does.
//
// It modifies logits in place: penalised, divided by the temperature, NaN set to -Inf and +Inf to the
// largest float32. Only the first vocab logits are read if more are given. It returns -1 when logits
// is empty and the lowest id when every logit is -Inf or NaN. It allocates nothing.
func (s *Sampler) Sample(logits []float32, history []int32) int32 {
	k, id, decided := s.process(logits, history)
	if decided {
		return id
	}
	return s.draw(k, s.rng.Float64())
}

// process is Sample up to the draw: it returns the token when no draw is needed (decided), and
// otherwise the survivors to draw from.
func (s *Sampler) process(logits []float32, history []int32) (k kept, id int32, decided bool) {
	if len(logits) > s.vocab {
		logits = logits[:s.vocab]
	}
	if len(logits) == 0 {
		return kept{}, -1, true
	}
	if s.p.RepetitionPenalty != 1 {
		s.penalize(logits, history)
	}
	return s.warp(logits)
}

// warp is process after the penalties, over logits already cut to at most vocab and not empty: greedy,
// or temperature and the filters.
func (s *Sampler) warp(logits []float32) (k kept, id int32, decided bool) {
	if s.p.Temperature == 0 {
		return kept{}, argmax(logits), true
	}
	m := prepare(logits, s.p.Temperature)
	if math.IsInf(float64(m), -1) {
		return kept{}, 0, true
	}
	return s.filter(logits, m), 0, false
}

// penalize applies the repetition penalty once to each distinct id in history:
// logit > 0 becomes logit/penalty, otherwise logit*penalty (Hugging Face's
// RepetitionPenaltyLogitsProcessor).
func (s *Sampler) penalize(logits []float32, history []int32) { s.penalize2(logits, history, nil) }

// penalize2 is penalize over the ids of a and b together (prompt and output).
func (s *Sampler) penalize2(logits []float32, a, b []int32) {
	s.stamp++
	if s.stamp == 0 {
		clear(s.seen)
		s.stamp = 1
	}
	rp := s.p.RepetitionPenalty
	for _, history := range [2][]int32{a, b} {
		for _, id := range history {
			if id < 0 || int(id) >= len(logits) || s.seen[id] == s.stamp {
				continue
			}
			s.seen[id] = s.stamp
			if v := logits[id]; v > 0 {
				logits[id] = v / rp
			} else {
				logits[id] = v * rp
			}
		}
	}
}

// argmax returns the id of the largest logit, the lowest id on ties; NaN never wins; 0 when all
// are -Inf or NaN.
func argmax(logits []float32) int32 {
	best, bestV := 0, float32(math.Inf(-1))
	for i, v := range logits {
		if v > bestV {
			best, bestV = i, v
		}
	}
	return int32(best)
}

// prepare divides logits by the temperature (skipped at 1), turns NaN into -Inf and +Inf into the
// largest float32 so that later differences stay finite, and returns the largest logit.
func prepare(logits []float32, temperature float32) float32 {
	negInf := float32(math.Inf(-1))
	m := negInf
	for i, v := range logits {
		if temperature != 1 {
			v /= temperature
		}
		switch {
		case v != v:
			v = negInf
		case v > math.MaxFloat32:
			v = math.MaxFloat32
		}
		logits[i] = v
		if v > m {
			m = v
		}
	}
	return m
}
