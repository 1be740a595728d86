#include "dequant.cuh"

// matmul_any: out (n, rows) = x (n, cols) . w^T for a weight of any bound type (MatMul). One warp per output
// row; lane l takes the 32-element blocks l, l+32, ... of the row, dequantizes each once (dequant.cuh) and
// multiplies it with up to MM_TOKENS tokens; a warp sum finishes each dot product. A token's result depends
// only on its own x row and the weight, never on n or on the other tokens (batch invariance, a bit-exact
// property the conformance suite checks). Not tuned: no tensor cores, no shared-memory tiling of x.
//   w (rows, row_bytes) the weight's bytes; x (>= n, cols) f32; out (>= n, rows) f32.
// grid (ceil(rows/4), ceil(n/MM_TOKENS)), block (128).
#define MM_TOKENS 8
extern "C" __global__ void matmul_any(const unsigned char *__restrict__ w, const float *__restrict__ x, float *__restrict__ out,
                                      int type, int rows, int cols, long long row_bytes, int n) {
	const int lane = threadIdx.x % OMNI_WARP;
	const int r = blockIdx.x * (blockDim.x / OMNI_WARP) + threadIdx.x / OMNI_WARP;
	const int t0 = blockIdx.y * MM_TOKENS, nt = min(MM_TOKENS, n - t0);
	if (r >= rows || nt <= 0) return;
	const unsigned char *row = w + (size_t)r * row_bytes;
	float acc[MM_TOKENS];
	for (int t = 0; t < MM_TOKENS; t++) acc[t] = 0.0f;
	const int blocks = (cols + 31) / 32;
	float v[32];
	for (int j = lane; j < blocks; j += OMNI_WARP) {
		deq32(type, row, j, cols, v);
		const int lim = min(32, cols - 32 * j);
		for (int t = 0; t < MM_TOKENS; t++) {
			if (t >= nt) break;
			const float *xr = x + (size_t)(t0 + t) * cols + 32 * j;
			float s = 0.0f;
			for (int i = 0; i < lim; i++) s += v[i] * xr[i];
			acc[t] += s;
		}
	}
	for (int t = 0; t < MM_TOKENS; t++) {
		const float s = warp_sum(acc[t]);
		if (t < nt && lane == 0) out[(size_t)(t0 + t) * rows + r] = s;
	}
}
