#include "omnikv.cuh"

// matvec_q4_0 / matvec_q4_1: y[b][n] = sum_k W[n][k] x[b][k] for a small batch (decode), weights read in
// place: per 32-weight block, w[j] = d*(lo nibble of qs[j] - 8) and w[j+16] = d*(hi nibble - 8) (q4_0), or
// d*nibble + m (q4_1). One warp per output row; lane j takes blocks j, j+32, ...
//   w (n_out, k/32) blocks;  x (batch, k) f32;  y (batch, n_out) f32
// k a multiple of 32; batch <= MAX_BATCH; grid (ceil(n_out/4)), block (128).
#define MAX_BATCH 8

template <bool Q41, typename Block>
__device__ __forceinline__ void matvec_q4(const Block *__restrict__ w, const float *__restrict__ x, float *__restrict__ y,
                                          int n_out, int k, int batch) {
	const int n = blockIdx.x * (blockDim.x / OMNI_WARP) + threadIdx.x / OMNI_WARP, lane = threadIdx.x % OMNI_WARP;
	if (n >= n_out) return;
	const int nb = k / 32;
	const Block *row = w + (size_t)n * nb;
	float sum[MAX_BATCH];
	for (int b = 0; b < MAX_BATCH; b++) sum[b] = 0.0f;
	for (int j = lane; j < nb; j += OMNI_WARP) {
		const Block &blk = row[j];
		const float d = __half2float(blk.d);
		float mn = 0.0f;
		if constexpr (Q41) mn = __half2float(((const block_q4_1 &)blk).m);
		for (int b = 0; b < batch; b++) {
			const float *xb = x + (size_t)b * k + j * 32;
			float s = 0.0f, xs = 0.0f;
#pragma unroll
			for (int i = 0; i < 16; i++) {
				const int lo = blk.qs[i] & 15, hi = blk.qs[i] >> 4;
				if constexpr (Q41) {
					s += (float)lo * xb[i] + (float)hi * xb[i + 16];
					xs += xb[i] + xb[i + 16];
				} else {
					s += (float)(lo - 8) * xb[i] + (float)(hi - 8) * xb[i + 16];
				}
			}
			sum[b] += d * s + mn * xs;
		}
	}
	for (int b = 0; b < batch; b++) {
		const float s = warp_sum(sum[b]);
		if (lane == 0) y[(size_t)b * n_out + n] = s;
	}
}

extern "C" __global__ void matvec_q4_0(const block_q4_0 *__restrict__ w, const float *__restrict__ x, float *__restrict__ y,
                                       int n_out, int k, int batch) {
	matvec_q4<false>(w, x, y, n_out, k, batch);
}

extern "C" __global__ void matvec_q4_1(const block_q4_1 *__restrict__ w, const float *__restrict__ x, float *__restrict__ y,
                                       int n_out, int k, int batch) {
	matvec_q4<true>(w, x, y, n_out, k, batch);
}
