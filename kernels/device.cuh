// device.cuh: the data layouts the compute.Device kernels share (backend/compute/cuda builds the same
// layouts on the host side; keep the two in step).
#pragma once
#include "omnikv.cuh"

// A Batch on the device: one int32 array [qstart (seqs), qrows (seqs), pos0 (seqs), len (seqs),
// block_off (seqs+1), blocks (...)], as compute.BatchDesc describes it.
struct BatchView {
	const int *qstart, *qrows, *pos0, *len, *boff, *blocks;
};
__device__ __forceinline__ BatchView batch_view(const int *b, int seqs) {
	BatchView v;
	v.qstart = b;
	v.qrows = b + seqs;
	v.pos0 = b + 2 * seqs;
	v.len = b + 3 * seqs;
	v.boff = b + 4 * seqs;
	v.blocks = b + 5 * seqs + 1;
	return v;
}

// A KV store's page table for one layer: pages[2*p] is the device address of page p's keys, pages[2*p+1]
// of its values; a page holds (page_tokens, kv_dim) elements, fp16 or fp32 (f32 != 0). Host-tier pages are
// pinned host memory mapped into the device's address space, so the same kernels read every tier.
__device__ __forceinline__ const char *kv_row(const unsigned long long *pages, int kv, int page, int off, int kv_dim, int esz) {
	return (const char *)(pages[2 * page + kv]) + (size_t)off * kv_dim * esz;
}
__device__ __forceinline__ float kv_at(const char *row, int i, int f32) {
	return f32 ? ((const float *)row)[i] : __half2float(((const __half *)row)[i]);
}

// One sequence's OmniKV selection state at a filter layer (compute.SelState), 128 bytes; the host writes
// an array of them per call (zeroed, valid == 0, for sequences without a state).
struct SelDev {
	int *counts;      // (8) [0] selected, [1] to fetch, [2] attention list length, [3] rows fetched since the
	                  // last Select; (long long) at counts+4: rows fetched this turn
	float *window;    // (win_cap, qdim) the newest queries, a ring: row i (oldest first) at (win_start+i) % win_cap
	float *scores;    // (n) candidate scores
	float *headmax;   // (kv_heads, hm_len) fused head max of the filter layer's attention
	int *sel;         // (k) the selection, ascending token indices
	int *tok_of;      // (k) token in each staging slot, -1 when empty
	int *fetch_rows;  // (k) rows newly selected by the last Select, ascending
	int *fetch_slots; // (k) their staging slots
	int *attend;      // (attend_cap) staging slots in use (ascending), then the generated tokens' slots
	int *mark;        // (n) scratch of Select, zero between calls
	int n, k, win_len, win_start, win_cap, qdim, kv_heads, hm_len, forced, step, valid, pad;
};

// rank_key maps a score to a key whose unsigned order is omnikv.Select's ranking: NaN lowest (0), -0 as +0.
__device__ __forceinline__ unsigned rank_key(float v) {
	if (v != v) return 0u;
	if (v == 0.0f) v = 0.0f;
	const unsigned b = __float_as_uint(v);
	return b ^ ((unsigned)((int)b >> 31) | 0x80000000u);
}

// radix_kth finds, with the whole block, the rank_key of the k-th largest of x[0..n) (1 <= k <= n) by a radix
// select over 8-bit digits from the top: on return *prefix is that key and *want how many values with exactly
// that key belong to the k largest (the ties to take). hist: (256) shared; prefix, want: shared. Every thread
// of the block must call it.
__device__ __forceinline__ void radix_kth(const float *x, int n, unsigned k, unsigned *hist, unsigned *prefix, unsigned *want) {
	if (threadIdx.x == 0) {
		*prefix = 0u;
		*want = k;
	}
	__syncthreads();
	for (int shift = 24; shift >= 0; shift -= 8) {
		for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0u;
		__syncthreads();
		const unsigned mask = shift == 24 ? 0u : (0xffffffffu << (shift + 8));
		const unsigned p = *prefix;
		for (int i = threadIdx.x; i < n; i += blockDim.x) {
			const unsigned key = rank_key(x[i]);
			if ((key & mask) == (p & mask)) atomicAdd(&hist[(key >> shift) & 255u], 1u);
		}
		__syncthreads();
		if (threadIdx.x == 0) {
			unsigned acc = 0u;
			for (int d = 255; d >= 0; d--) {
				if (acc + hist[d] >= *want || d == 0) {
					*prefix |= (unsigned)d << shift;
					*want -= acc;
					break;
				}
				acc += hist[d];
			}
		}
		__syncthreads();
	}
}

// block_scan returns the exclusive prefix sum of v over the block (blockDim.x a multiple of 32, <= 1024)
// and the block's total in *total. sh: (32) shared ints. Every thread of the block must call it.
__device__ __forceinline__ int block_scan(int v, int *sh, int *total) {
	const int lane = threadIdx.x % OMNI_WARP, warp = threadIdx.x / OMNI_WARP, warps = blockDim.x / OMNI_WARP;
	int x = v;
	for (int o = 1; o < OMNI_WARP; o <<= 1) {
		const int y = __shfl_up_sync(0xffffffffu, x, o);
		if (lane >= o) x += y;
	}
	__syncthreads();
	if (lane == OMNI_WARP - 1) sh[warp] = x;
	__syncthreads();
	if (warp == 0) {
		int w = lane < warps ? sh[lane] : 0;
		for (int o = 1; o < OMNI_WARP; o <<= 1) {
			const int y = __shfl_up_sync(0xffffffffu, w, o);
			if (lane >= o) w += y;
		}
		if (lane < warps) sh[lane] = w;
	}
	__syncthreads();
	const int before = warp > 0 ? sh[warp - 1] : 0;
	*total = sh[warps - 1];
	__syncthreads();
	return before + x - v;
}

// The host writes SelDev byte by byte (backend/compute/cuda/sel.go): 10 pointers, then 12 ints, no padding
// (NVRTC has no offsetof; the size pins the layout).
static_assert(sizeof(SelDev) == 128, "SelDev is 128 bytes");
