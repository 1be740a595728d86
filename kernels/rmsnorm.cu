#include "omnikv.cuh"

// rmsnorm: y = x / sqrt(mean(x^2) + eps) * w, one block per row.
//   x (rows, dim) f32, w (dim) f32, y (rows, dim) f32; blockDim.x a multiple of 32.
extern "C" __global__ void rmsnorm_f32(const float *__restrict__ x, const float *__restrict__ w, float *__restrict__ y,
                                       int dim, float eps) {
	__shared__ float scratch[32];
	const float *xr = x + (size_t)blockIdx.x * dim;
	float *yr = y + (size_t)blockIdx.x * dim;
	float ss = 0.0f;
	for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
	ss = block_sum(ss, scratch);
	const float inv = rsqrtf(ss / dim + eps);
	for (int i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = xr[i] * inv * w[i];
}
