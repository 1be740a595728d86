#include "device.cuh"

// kv_write: stores row i of k and v in slot slots[i] of one layer of a paged store (WriteKV), as fp16
// (round to nearest even, as weights.F32ToF16) or fp32; a negative slot skips the row.
//   k, v (>= n, kv_dim) f32; slots (n) int32; pages (store pages, 2) device addresses of the layer's pages.
// grid (n), block (128).
extern "C" __global__ void kv_write(const float *__restrict__ k, const float *__restrict__ v, const int *__restrict__ slots,
                                    const unsigned long long *__restrict__ pages, int page_tokens, int kv_dim, int f32) {
	const int slot = slots[blockIdx.x];
	if (slot < 0) return;
	const int page = slot / page_tokens, off = slot % page_tokens;
	const float *kr = k + (size_t)blockIdx.x * kv_dim, *vr = v + (size_t)blockIdx.x * kv_dim;
	if (f32) {
		float *dk = (float *)kv_row(pages, 0, page, off, kv_dim, 4), *dv = (float *)kv_row(pages, 1, page, off, kv_dim, 4);
		for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
			dk[i] = kr[i];
			dv[i] = vr[i];
		}
		return;
	}
	__half *dk = (__half *)kv_row(pages, 0, page, off, kv_dim, 2), *dv = (__half *)kv_row(pages, 1, page, off, kv_dim, 2);
	for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
		dk[i] = __float2half_rn(kr[i]);
		dv[i] = __float2half_rn(vr[i]);
	}
}
