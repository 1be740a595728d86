// Package synth builds Llama-shaped models with synthetic weights in memory, from a seeded generator and no
// file: the shape of a real model (llama3-8b, smollm2-135m) or a tiny one for tests, in a float type (bf16,
// f16, f32) or a quantized one (q8_0, q4_0, q4_1, q4_K), bound through the same weights.Set and llama.FromSet
// path as a loaded file, so that benchmarks and device comparisons run the real forward pass on models that
// need not be downloaded or carried. The weights are random (each tensor's values have the scale that keeps
// activations near unit size); the outputs mean nothing, their cost and their agreement across devices do.
//
// It owns the shape table, the spec syntax ("llama3-8b:q4") and the parallel fill; nothing else.
package synth
