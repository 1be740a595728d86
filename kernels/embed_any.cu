#include "dequant.cuh"

// embed_any: out row i = row ids[i] of a table of any bound type, dequantized bit for bit as
// weights.DequantizeRow (Embed). One block per token, one thread per 32-element block.
//   table (vocab, row_bytes); ids (tokens) int32; out (>= tokens, cols) f32. grid (tokens), block (128).
extern "C" __global__ void embed_any(const unsigned char *__restrict__ table, const int *__restrict__ ids, float *__restrict__ out,
                                     int type, int cols, long long row_bytes) {
	const unsigned char *row = table + (size_t)ids[blockIdx.x] * row_bytes;
	float *o = out + (size_t)blockIdx.x * cols;
	float v[32];
	for (int j = threadIdx.x; j < (cols + 31) / 32; j += blockDim.x) {
		deq32(type, row, j, cols, v);
		for (int i = 0; i < 32 && 32 * j + i < cols; i++) o[32 * j + i] = v[i];
	}
}
