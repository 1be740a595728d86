#include "omnikv.cuh"

// gather_rows_f16: copies selected KV rows of one layer from the offload tier (pinned host pages, mapped
// into the device's address space: zero-copy reads over the host link) into the sequence's device staging.
// One warp per row; a row is K and V of one token, kv_dim halfs each, read as 16-byte vectors.
//   src_k, src_v   (slots, kv_dim) f16 in pinned host memory (device pointers of the mapping)
//   dst_k, dst_v   (staging_slots, kv_dim) f16 in device memory
//   src_slots      (rows) int32: the selected tokens' slots in the offload store
//   dst_slots      (rows) int32: where each goes in the staging
// kv_dim a multiple of 8 (16-byte vectors); grid (ceil(rows/4)), block (128).
extern "C" __global__ void gather_rows_f16(const __half *__restrict__ src_k, const __half *__restrict__ src_v,
                                           __half *__restrict__ dst_k, __half *__restrict__ dst_v,
                                           const int *__restrict__ src_slots, const int *__restrict__ dst_slots,
                                           int rows, int kv_dim) {
	const int row = blockIdx.x * (blockDim.x / OMNI_WARP) + threadIdx.x / OMNI_WARP, lane = threadIdx.x % OMNI_WARP;
	if (row >= rows) return;
	const size_t s = (size_t)src_slots[row] * kv_dim, d = (size_t)dst_slots[row] * kv_dim;
	const int vecs = kv_dim / 8;
	const uint4 *sk = (const uint4 *)(src_k + s), *sv = (const uint4 *)(src_v + s);
	uint4 *dk = (uint4 *)(dst_k + d), *dv = (uint4 *)(dst_v + d);
	for (int i = lane; i < vecs; i += OMNI_WARP) {
		dk[i] = sk[i];
		dv[i] = sv[i];
	}
}
