#include "omnikv.cuh"

// embed_*: out[t] = table[ids[t]], one block per token. ids (tokens) int32, out (tokens, dim) f32;
// table (vocab, dim) in the weight's own type.
extern "C" __global__ void embed_f16(const __half *__restrict__ table, const int *__restrict__ ids, float *__restrict__ out, int dim) {
	const __half *row = table + (size_t)ids[blockIdx.x] * dim;
	float *o = out + (size_t)blockIdx.x * dim;
	for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = __half2float(row[i]);
}

extern "C" __global__ void embed_bf16(const __nv_bfloat16 *__restrict__ table, const int *__restrict__ ids, float *__restrict__ out, int dim) {
	const __nv_bfloat16 *row = table + (size_t)ids[blockIdx.x] * dim;
	float *o = out + (size_t)blockIdx.x * dim;
	for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = __bfloat162float(row[i]);
}

// embed_q8_0: table (vocab, dim/32) q8_0 blocks; dim a multiple of 32.
extern "C" __global__ void embed_q8_0(const block_q8_0 *__restrict__ table, const int *__restrict__ ids, float *__restrict__ out, int dim) {
	const block_q8_0 *row = table + (size_t)ids[blockIdx.x] * (dim / 32);
	float *o = out + (size_t)blockIdx.x * dim;
	for (int i = threadIdx.x; i < dim; i += blockDim.x) {
		const block_q8_0 &b = row[i / 32];
		o[i] = __half2float(b.d) * (float)b.qs[i % 32];
	}
}
