#include "omnikv.cuh"

// Causal prefill attention for a chunk of a sequence's prompt over its paged fp16 KV (the chunk's own keys
// already written): query i of the chunk, at position start+i, attends to positions 0..start+i. One warp
// per (query token, query head); online softmax over the keys. Simple and correct, not yet tiled for tensor
// cores (prefill's matmuls dominate at SmolLM2's size; a flash-attention tiling is the next step).
#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
#define DPL (HEAD_DIM / OMNI_WARP)

// attn_prefill: grid (ceil(chunk_tokens*heads/4)), block (128).
//   q (chunk_tokens, heads, HEAD_DIM) f32;  out (chunk_tokens, heads, HEAD_DIM) f32
//   k_cache, v_cache (slots, kv_heads, HEAD_DIM) f16;  block_table (max_blocks) int32 of this sequence
//   start: the chunk's first position
extern "C" __global__ void attn_prefill(const float *__restrict__ q, const __half *__restrict__ k_cache,
                                        const __half *__restrict__ v_cache, const int *__restrict__ block_table,
                                        float *__restrict__ out, int chunk_tokens, int kv_heads, int group,
                                        int page_tokens, int start, float scale) {
	const int heads = kv_heads * group, lane = threadIdx.x % OMNI_WARP;
	const int item = blockIdx.x * (blockDim.x / OMNI_WARP) + threadIdx.x / OMNI_WARP;
	if (item >= chunk_tokens * heads) return;
	const int i = item / heads, h = item % heads, kh = h / group;
	const float *qh = q + ((size_t)i * heads + h) * HEAD_DIM;
	float qv[DPL], acc[DPL];
	for (int d = 0; d < DPL; d++) {
		qv[d] = qh[lane + d * OMNI_WARP] * scale;
		acc[d] = 0.0f;
	}
	float m = -INFINITY, l = 0.0f;
	const int last = start + i;
	for (int t = 0; t <= last; t++) {
		const int slot = block_table[t / page_tokens] * page_tokens + t % page_tokens;
		const __half *kr = k_cache + ((size_t)slot * kv_heads + kh) * HEAD_DIM;
		const __half *vr = v_cache + ((size_t)slot * kv_heads + kh) * HEAD_DIM;
		float s = 0.0f;
		for (int d = 0; d < DPL; d++) s += qv[d] * __half2float(kr[lane + d * OMNI_WARP]);
		s = warp_sum(s);
		const float mn = fmaxf(m, s), corr = __expf(m - mn), p = __expf(s - mn);
		l = l * corr + p;
		for (int d = 0; d < DPL; d++) acc[d] = acc[d] * corr + p * __half2float(vr[lane + d * OMNI_WARP]);
		m = mn;
	}
	float *o = out + ((size_t)i * heads + h) * HEAD_DIM;
	for (int d = 0; d < DPL; d++) o[lane + d * OMNI_WARP] = acc[d] / l;
}
