#include "omnikv.cuh"

// copy_rows_to: dst[i] (an address) = row src_rows[i] of src (Observe: the newest query rows into each
// state's window ring; the host computes where each row goes).
//   src (rows, cols) f32; src_rows (n) int32; dst (n) device addresses of cols floats. grid (n), block (128).
extern "C" __global__ void copy_rows_to(const float *__restrict__ src, const int *__restrict__ src_rows,
                                        const unsigned long long *__restrict__ dst, int cols) {
	const float *s = src + (size_t)src_rows[blockIdx.x] * cols;
	float *d = (float *)dst[blockIdx.x];
	for (int i = threadIdx.x; i < cols; i += blockDim.x) d[i] = s[i];
}
