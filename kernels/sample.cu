#include "device.cuh"

// sample_rows: token choice on the device, one block (1024 threads) per logit row, so that a step reads
// back one id per sequence instead of its logits. Per row: temperature <= 0 is greedy (argmax, the lowest
// id on ties, NaN never wins); otherwise z = logits/temperature, the top_k largest z kept (0: all; ties at
// the k-th value are all kept), p = e^(z - max), then the smallest set of largest p whose sum reaches
// top_p of the total kept (top_p >= 1: all; found by bisection on a threshold of p), and one draw
// u in [0, 1) from a counter-based generator (seed, counter): the first id, in id order, where the running
// sum of kept p passes u times their total.
//   logits (rows, vocab) f32; temp, top_p (rows) f32; top_k (rows) int32; seed, counter (rows) u64;
//   out (rows) int32.
#define SB 1024

// mix64 is SplitMix64's finalizer: a bijection of 64-bit words with good avalanche.
__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

// uniform01 returns a float in [0, 1) from (seed, counter): 24 random bits.
__device__ __forceinline__ float uniform01(unsigned long long seed, unsigned long long counter) {
	const unsigned long long r = mix64(mix64(seed + 0x9e3779b97f4a7c15ull) ^ (counter * 0xd1b54a32d192ed03ull + 1ull));
	return (float)(r >> 40) * (1.0f / 16777216.0f);
}

__device__ __forceinline__ double block_sum_d(double v, double *sh) {
	for (int o = OMNI_WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
	__syncthreads();
	if (threadIdx.x % OMNI_WARP == 0) sh[threadIdx.x / OMNI_WARP] = v;
	__syncthreads();
	double s = 0.0;
	for (int w = 0; w < (int)(blockDim.x / OMNI_WARP); w++) s += sh[w];
	return s;
}

__device__ __forceinline__ float block_max_f(float v, float *sh) {
	v = warp_max(v);
	__syncthreads();
	if (threadIdx.x % OMNI_WARP == 0) sh[threadIdx.x / OMNI_WARP] = v;
	__syncthreads();
	float m = -INFINITY;
	for (int w = 0; w < (int)(blockDim.x / OMNI_WARP); w++) m = fmaxf(m, sh[w]);
	return m;
}

extern "C" __global__ void __launch_bounds__(1024) sample_rows(const float *__restrict__ logits, int vocab, const float *__restrict__ temp,
                                       const float *__restrict__ top_p, const int *__restrict__ top_k,
                                       const unsigned long long *__restrict__ seed, const unsigned long long *__restrict__ counter,
                                       int *__restrict__ out) {
	__shared__ double shd[32];
	__shared__ float shf[32];
	__shared__ unsigned hist[256];
	__shared__ unsigned prefix, want;
	__shared__ double scan[SB];
	__shared__ int found;
	const int r = blockIdx.x, tid = threadIdx.x;
	const float *x = logits + (size_t)r * vocab;
	const float T = temp[r];
	if (!(T > 0.0f)) { // greedy
		float best = -INFINITY;
		int bi = 0x7fffffff;
		for (int i = tid; i < vocab; i += blockDim.x)
			if (x[i] > best || (x[i] == best && i < bi)) best = x[i], bi = i;
		for (int o = OMNI_WARP / 2; o > 0; o >>= 1) {
			const float v = __shfl_xor_sync(0xffffffffu, best, o);
			const int i = __shfl_xor_sync(0xffffffffu, bi, o);
			if (v > best || (v == best && i < bi)) best = v, bi = i;
		}
		if (tid % OMNI_WARP == 0) {
			shf[tid / OMNI_WARP] = best;
			hist[tid / OMNI_WARP] = (unsigned)bi;
		}
		__syncthreads();
		if (tid == 0) {
			for (int w = 1; w < (int)(blockDim.x / OMNI_WARP); w++)
				if (shf[w] > best || (shf[w] == best && (int)hist[w] < bi)) best = shf[w], bi = (int)hist[w];
			out[r] = bi == 0x7fffffff ? 0 : bi;
		}
		return;
	}
	// The k-th largest logit's key (dividing by T > 0 keeps the order), by radix select.
	const int k = top_k[r];
	unsigned kth = 0u; // keys >= kth are kept
	if (k > 0 && k < vocab) {
		radix_kth(x, vocab, (unsigned)k, hist, &prefix, &want);
		kth = prefix;
	}
	float m = -INFINITY;
	for (int i = tid; i < vocab; i += blockDim.x)
		if (rank_key(x[i]) >= kth && x[i] == x[i]) m = fmaxf(m, x[i] / T);
	m = block_max_f(m, shf);
	// p_i = e^(z_i - m) for kept ids; total.
	double tot = 0.0;
	for (int i = tid; i < vocab; i += blockDim.x)
		if (rank_key(x[i]) >= kth && x[i] == x[i]) tot += (double)expf(x[i] / T - m);
	tot = block_sum_d(tot, shd);
	// top-p: the largest threshold tau in (0, 1] with sum_{p >= tau} p >= top_p * total.
	float tau = 0.0f;
	const float P = top_p[r];
	if (P > 0.0f && P < 1.0f && tot > 0.0) {
		float lo = 0.0f, hi = 1.0f; // invariant: mass(lo) >= P*tot (mass(0) = tot)
		for (int it = 0; it < 30; it++) {
			const float mid = 0.5f * (lo + hi);
			double mass = 0.0;
			for (int i = tid; i < vocab; i += blockDim.x) {
				if (rank_key(x[i]) < kth || x[i] != x[i]) continue;
				const float p = expf(x[i] / T - m);
				if (p >= mid) mass += (double)p;
			}
			mass = block_sum_d(mass, shd);
			if (mass >= (double)P * tot) lo = mid;
			else hi = mid;
		}
		tau = lo;
		double kept = 0.0;
		for (int i = tid; i < vocab; i += blockDim.x)
			if (rank_key(x[i]) >= kth && x[i] == x[i]) {
				const float p = expf(x[i] / T - m);
				if (p >= tau) kept += (double)p;
			}
		tot = block_sum_d(kept, shd);
	}
	const double target = (double)uniform01(seed[r], counter[r]) * tot;
	if (tid == 0) found = 0x7fffffff; // atomicMin keeps the lowest id that holds the target
	__syncthreads();
	double before = 0.0;
	int last = -1;
	for (int base = 0; base < vocab; base += blockDim.x) {
		const int i = base + tid;
		double p = 0.0;
		if (i < vocab && rank_key(x[i]) >= kth && x[i] == x[i]) {
			const float pf = expf(x[i] / T - m);
			if (pf >= tau) p = (double)pf;
		}
		scan[tid] = p;
		__syncthreads();
		for (int o = 1; o < (int)blockDim.x; o <<= 1) { // inclusive scan (Hillis-Steele)
			const double add = tid >= o ? scan[tid - o] : 0.0;
			__syncthreads();
			scan[tid] += add;
			__syncthreads();
		}
		const double incl = before + scan[tid], excl = incl - p;
		if (p > 0.0 && excl <= target && target < incl) atomicMin(&found, i);
		if (p > 0.0) last = i;
		before += scan[blockDim.x - 1];
		__syncthreads();
	}
	// Rounding may leave the target at the very end: take the last kept id.
	for (int o = OMNI_WARP / 2; o > 0; o >>= 1) last = max(last, __shfl_xor_sync(0xffffffffu, last, o));
	if (tid % OMNI_WARP == 0) hist[tid / OMNI_WARP] = (unsigned)(last + 1);
	__syncthreads();
	if (tid == 0) {
		int l = 0;
		for (int w = 0; w < (int)(blockDim.x / OMNI_WARP); w++) l = max(l, (int)hist[w] - 1);
		out[r] = found != 0x7fffffff ? found : max(l, 0);
	}
}
