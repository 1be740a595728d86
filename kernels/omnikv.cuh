// omnikv.cuh: helpers shared by the kernels (included by name; NVRTC gets it as an in-memory header).
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>

#define OMNI_WARP 32
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

// warp_sum and warp_max reduce over the 32 lanes of a warp; every lane gets the result.
__device__ __forceinline__ float warp_sum(float v) {
	for (int o = OMNI_WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}
__device__ __forceinline__ float warp_max(float v) {
	for (int o = OMNI_WARP / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

// block_sum reduces over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// scratch: (32) shared floats.
__device__ __forceinline__ float block_sum(float v, float *scratch) {
	const int lane = threadIdx.x % OMNI_WARP, warp = threadIdx.x / OMNI_WARP;
	v = warp_sum(v);
	__syncthreads();
	if (lane == 0) scratch[warp] = v;
	__syncthreads();
	const int warps = blockDim.x / OMNI_WARP;
	v = lane < warps ? scratch[lane] : 0.0f;
	return warp_sum(v);
}

// A q8_0 block: 32 weights as int8 with one fp16 scale (GGML's layout, 34 bytes).
struct block_q8_0 {
	__half d;
	signed char qs[32];
};
// A q4_0 block: 32 weights as 4-bit values (low nibbles first half, high nibbles second), w = d*(q-8).
struct block_q4_0 {
	__half d;
	unsigned char qs[16];
};
// A q4_1 block: w = d*q + m.
struct block_q4_1 {
	__half d, m;
	unsigned char qs[16];
};
