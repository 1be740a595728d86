#include "omnikv.cuh"

// rmsnorm: y = x / sqrt(mean(x^2) + eps) * w, one block per row (RMSNorm). The sum of squares accumulates
// in float64 and the scale is computed as the CPU device does (float32 mean + eps, then 1/sqrt in float64),
// so that the two devices agree to a few ulp.
//   x (rows, dim) f32, w (dim) f32, y (rows, dim) f32; blockDim.x a multiple of 32, at most 1024.
extern "C" __global__ void rmsnorm_f32(const float *__restrict__ x, const float *__restrict__ w, float *__restrict__ y,
                                       int dim, float eps) {
	__shared__ double scratch[32];
	const float *xr = x + (size_t)blockIdx.x * dim;
	float *yr = y + (size_t)blockIdx.x * dim;
	double ss = 0.0;
	for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += (double)xr[i] * (double)xr[i];
	for (int o = OMNI_WARP / 2; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
	const int lane = threadIdx.x % OMNI_WARP, warp = threadIdx.x / OMNI_WARP;
	if (lane == 0) scratch[warp] = ss;
	__syncthreads();
	ss = 0.0;
	for (int i = 0; i < (int)(blockDim.x / OMNI_WARP); i++) ss += scratch[i];
	const float inv = (float)(1.0 / sqrt((double)__fadd_rn((float)(ss / dim), eps)));
	for (int i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = __fmul_rn(w[i], __fmul_rn(xr[i], inv));
}
