#include "device.cuh"

// OmniKV's selection scores from a state's observation window (SelectScores):
//   score[j] = sum_i alpha[i] * max_h f(Q[i,h] . K[j, h/group] * scale)
// over the window's rows i (oldest first) and the candidates j < n, f the identity or the softmax over the
// candidates of each (row, head). Three kernels: the logits, the softmax statistics of each (row, head), and
// the weighted max. States are indexed like the batch's sequences (valid == 0: no state).
// logits: per state, (win_len, heads, n) f32 at loff[s] floats into the scratch.

// sel_logits: grid (ceil(max_n/128), max_rows*heads, seqs), block (128).
//   pages (store pages, 2) addresses of the layer's pages.
extern "C" __global__ void sel_logits(const SelDev *__restrict__ st, const int *__restrict__ batch, int seqs,
                                      const long long *__restrict__ loff, float *__restrict__ logits,
                                      const unsigned long long *__restrict__ pages, int page_tokens, int kv_dim, int f32,
                                      int heads, int kv_heads, int head_dim, float scale) {
	const int s = blockIdx.z, ih = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
	const SelDev S = st[s];
	if (!S.valid) return;
	const int i = ih / heads, h = ih % heads;
	if (i >= S.win_len || j >= S.n) return;
	const BatchView bv = batch_view(batch, seqs);
	const int kvh = h / (heads / kv_heads), esz = f32 ? 4 : 2;
	const float *qh = S.window + (size_t)((S.win_start + i) % S.win_cap) * S.qdim + h * head_dim;
	const char *kr = kv_row(pages, 0, bv.blocks[bv.boff[s] + j / page_tokens], j % page_tokens, kv_dim, esz);
	float dot = 0.0f;
	for (int d = 0; d < head_dim; d++) dot += qh[d] * kv_at(kr, kvh * head_dim + d, f32);
	logits[loff[s] + ((size_t)i * heads + h) * S.n + j] = dot * scale;
}

// sel_softmax: replaces each (row, head) line of logits by its softmax over the n candidates, as the CPU
// device: x - max, expf, the sum in float64, times float32(1/sum). grid (max_rows*heads, seqs), block (256).
extern "C" __global__ void sel_softmax(const SelDev *__restrict__ st, const long long *__restrict__ loff, float *__restrict__ logits, int heads) {
	__shared__ float sm[32];
	__shared__ double sd[32];
	const int s = blockIdx.y, ih = blockIdx.x;
	const SelDev S = st[s];
	if (!S.valid || ih / heads >= S.win_len || S.n == 0) return;
	float *x = logits + loff[s] + (size_t)ih * S.n;
	float m = -INFINITY;
	for (int j = threadIdx.x; j < S.n; j += blockDim.x) m = fmaxf(m, x[j]);
	m = warp_max(m);
	const int lane = threadIdx.x % OMNI_WARP, warp = threadIdx.x / OMNI_WARP, warps = blockDim.x / OMNI_WARP;
	if (lane == 0) sm[warp] = m;
	__syncthreads();
	m = -INFINITY;
	for (int w = 0; w < warps; w++) m = fmaxf(m, sm[w]);
	if (m == -INFINITY) {
		for (int j = threadIdx.x; j < S.n; j += blockDim.x) x[j] = 0.0f;
		return;
	}
	double sum = 0.0;
	for (int j = threadIdx.x; j < S.n; j += blockDim.x) {
		const float e = expf(x[j] - m);
		x[j] = e;
		sum += (double)e;
	}
	for (int o = OMNI_WARP / 2; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
	if (lane == 0) sd[warp] = sum;
	__syncthreads();
	sum = 0.0;
	for (int w = 0; w < warps; w++) sum += sd[w];
	const float inv = (float)(1.0 / sum);
	for (int j = threadIdx.x; j < S.n; j += blockDim.x) x[j] *= inv;
}

// sel_combine: scores[j] = sum_i alpha[alen - win_len + i] * max_h logits[i, h, j] (zero without window
// rows). grid (ceil(max_n/128), seqs), block (128).
extern "C" __global__ void sel_combine(const SelDev *__restrict__ st, const long long *__restrict__ loff, const float *__restrict__ logits,
                                       const float *__restrict__ alpha, int alen, int heads) {
	const int s = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
	const SelDev S = st[s];
	if (!S.valid || j >= S.n) return;
	float out = 0.0f;
	const float *l = logits + loff[s];
	for (int i = 0; i < S.win_len; i++) {
		float best = l[((size_t)i * heads) * S.n + j];
		for (int h = 1; h < heads; h++) best = fmaxf(best, l[((size_t)i * heads + h) * S.n + j]);
		out += alpha[alen - S.win_len + i] * best;
	}
	S.scores[j] = out;
}
