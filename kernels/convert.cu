#include "omnikv.cuh"

// cvt_f32_f16, cvt_f32_bf16: y = x rounded to nearest even (the activations of a cuBLASLt f16/bf16 matmul).
//   x (n) f32; y (n) f16 / bf16. Grid-stride loop.
extern "C" __global__ void cvt_f32_f16(const float *__restrict__ x, __half *__restrict__ y, long long n) {
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) y[i] = __float2half_rn(x[i]);
}

extern "C" __global__ void cvt_f32_bf16(const float *__restrict__ x, __nv_bfloat16 *__restrict__ y, long long n) {
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) y[i] = __float2bfloat16_rn(x[i]);
}
