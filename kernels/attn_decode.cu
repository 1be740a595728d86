#include "omnikv.cuh"

// Decode attention over a paged fp16 KV cache, split over the context (flash-decoding), GQA-aware: the
// query heads that share a KV head are served by one block, so each K/V row is read once per group.
// HEAD_DIM is a compile-time constant (-DHEAD_DIM=64), a multiple of 32; each lane holds HEAD_DIM/32 dims.
#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
#define DPL (HEAD_DIM / OMNI_WARP)
#define MAX_GROUP 8
#define WARPS 4

// attn_decode_partial: grid (seqs, kv_heads, splits), block (WARPS*32). Split s of sequence b covers context
// tokens [s*chunk, min((s+1)*chunk, ctx_lens[b])); warp w takes every WARPS-th token of it. Writes, per query
// head, the split's running max m, sum l and unnormalised output acc.
//   q            (seqs, heads, HEAD_DIM) f32, heads = kv_heads*group, group <= MAX_GROUP
//   k_cache, v_cache (slots, kv_heads, HEAD_DIM) f16, slot = block*page_tokens + offset
//   block_tables (seqs, max_blocks) int32;  ctx_lens (seqs) int32
//   part_m, part_l (seqs, heads, splits) f32;  part_acc (seqs, heads, splits, HEAD_DIM) f32
extern "C" __global__ void attn_decode_partial(const float *__restrict__ q, const __half *__restrict__ k_cache,
                                               const __half *__restrict__ v_cache, const int *__restrict__ block_tables,
                                               const int *__restrict__ ctx_lens, float *__restrict__ part_m,
                                               float *__restrict__ part_l, float *__restrict__ part_acc, int kv_heads,
                                               int group, int page_tokens, int max_blocks, int chunk, float scale) {
	const int b = blockIdx.x, kh = blockIdx.y, split = blockIdx.z, splits = gridDim.z;
	const int lane = threadIdx.x % OMNI_WARP, warp = threadIdx.x / OMNI_WARP;
	const int heads = kv_heads * group;
	const int lo = split * chunk, hi = min(lo + chunk, ctx_lens[b]);

	float qv[MAX_GROUP][DPL], acc[MAX_GROUP][DPL], m[MAX_GROUP], l[MAX_GROUP];
	for (int g = 0; g < group; g++) {
		const float *qh = q + ((size_t)b * heads + kh * group + g) * HEAD_DIM;
		for (int d = 0; d < DPL; d++) {
			qv[g][d] = qh[lane + d * OMNI_WARP] * scale;
			acc[g][d] = 0.0f;
		}
		m[g] = -INFINITY;
		l[g] = 0.0f;
	}
	for (int t = lo + warp; t < hi; t += WARPS) {
		const int slot = block_tables[(size_t)b * max_blocks + t / page_tokens] * page_tokens + t % page_tokens;
		const __half *kr = k_cache + ((size_t)slot * kv_heads + kh) * HEAD_DIM;
		const __half *vr = v_cache + ((size_t)slot * kv_heads + kh) * HEAD_DIM;
		float kd[DPL], vd[DPL];
		for (int d = 0; d < DPL; d++) {
			kd[d] = __half2float(kr[lane + d * OMNI_WARP]);
			vd[d] = __half2float(vr[lane + d * OMNI_WARP]);
		}
		for (int g = 0; g < group; g++) {
			float s = 0.0f;
			for (int d = 0; d < DPL; d++) s += qv[g][d] * kd[d];
			s = warp_sum(s);
			const float mn = fmaxf(m[g], s), corr = __expf(m[g] - mn), p = __expf(s - mn);
			l[g] = l[g] * corr + p;
			for (int d = 0; d < DPL; d++) acc[g][d] = acc[g][d] * corr + p * vd[d];
			m[g] = mn;
		}
	}
	// Merge the warps through shared memory, one group member at a time.
	__shared__ float sm[WARPS], sl[WARPS], sacc[WARPS][HEAD_DIM];
	for (int g = 0; g < group; g++) {
		if (lane == 0) {
			sm[warp] = m[g];
			sl[warp] = l[g];
		}
		for (int d = 0; d < DPL; d++) sacc[warp][lane + d * OMNI_WARP] = acc[g][d];
		__syncthreads();
		if (warp == 0) {
			float mm = -INFINITY;
			for (int w = 0; w < WARPS; w++) mm = fmaxf(mm, sm[w]);
			float ll = 0.0f, out[DPL];
			for (int d = 0; d < DPL; d++) out[d] = 0.0f;
			for (int w = 0; w < WARPS; w++) {
				const float c = sm[w] == -INFINITY ? 0.0f : __expf(sm[w] - mm);
				ll += sl[w] * c;
				for (int d = 0; d < DPL; d++) out[d] += sacc[w][lane + d * OMNI_WARP] * c;
			}
			const size_t hs = ((size_t)b * heads + kh * group + g) * splits + split;
			if (lane == 0) {
				part_m[hs] = mm;
				part_l[hs] = ll;
			}
			for (int d = 0; d < DPL; d++) part_acc[hs * HEAD_DIM + lane + d * OMNI_WARP] = out[d];
		}
		__syncthreads();
	}
}

// attn_decode_combine: grid (seqs, heads), block (32). Merges the splits of one query head:
// out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M). out (seqs, heads, HEAD_DIM) f32.
extern "C" __global__ void attn_decode_combine(const float *__restrict__ part_m, const float *__restrict__ part_l,
                                               const float *__restrict__ part_acc, float *__restrict__ out, int splits) {
	const int b = blockIdx.x, h = blockIdx.y, heads = gridDim.y, lane = threadIdx.x;
	const size_t base = ((size_t)b * heads + h) * splits;
	float mm = -INFINITY;
	for (int s = 0; s < splits; s++) mm = fmaxf(mm, part_m[base + s]);
	float ll = 0.0f, o[DPL];
	for (int d = 0; d < DPL; d++) o[d] = 0.0f;
	for (int s = 0; s < splits; s++) {
		const float c = part_m[base + s] == -INFINITY ? 0.0f : __expf(part_m[base + s] - mm);
		ll += part_l[base + s] * c;
		for (int d = 0; d < DPL; d++) o[d] += part_acc[(base + s) * HEAD_DIM + lane + d * OMNI_WARP] * c;
	}
	const float inv = ll > 0.0f ? 1.0f / ll : 0.0f;
	float *dst = out + ((size_t)b * heads + h) * HEAD_DIM;
	for (int d = 0; d < DPL; d++) dst[lane + d * OMNI_WARP] = o[d] * inv;
}
