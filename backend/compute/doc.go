// Package compute defines the operations the model's forward pass is written against, and the data they work
// on: float32 activation tensors resident on a device, weights bound to a device in their stored type, and KV
// pages. Every device (compute/cpu now, compute/cuda later) implements Device; the forward pass in
// backend/llama never touches raw slices of another device's memory.
//
// Conventions: matrices are row-major; a weight matrix is (out, in) and MatMul computes x · wᵀ; activations are
// (tokens, features) so that one call serves a decode batch (one token per sequence) or a prefill chunk alike.
package compute
