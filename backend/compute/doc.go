// Package compute is the seam between the model and the hardware: the operations a forward pass is written
// against, batch-first and device-neutral, and the data they work on. Tensors, weights, KV stores, batches
// and selection states are opaque handles that a device creates; the shared types carry shapes and types,
// never host slices. An op covers every sequence of a step (one KV write with a slot map, one attention
// call with per-sequence block tables, lengths and selections, OmniKV's scores, top-k and staging as ops
// whose results stay on the device, an asynchronous gather with a fence); the host reads data back with one
// explicit Read (the step's logits). Device failures are a sticky error checked once per step.
//
// Devices register by kind (Register); callers open them by name through package devices (Open("cpu"),
// Open("cuda:0")). compute/cpu is the reference implementation; docs/compute-seam.md maps every op to its
// CUDA kernel or library call, stream and overlap.
//
// Conventions: matrices are row-major; a weight matrix is (out, in) and MatMul computes x · wᵀ; activations
// are (tokens, features) so that one call serves a decode batch (one token per sequence), a prefill chunk, or
// both mixed.
package compute
