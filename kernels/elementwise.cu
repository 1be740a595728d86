#include "omnikv.cuh"

// add_f32: y += x, n elements. x (n), y (n).
extern "C" __global__ void add_f32(const float *__restrict__ x, float *__restrict__ y, long long n) {
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) y[i] += x[i];
}

// swiglu_f32: out = silu(gate) * up, the FFN's activation. gate, up, out (n).
extern "C" __global__ void swiglu_f32(const float *__restrict__ gate, const float *__restrict__ up, float *__restrict__ out, long long n) {
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		const float g = gate[i];
		out[i] = g / (1.0f + __expf(-g)) * up[i];
	}
}

// swiglu_inplace_f32: gate = silu(gate) * up (SwiGLU), with the accurate expf (within 2 ulp, as the CPU
// device's). gate, up (n).
extern "C" __global__ void swiglu_inplace_f32(float *gate, const float *__restrict__ up, long long n) {
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		const float g = gate[i];
		gate[i] = g / (1.0f + expf(-g)) * up[i];
	}
}
