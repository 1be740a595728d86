#include "device.cuh"

// Select's choice of tokens per state (one block of 1024 threads per state), exactly omnikv.Select: the k
// best of the first n - forced candidates (ties to the lower index, NaN last, -0 as +0) and the newest
// `forced` always, ascending; or, in sink-recent mode, the first `sink` candidates and the newest k - sink.
// The (k-forced)-th key is found by four 8-bit radix passes over rank_key; one pass in index order then takes
// every candidate above it and the lowest-indexed ones equal to it. Writes sel and counts[0].

// sel_headmax_scores: scores[j] = max over KV heads of headmax[kvh*hm_len + j], j < n (SelHeadMax).
// grid (ceil(max_n/256), states), block (256).
extern "C" __global__ void sel_headmax_scores(const SelDev *__restrict__ st) {
	const SelDev S = st[blockIdx.y];
	const int j = blockIdx.x * blockDim.x + threadIdx.x;
	if (!S.valid || j >= S.n) return;
	float v = S.headmax[j];
	for (int h = 1; h < S.kv_heads; h++) v = fmaxf(v, S.headmax[(size_t)h * S.hm_len + j]);
	S.scores[j] = v;
}

// sel_topk: mode 0 scores, 1 sink-recent (sink leading tokens). grid (states), block (1024).
extern "C" __global__ void __launch_bounds__(1024) sel_topk(const SelDev *__restrict__ st, int mode, int sink) {
	__shared__ unsigned hist[256];
	__shared__ unsigned prefix, want;
	__shared__ int sh[32];
	const SelDev S = st[blockIdx.x];
	if (!S.valid) return;
	const int n = S.n, k = min(S.k, n), forced = min(S.forced, k);
	if (mode == 1) {
		const int sk = min(sink, k);
		for (int i = threadIdx.x; i < k; i += blockDim.x) S.sel[i] = i < sk ? i : n - (k - sk) + (i - sk);
		if (threadIdx.x == 0) S.counts[0] = k;
		return;
	}
	const int fr = n - forced, need = k - forced;
	int taken = 0;
	if (need >= fr) {
		for (int i = threadIdx.x; i < fr; i += blockDim.x) S.sel[i] = i;
		taken = fr;
	} else if (need > 0) {
		radix_kth(S.scores, fr, (unsigned)need, hist, &prefix, &want);
		const unsigned t = prefix;
		const int ties = (int)want;
		int eqBase = 0;
		for (int base = 0; base < fr; base += blockDim.x) {
			const int i = base + threadIdx.x;
			const unsigned key = i < fr ? rank_key(S.scores[i]) : 0u;
			const int eq = i < fr && key == t;
			int eqTotal, takeTotal;
			const int eqPos = eqBase + block_scan(eq, sh, &eqTotal);
			const int take = i < fr && (key > t || (eq && eqPos < ties));
			const int pos = taken + block_scan(take, sh, &takeTotal);
			if (take) S.sel[pos] = i;
			eqBase += eqTotal;
			taken += takeTotal;
		}
	}
	for (int i = fr + threadIdx.x; i < n; i += blockDim.x) S.sel[taken + (i - fr)] = i;
	if (threadIdx.x == 0) S.counts[0] = taken + (n - fr);
}
