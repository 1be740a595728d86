#include "omnikv.cuh"

// rope_table: rotary position embedding in place (ApplyRoPE) from a table of cos and sin: row pos of table
// holds cos of the head_dim/2 frequencies, then their sin. Pairs (i, i+half) (Hugging Face layout) or
// (2i, 2i+1) (interleaved, GGUF llama). Each product is rounded on its own, as the CPU device does.
//   x (>= n, heads*head_dim) f32; table (positions, head_dim) f32; pos (n) int32.
// grid (n, heads), block (head_dim/2 rounded up to 32).
extern "C" __global__ void rope_table(float *__restrict__ x, const float *__restrict__ table, const int *__restrict__ pos,
                                      int heads, int head_dim, int interleaved) {
	const int t = blockIdx.x, h = blockIdx.y, half = head_dim / 2;
	const float *tab = table + (size_t)pos[t] * head_dim;
	float *v = x + ((size_t)t * heads + h) * head_dim;
	for (int j = threadIdx.x; j < half; j += blockDim.x) {
		const float c = tab[j], s = tab[half + j];
		const int i0 = interleaved ? 2 * j : j, i1 = interleaved ? 2 * j + 1 : j + half;
		const float a = v[i0], b = v[i1];
		v[i0] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
		v[i1] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
	}
}
