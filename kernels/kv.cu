#include "omnikv.cuh"

// write_kv_f16: stores a step's keys and values (f32 activations) into a layer's paged fp16 KV store at
// their slots (WriteKV). One block per token.
//   k, v (tokens, kv_dim) f32;  slots (tokens) int32;  k_store, v_store (store_slots, kv_dim) f16
extern "C" __global__ void write_kv_f16(const float *__restrict__ k, const float *__restrict__ v, const int *__restrict__ slots,
                                        __half *__restrict__ k_store, __half *__restrict__ v_store, int kv_dim) {
	const int t = blockIdx.x;
	const size_t dst = (size_t)slots[t] * kv_dim, src = (size_t)t * kv_dim;
	for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
		k_store[dst + i] = __float2half_rn(k[src + i]);
		v_store[dst + i] = __float2half_rn(v[src + i]);
	}
}

// copy_rows_f32: dst[i] = src[rows[i]] (CopyRows: e.g. the rows of the step's last tokens, whose logits are
// wanted). src (src_rows, cols), dst (len(rows), cols) f32, rows (n) int32; one block per row.
extern "C" __global__ void copy_rows_f32(const float *__restrict__ src, float *__restrict__ dst, const int *__restrict__ rows, int cols) {
	const float *s = src + (size_t)rows[blockIdx.x] * cols;
	float *d = dst + (size_t)blockIdx.x * cols;
	for (int i = threadIdx.x; i < cols; i += blockDim.x) d[i] = s[i];
}

// add_bias_f32: x[r] += bias for every row (Qwen2's q/k/v biases). x (rows, cols) f32, bias (cols) f32.
extern "C" __global__ void add_bias_f32(float *__restrict__ x, const float *__restrict__ bias, int cols) {
	float *r = x + (size_t)blockIdx.x * cols;
	for (int i = threadIdx.x; i < cols; i += blockDim.x) r[i] += bias[i];
}
