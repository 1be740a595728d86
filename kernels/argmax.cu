#include "omnikv.cuh"

// argmax_f32: greedy choice, one block per logit row; the lowest id wins ties (as the CPU sampler), NaN
// never wins. logits (rows, vocab) f32, out (rows) int32; blockDim.x a multiple of 32, at most 1024.
extern "C" __global__ void argmax_f32(const float *__restrict__ logits, int *__restrict__ out, int vocab) {
	__shared__ float sv[32];
	__shared__ int si[32];
	const float *row = logits + (size_t)blockIdx.x * vocab;
	float best = -INFINITY;
	int bi = 0x7fffffff;
	for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
		const float v = row[i];
		if (v > best || (v == best && i < bi)) {
			best = v;
			bi = i;
		}
	}
	for (int o = OMNI_WARP / 2; o > 0; o >>= 1) {
		const float v = __shfl_xor_sync(0xffffffffu, best, o);
		const int i = __shfl_xor_sync(0xffffffffu, bi, o);
		if (v > best || (v == best && i < bi)) {
			best = v;
			bi = i;
		}
	}
	const int lane = threadIdx.x % OMNI_WARP, warp = threadIdx.x / OMNI_WARP;
	if (lane == 0) {
		sv[warp] = best;
		si[warp] = bi;
	}
	__syncthreads();
	if (threadIdx.x == 0) {
		for (int w = 1; w < (int)(blockDim.x / OMNI_WARP); w++)
			if (sv[w] > best || (sv[w] == best && si[w] < bi)) {
				best = sv[w];
				bi = si[w];
			}
		out[blockIdx.x] = bi == 0x7fffffff ? 0 : bi;
	}
}
