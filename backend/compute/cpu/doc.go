// Package cpu is the reference implementation of compute.Device (registered as "cpu"): pure Go for the
// logic, with Go assembly for the hot loops on amd64 (matrix products over every weight type, attention
// tiles, f32/f16 conversions and dot products) and a pure-Go twin of each loop selected by the build tag
// purego. Work is spread over all cores by a persistent worker pool; a decode step allocates nothing. Tensors
// keep their slices behind the handle; KV stores keep each layer's pages in a row in anonymous memory with
// transparent huge pages (kvstore.go), or in a memory-mapped file for the mapped tier; ops run when called,
// so fences are always complete.
//
// On CPUs with AVX-512 (F, BW, VL) and AVX-512 VNNI, Bind repacks Q4_1 and Q8_0 matrices into groups of
// 16 interleaved rows (packed.go): the same number of bytes in another order, read by kernels that produce
// 16 outputs per vector with integer dot products (VPDPBUSD): each 32-value block of the activations is
// written as X = round(x/s) with 23 bits of magnitude, stored as three int8 digits, so that the products are
// exact and the one rounding is that of x to X*s, within float32 rounding of the block's largest value (see
// encodeX). Four tokens share each loaded weight vector (rowsPacked4) and give, per token, the one-token
// kernel's result bit for bit, so that decode batches and prefill chunks alike run these kernels and a
// token's output never depends on its batch. Weights that share their input (q, k, v; gate, up) run as one
// parallel loop (MatMuls). The file's pages of a repacked tensor are released, so resident memory stays about
// the file's size, and devices of one process share the packed copy of equal bytes (packcache.go). CPUs
// without VNNI (or OMNIKV_CPU=avx2) keep the row-major layout and the AVX2 kernels: one token by fused row
// dots, two and more by strips dequantized once and 4x3 tiles (batch-invariant from two tokens on).
//
// Numerics: activations and accumulations are float32 (the packed kernels' digits above hold each
// activation to float32 precision of its block's largest value), weights are dequantized exactly block by
// block as they are read (never expanded wholesale), so results match float32 math on the dequantized
// weights up to the order of the float32 additions. The golden tests check both paths against
// transformers: prompts in chunks (prefill) and one token at a time (decode), within 1.1e-5 for SmolLM2.
package cpu
