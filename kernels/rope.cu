#include "omnikv.cuh"

// rope_f32: rotate-half RoPE (Hugging Face's layout, on weights un-permuted at load) in place over every head
// of every token: for i < half, (a, b) = (x[i], x[i+half]) -> (a cos - b sin, b cos + a sin), with angle
// pos[t] * inv_freq[i].
//   x (tokens, heads, head_dim) f32; pos (tokens) int32; inv_freq (head_dim/2) f32.
// grid (tokens, heads), block (head_dim/2).
extern "C" __global__ void rope_f32(float *__restrict__ x, const int *__restrict__ pos, const float *__restrict__ inv_freq,
                                    int heads, int head_dim) {
	const int t = blockIdx.x, h = blockIdx.y, i = threadIdx.x, half = head_dim / 2;
	if (i >= half) return;
	float *v = x + ((size_t)t * heads + h) * head_dim;
	float s, c;
	sincosf((float)pos[t] * inv_freq[i], &s, &c);
	const float a = v[i], b = v[i + half];
	v[i] = a * c - b * s;
	v[i + half] = b * c + a * s;
}
