#include "device.cuh"

// gather_paged: for every state, copies the rows its last Select newly selected (fetch_rows, tokens of the
// sequence's source pages) into their staging slots (fetch_slots, of the sequence's destination pages), keys
// and values of one layer each (Gather). The source pages may be pinned host memory mapped into the device
// (TierHost, TierMapped): the kernel then reads them over the host link directly (zero-copy), which moves
// scattered rows of a few hundred bytes without one copy-engine command per row. Runs on the copy stream.
// Counts the rows into counts[3] and the turn's total, and rows and bytes into moved[0], moved[1] (the
// device's statistics).
//   src, dst (pages, 2) addresses of the layers' pages; row_bytes = kv_dim * element size.
// grid (blocks per state, states), block (128): one warp per row.
extern "C" __global__ void gather_paged(const SelDev *__restrict__ st, const int *__restrict__ src_batch, const int *__restrict__ dst_batch,
                                        int seqs, const unsigned long long *__restrict__ src, const unsigned long long *__restrict__ dst,
                                        int page_tokens, int row_bytes, unsigned long long *__restrict__ moved) {
	const SelDev S = st[blockIdx.y];
	if (!S.valid) return;
	const int s = blockIdx.y, nf = S.counts[1];
	const BatchView sb = batch_view(src_batch, seqs), db = batch_view(dst_batch, seqs);
	const int *sbl = sb.blocks + sb.boff[s], *dbl = db.blocks + db.boff[s];
	const int warps = blockDim.x / OMNI_WARP, lane = threadIdx.x % OMNI_WARP;
	for (int r = blockIdx.x * warps + threadIdx.x / OMNI_WARP; r < nf; r += gridDim.x * warps) {
		const int tok = S.fetch_rows[r], slot = S.fetch_slots[r];
		for (int kv = 0; kv < 2; kv++) {
			const char *from = (const char *)src[2 * sbl[tok / page_tokens] + kv] + (size_t)(tok % page_tokens) * row_bytes;
			char *to = (char *)dst[2 * dbl[slot / page_tokens] + kv] + (size_t)(slot % page_tokens) * row_bytes;
			if (row_bytes % 16 == 0) {
				for (int i = lane; i < row_bytes / 16; i += OMNI_WARP) ((uint4 *)to)[i] = ((const uint4 *)from)[i];
			} else if (row_bytes % 4 == 0) {
				for (int i = lane; i < row_bytes / 4; i += OMNI_WARP) ((unsigned *)to)[i] = ((const unsigned *)from)[i];
			} else {
				for (int i = lane; i < row_bytes / 2; i += OMNI_WARP) ((unsigned short *)to)[i] = ((const unsigned short *)from)[i];
			}
		}
	}
	if (blockIdx.x == 0 && threadIdx.x == 0) {
		S.counts[3] += nf;
		*(long long *)(S.counts + 4) += nf;
		atomicAdd(moved, (unsigned long long)nf);
		atomicAdd(moved + 1, (unsigned long long)nf * 2ull * (unsigned long long)row_bytes);
	}
}
