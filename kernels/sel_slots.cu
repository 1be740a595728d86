#include "device.cuh"

// sel_slots: after sel_topk, assigns staging slots (Select): rows still selected keep their slots, slots of
// rows no longer selected are freed, newly selected rows (ascending) take the free slots in ascending slot
// order and are listed for Gather (fetch_rows, fetch_slots, counts[1]); the attention list is the slots in
// use, ascending, then the generated tokens' slots k .. k+step (counts[2]); counts[3] (rows fetched since
// Select) restarts at 0. mark is zero before and after. grid (states), block (1024).
extern "C" __global__ void __launch_bounds__(1024) sel_slots(const SelDev *__restrict__ st) {
	__shared__ int sh[32];
	const SelDev S = st[blockIdx.x];
	if (!S.valid) return;
	const int nsel = S.counts[0], k = S.k;
	for (int i = threadIdx.x; i < nsel; i += blockDim.x) S.mark[S.sel[i]] = 1;
	__syncthreads();
	for (int slot = threadIdx.x; slot < k; slot += blockDim.x) {
		const int t = S.tok_of[slot];
		if (t < 0) continue;
		if (t < S.n && S.mark[t] == 1) S.mark[t] = 2; // kept in its slot
		else S.tok_of[slot] = -1;                      // no longer selected
	}
	__syncthreads();
	int nfetch = 0;
	for (int base = 0; base < nsel; base += blockDim.x) {
		const int i = base + threadIdx.x;
		const int fresh = i < nsel && S.mark[S.sel[i]] == 1;
		int total;
		const int pos = nfetch + block_scan(fresh, sh, &total);
		if (fresh) S.fetch_rows[pos] = S.sel[i];
		nfetch += total;
	}
	__syncthreads();
	int nfree = 0;
	for (int base = 0; base < k; base += blockDim.x) {
		const int slot = base + threadIdx.x;
		const int empty = slot < k && S.tok_of[slot] < 0;
		int total;
		const int pos = nfree + block_scan(empty, sh, &total);
		if (empty && pos < nfetch) {
			S.fetch_slots[pos] = slot;
			S.tok_of[slot] = S.fetch_rows[pos];
		}
		nfree += total;
	}
	__syncthreads();
	for (int i = threadIdx.x; i < nsel; i += blockDim.x) S.mark[S.sel[i]] = 0;
	int used = 0;
	for (int base = 0; base < k; base += blockDim.x) {
		const int slot = base + threadIdx.x;
		const int in = slot < k && S.tok_of[slot] >= 0;
		int total;
		const int pos = used + block_scan(in, sh, &total);
		if (in) S.attend[pos] = slot;
		used += total;
	}
	for (int g = threadIdx.x; g <= S.step; g += blockDim.x) S.attend[used + g] = k + g;
	if (threadIdx.x == 0) {
		S.counts[1] = nfetch;
		S.counts[2] = used + S.step + 1;
		S.counts[3] = 0;
	}
}
