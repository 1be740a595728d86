#include "device.cuh"

// Causal grouped-query attention for every sequence of a batch over one layer of a paged store (Attend),
// fp16 or fp32 KV, any head_dim <= 256, dense or restricted to a selection state's attention list (a sparse
// layer). Work item = (sequence, query row); one warp per (item, query head, split of the visible tokens).
// A warp walks its split 32 tokens at a time: lane j scores token j of the tile (q in shared memory), the
// online softmax takes the tile's max, and every lane adds p_j * v_j for the head dimensions it owns. The
// running sum and the output accumulate in float64 (the conformance suite wants 2e-6 of the largest output;
// a float32 sum over thousands of tokens drifts by ~1e-6), scores and probabilities are float32 with the
// accurate expf. attn_paged_combine merges the splits. A sequence's plan (its splits) depends on that
// sequence alone, so its outputs are bit-identical whatever it is batched with.
#define ATTN_MAX_DPL 8 // head_dim <= 32*8

// items (n_items, 3) int32: sequence, query row within it, splits of that sequence (each of split_len
// visible tokens, the last one the rest). sel (seqs) or NULL: a state with valid != 0 restricts its sequence to its attention list.
// parts (n_items, heads, max_splits, head_dim + 2) f64: unnormalized output, max, sum.
//   q (rows, heads*head_dim) f32; pages (store pages, 2) addresses of the layer's pages.
// grid (n_items, heads, max_splits), block (32).
extern "C" __global__ void attn_paged_partial(const float *__restrict__ q, const int *__restrict__ batch, int seqs,
                                              const int *__restrict__ items, const SelDev *__restrict__ sel,
                                              const unsigned long long *__restrict__ pages, int page_tokens, int kv_dim, int f32,
                                              double *__restrict__ parts, int heads, int kv_heads, int head_dim,
                                              int split_len, float scale) {
	__shared__ float qs[OMNI_WARP * ATTN_MAX_DPL];
	const int it = blockIdx.x, h = blockIdx.y, z = blockIdx.z, lane = threadIdx.x;
	const int s = items[3 * it], i = items[3 * it + 1], splits = items[3 * it + 2];
	if (z >= splits) return;
	const BatchView bv = batch_view(batch, seqs);
	const int row = bv.qstart[s] + i, pos = bv.pos0[s] + i, kvh = h / (heads / kv_heads), esz = f32 ? 4 : 2;
	const int *blocks = bv.blocks + bv.boff[s];
	const int *list = NULL;
	int nvis;
	if (sel != NULL && sel[s].valid) {
		list = sel[s].attend;
		const int na = sel[s].counts[2];
		int lo = 0, hi = na; // attention-list entries <= pos (the list is ascending)
		while (lo < hi) {
			const int m = (lo + hi) / 2;
			if (list[m] <= pos) lo = m + 1;
			else hi = m;
		}
		nvis = lo;
	} else {
		nvis = min(pos + 1, bv.len[s]);
	}
	for (int d = lane; d < head_dim; d += OMNI_WARP) qs[d] = q[(size_t)row * heads * head_dim + h * head_dim + d];
	__syncwarp();
	// The last split takes the rest (a sequence's split count may come from a bound, or be 1 for long prefill).
	const int j0 = z * split_len, j1 = z == splits - 1 ? nvis : min(j0 + split_len, nvis);
	float m = -INFINITY;
	double l = 0.0, acc[ATTN_MAX_DPL];
	for (int r = 0; r < ATTN_MAX_DPL; r++) acc[r] = 0.0;
	const int hoff = kvh * (head_dim);
	for (int base = j0; base < j1; base += OMNI_WARP) {
		const int j = base + lane;
		float sc = -INFINITY;
		int tok = 0;
		if (j < j1) {
			tok = list ? list[j] : j;
			const char *kr = kv_row(pages, 0, blocks[tok / page_tokens], tok % page_tokens, kv_dim, esz);
			float dot = 0.0f;
			if (f32) {
				const float *k = (const float *)kr + hoff;
				for (int d = 0; d < head_dim; d++) dot += qs[d] * k[d];
			} else {
				const __half *k = (const __half *)kr + hoff;
				for (int d = 0; d < head_dim; d++) dot += qs[d] * __half2float(k[d]);
			}
			sc = dot * scale;
		}
		const float mn = fmaxf(m, warp_max(sc));
		const float corr = m == -INFINITY ? 0.0f : expf(m - mn);
		const float p = j < j1 ? expf(sc - mn) : 0.0f;
		// The tile's probabilities summed in a fixed order (lane by lane, in float64).
		double ps = (double)p;
		for (int o = OMNI_WARP / 2; o > 0; o >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, o);
		l = l * (double)corr + ps;
		for (int r = 0; r < ATTN_MAX_DPL; r++) acc[r] *= (double)corr;
		const int nt = min(OMNI_WARP, j1 - base);
		for (int jj = 0; jj < nt; jj++) {
			const float pj = __shfl_sync(0xffffffffu, p, jj);
			const int tj = __shfl_sync(0xffffffffu, tok, jj);
			const char *vr = kv_row(pages, 1, blocks[tj / page_tokens], tj % page_tokens, kv_dim, esz);
			for (int r = 0; r < ATTN_MAX_DPL; r++) {
				const int d = lane + r * OMNI_WARP;
				if (d >= head_dim) break;
				const float vd = kv_at(vr, hoff + d, f32);
				acc[r] += (double)(pj * vd);
			}
		}
		m = mn;
	}
	double *part = parts + (((size_t)it * heads + h) * gridDim.z + z) * (head_dim + 2);
	for (int r = 0; r < ATTN_MAX_DPL; r++) {
		const int d = lane + r * OMNI_WARP;
		if (d < head_dim) part[d] = acc[r];
	}
	if (lane == 0) {
		part[head_dim] = (double)m;
		part[head_dim + 1] = l;
	}
}

// attn_paged_combine: out = sum_z e^(m_z - M) acc_z / sum_z e^(m_z - M) l_z over the item's splits (zero
// where the row saw nothing). out (rows, heads*head_dim) f32. grid (n_items, heads), block (32).
extern "C" __global__ void attn_paged_combine(const int *__restrict__ batch, int seqs, const int *__restrict__ items,
                                              const double *__restrict__ parts, float *__restrict__ out, int heads,
                                              int head_dim, int max_splits) {
	const int it = blockIdx.x, h = blockIdx.y, lane = threadIdx.x;
	const int s = items[3 * it], i = items[3 * it + 1], splits = items[3 * it + 2];
	const BatchView bv = batch_view(batch, seqs);
	const double *p = parts + ((size_t)it * heads + h) * max_splits * (head_dim + 2);
	double mm = -INFINITY;
	for (int z = 0; z < splits; z++) mm = fmax(mm, p[z * (head_dim + 2) + head_dim]);
	double sum = 0.0;
	if (mm != -INFINITY)
		for (int z = 0; z < splits; z++) {
			const double mz = p[z * (head_dim + 2) + head_dim];
			if (mz != -INFINITY) sum += exp(mz - mm) * p[z * (head_dim + 2) + head_dim + 1];
		}
	float *o = out + (size_t)(bv.qstart[s] + i) * heads * head_dim + h * head_dim;
	for (int d = lane; d < head_dim; d += OMNI_WARP) {
		double a = 0.0;
		if (sum > 0.0)
			for (int z = 0; z < splits; z++) {
				const double mz = p[z * (head_dim + 2) + head_dim];
				if (mz != -INFINITY) a += exp(mz - mm) * p[z * (head_dim + 2) + d];
			}
		o[d] = sum > 0.0 ? (float)(a / sum) : 0.0f;
	}
}
