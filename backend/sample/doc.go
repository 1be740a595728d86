// Package sample owns turning one step's logits into the next token id, and deciding when a generation
// ends: sampling parameters and their validation (Params), the per-sequence Sampler (repetition,
// frequency and presence penalties, min_tokens, greedy argmax, temperature, top-k, top-p, min-p and a
// seeded draw; end-of-sequence and stop ids with Stop), log-probabilities of the raw logits (LogProbs,
// Rank), stop-string matching over streamed text deltas (StopMatcher), and the reason a generation
// finished (FinishReason).
//
// The order of operations follows Hugging Face transformers' generate with its default processors:
// repetition penalty, then (when sampling) temperature, top-k, top-p, min-p, and a draw from the
// renormalised survivors. Temperature 0 means greedy: the penalties still apply, the warpers do not.
// Next puts vLLM's output-only penalties (frequency, presence) and the min_tokens mask between the
// repetition penalty and the warpers, as vLLM does.
//
// A Sampler is built once per sequence and allocates nothing per token afterwards: every buffer it needs
// is sized to the vocabulary in New. Top-k and top-p never sort the whole vocabulary: top-k keeps a
// min-heap of k entries, top-p first bins probability mass by logit distance from the maximum (1/8 nat per
// bin): the bins before the one where the mass reaches p survive whole, and only the tokens of that
// one bin are sorted.
//
// The package is a leaf: it imports no other package of this project. A Sampler is not safe for
// concurrent use; a StopMatcher neither.
package sample
