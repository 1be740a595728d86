#include "device.cuh"

// attn_headmax: the fused head max of a filter layer's attention (Attention.HeadMax): for every token
// t < len of a sequence with one query row and every KV head, the max over that head's query heads of the
// scaled logit q.k_t*scale, into the sequence's state: headmax[kvh*len + t]. hm_seqs (n) int32: the
// sequences that want it; sel (seqs) their states.
//   q (rows, heads*head_dim) f32; pages (store pages, 2) addresses of the layer's pages.
// grid (ceil(max_len/128), kv_heads, n), block (128).
extern "C" __global__ void attn_headmax(const float *__restrict__ q, const int *__restrict__ batch, int seqs,
                                        const int *__restrict__ hm_seqs, const SelDev *__restrict__ sel,
                                        const unsigned long long *__restrict__ pages, int page_tokens, int kv_dim, int f32,
                                        int heads, int kv_heads, int head_dim, float scale) {
	const int s = hm_seqs[blockIdx.z], kvh = blockIdx.y, t = blockIdx.x * blockDim.x + threadIdx.x;
	const BatchView bv = batch_view(batch, seqs);
	const int len = bv.len[s];
	if (t >= len) return;
	const int group = heads / kv_heads, esz = f32 ? 4 : 2;
	const float *qr = q + (size_t)bv.qstart[s] * heads * head_dim;
	const char *kr = kv_row(pages, 0, bv.blocks[bv.boff[s] + t / page_tokens], t % page_tokens, kv_dim, esz);
	float best = -INFINITY;
	for (int g = 0; g < group; g++) {
		const float *qh = qr + (kvh * group + g) * head_dim;
		float dot = 0.0f;
		for (int d = 0; d < head_dim; d++) dot += qh[d] * kv_at(kr, kvh * head_dim + d, f32);
		best = fmaxf(best, dot * scale);
	}
	sel[s].headmax[(size_t)kvh * len + t] = best;
}
