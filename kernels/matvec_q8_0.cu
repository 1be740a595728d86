#include "omnikv.cuh"

// matvec_q8_0: y[b][n] = sum_k W[n][k] x[b][k] for a small batch (decode), weights read in place as q8_0.
// One warp per output row n; lane j takes blocks j, j+32, ...; the batch's activations are reread from L1/L2.
//   w (n_out, k/32) q8_0 blocks;  x (batch, k) f32;  y (batch, n_out) f32
// k a multiple of 32; batch <= MAX_BATCH; grid (ceil(n_out/4)), block (128).
#define MAX_BATCH 8
extern "C" __global__ void matvec_q8_0(const block_q8_0 *__restrict__ w, const float *__restrict__ x, float *__restrict__ y,
                                       int n_out, int k, int batch) {
	const int n = blockIdx.x * (blockDim.x / OMNI_WARP) + threadIdx.x / OMNI_WARP, lane = threadIdx.x % OMNI_WARP;
	if (n >= n_out) return;
	const int nb = k / 32;
	const block_q8_0 *row = w + (size_t)n * nb;
	float sum[MAX_BATCH];
	for (int b = 0; b < MAX_BATCH; b++) sum[b] = 0.0f;
	for (int j = lane; j < nb; j += OMNI_WARP) {
		const block_q8_0 &blk = row[j];
		const float d = __half2float(blk.d);
		for (int b = 0; b < batch; b++) {
			const float *xb = x + (size_t)b * k + j * 32;
			float s = 0.0f;
#pragma unroll
			for (int i = 0; i < 32; i++) s += (float)blk.qs[i] * xb[i];
			sum[b] += d * s;
		}
	}
	for (int b = 0; b < batch; b++) {
		const float s = warp_sum(sum[b]);
		if (lane == 0) y[(size_t)b * n_out + n] = s;
	}
}
