#include "omnikv.cuh"

// OmniKV selection on the device. A filter layer's decode attention (attn_decode_partial/combine) leaves
// each query head's softmax max M and sum L; select_scores turns them into one score per context token (the
// attention probability summed over the query heads, the "last" selector's score), and topk_* pick the k
// best tokens per sequence (ties to the lower index) with a radix select over the scores' bits.
#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
#define DPL (HEAD_DIM / OMNI_WARP)

// select_scores: grid (seqs, ceil(max_ctx/4)), block (128): one warp per token.
//   q (seqs, heads, HEAD_DIM) f32; k_cache (slots, kv_heads, HEAD_DIM) f16; block_tables (seqs, max_blocks);
//   cand (seqs) int32: the candidates (tokens cached when the turn began); head_m, head_l (seqs, heads) f32;
//   scores (seqs, max_ctx) f32 out: sum over heads of exp(q.k*scale - M_h) / L_h.
extern "C" __global__ void select_scores(const float *__restrict__ q, const __half *__restrict__ k_cache,
                                         const int *__restrict__ block_tables, const int *__restrict__ cand,
                                         const float *__restrict__ head_m, const float *__restrict__ head_l,
                                         float *__restrict__ scores, int kv_heads, int group, int page_tokens,
                                         int max_blocks, int max_ctx, float scale) {
	const int b = blockIdx.x, lane = threadIdx.x % OMNI_WARP;
	const int t = blockIdx.y * (blockDim.x / OMNI_WARP) + threadIdx.x / OMNI_WARP;
	if (t >= cand[b]) return;
	const int heads = kv_heads * group;
	const int slot = block_tables[(size_t)b * max_blocks + t / page_tokens] * page_tokens + t % page_tokens;
	float total = 0.0f;
	for (int kh = 0; kh < kv_heads; kh++) {
		const __half *kr = k_cache + ((size_t)slot * kv_heads + kh) * HEAD_DIM;
		float kd[DPL];
		for (int d = 0; d < DPL; d++) kd[d] = __half2float(kr[lane + d * OMNI_WARP]);
		for (int g = 0; g < group; g++) {
			const int h = kh * group + g;
			const float *qh = q + ((size_t)b * heads + h) * HEAD_DIM;
			float s = 0.0f;
			for (int d = 0; d < DPL; d++) s += qh[lane + d * OMNI_WARP] * kd[d];
			s = warp_sum(s) * scale;
			const float l = head_l[(size_t)b * heads + h];
			total += l > 0.0f ? __expf(s - head_m[(size_t)b * heads + h]) / l : 0.0f;
		}
	}
	if (lane == 0) scores[(size_t)b * max_ctx + t] = total;
}

// key orders floats as unsigned integers (larger float, larger key; NaN lowest).
__device__ __forceinline__ unsigned key_of(float f) {
	if (f != f) return 0u;
	const unsigned u = __float_as_uint(f);
	return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// topk_radix: one block per sequence (block 1024). Finds the k-th largest key by four 8-bit radix passes
// over the sequence's scores (histogram in shared memory), then writes the selected indices in increasing
// order: every key above the threshold, and the lowest-indexed tokens equal to it until k are taken.
//   scores (seqs, max_ctx) f32; cand (seqs) int32; out (seqs, k_cap) int32; out_n (seqs) int32 (min(k, cand)).
extern "C" __global__ void topk_radix(const float *__restrict__ scores, const int *__restrict__ cand, int *__restrict__ out,
                                      int *__restrict__ out_n, int max_ctx, int k, int k_cap) {
	__shared__ unsigned hist[256];
	__shared__ unsigned prefix, want;
	__shared__ int taken_above, ties_left, cursor;
	const int b = blockIdx.x, n = cand[b];
	const float *s = scores + (size_t)b * max_ctx;
	const int kk = min(k, min(n, k_cap));
	if (threadIdx.x == 0) {
		prefix = 0u;
		want = (unsigned)kk;  // rank (1-based) of the threshold among the largest
	}
	__syncthreads();
	if (kk == 0) {
		if (threadIdx.x == 0) out_n[b] = 0;
		return;
	}
	for (int shift = 24; shift >= 0; shift -= 8) {
		for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0u;
		__syncthreads();
		const unsigned mask = shift == 24 ? 0u : (0xffffffffu << (shift + 8));
		for (int i = threadIdx.x; i < n; i += blockDim.x) {
			const unsigned key = key_of(s[i]);
			if ((key & mask) == (prefix & mask)) atomicAdd(&hist[(key >> shift) & 255u], 1u);
		}
		__syncthreads();
		if (threadIdx.x == 0) {
			unsigned acc = 0u;
			for (int d = 255; d >= 0; d--) {
				if (acc + hist[d] >= want) {
					prefix |= (unsigned)d << shift;
					want -= acc;
					break;
				}
				acc += hist[d];
			}
		}
		__syncthreads();
	}
	// prefix is now the k-th largest key; want is how many tokens equal to it are taken.
	if (threadIdx.x == 0) {
		taken_above = kk - (int)want;
		ties_left = (int)want;
		cursor = 0;
	}
	__syncthreads();
	// Write in index order: one chunk of blockDim.x tokens at a time, positions by a block-wide scan.
	__shared__ int flags[1024];
	for (int base = 0; base < n; base += blockDim.x) {
		const int i = base + threadIdx.x;
		int sel = 0;
		if (i < n) {
			const unsigned key = key_of(s[i]);
			sel = key > prefix ? 1 : (key == prefix ? 2 : 0);
		}
		flags[threadIdx.x] = sel == 2 ? 1 : 0;
		__syncthreads();
		if (threadIdx.x == 0) { // ties by lowest index: keep the first ties_left of them
			for (int j = 0; j < (int)blockDim.x; j++) {
				if (flags[j]) {
					if (ties_left > 0) ties_left--;
					else flags[j] = 0;
				}
			}
		}
		__syncthreads();
		const int keep = sel == 1 || (sel == 2 && flags[threadIdx.x]);
		flags[threadIdx.x] = keep;
		__syncthreads();
		if (threadIdx.x == 0) {
			int c = cursor;
			for (int j = 0; j < (int)blockDim.x; j++) {
				const int kp = flags[j];
				flags[j] = c;
				c += kp;
			}
			cursor = c;
		}
		__syncthreads();
		if (keep) out[(size_t)b * k_cap + flags[threadIdx.x]] = i;
		__syncthreads();
	}
	if (threadIdx.x == 0) out_n[b] = kk;
	(void)taken_above;
}
