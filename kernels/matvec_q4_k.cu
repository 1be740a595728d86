#include "omnikv.cuh"

// matvec_q4_k: y[b][n] = sum_k W[n][k] x[b][k] for a small batch, weights read in place as q4_K: 256-weight
// super-blocks {d, dmin f16; scales[12] (8 six-bit scale/min pairs); qs[128]}. Sub-block s (32 weights):
// w = (d*sc_s)*nibble - dmin*mn_s, sub-blocks 2j and 2j+1 taking the low and high nibbles of qs[32j:32j+32].
// One warp per output row; lane j takes super-blocks j, j+32, ...
//   w (n_out, k/256) blocks;  x (batch, k) f32;  y (batch, n_out) f32
// k a multiple of 256; batch <= MAX_BATCH; grid (ceil(n_out/4)), block (128).
#define MAX_BATCH 8

struct block_q4_k {
	__half d, dmin;
	unsigned char scales[12];
	unsigned char qs[128];
};

__device__ __forceinline__ void scale_min_k4(int j, const unsigned char *q, float &sc, float &mn) {
	if (j < 4) {
		sc = (float)(q[j] & 63);
		mn = (float)(q[j + 4] & 63);
	} else {
		sc = (float)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
		mn = (float)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
	}
}

extern "C" __global__ void matvec_q4_k(const block_q4_k *__restrict__ w, const float *__restrict__ x, float *__restrict__ y,
                                       int n_out, int k, int batch) {
	const int n = blockIdx.x * (blockDim.x / OMNI_WARP) + threadIdx.x / OMNI_WARP, lane = threadIdx.x % OMNI_WARP;
	if (n >= n_out) return;
	const int nb = k / 256;
	const block_q4_k *row = w + (size_t)n * nb;
	float sum[MAX_BATCH];
	for (int b = 0; b < MAX_BATCH; b++) sum[b] = 0.0f;
	for (int j = lane; j < nb; j += OMNI_WARP) {
		const block_q4_k &blk = row[j];
		const float d = __half2float(blk.d), dmin = __half2float(blk.dmin);
		for (int p = 0; p < 4; p++) {
			float sc1, m1, sc2, m2;
			scale_min_k4(2 * p, blk.scales, sc1, m1);
			scale_min_k4(2 * p + 1, blk.scales, sc2, m2);
			const float d1 = d * sc1, dm1 = dmin * m1, d2 = d * sc2, dm2 = dmin * m2;
			const unsigned char *q = blk.qs + 32 * p;
			for (int b = 0; b < batch; b++) {
				const float *xb = x + (size_t)b * k + j * 256 + 64 * p;
				float s1 = 0.0f, s2 = 0.0f, x1 = 0.0f, x2 = 0.0f;
#pragma unroll 8
				for (int i = 0; i < 32; i++) {
					s1 += (float)(q[i] & 15) * xb[i];
					s2 += (float)(q[i] >> 4) * xb[i + 32];
					x1 += xb[i];
					x2 += xb[i + 32];
				}
				sum[b] += d1 * s1 - dm1 * x1 + d2 * s2 - dm2 * x2;
			}
		}
	}
	for (int b = 0; b < batch; b++) {
		const float s = warp_sum(sum[b]);
		if (lane == 0) y[(size_t)b * n_out + n] = s;
	}
}
