// dequant.cuh: GGML weight blocks to float32, bit for bit as weights.DequantizeRow (the products and sums
// that Go rounds separately use __fmul_rn/__fadd_rn so that no fused multiply-add changes the rounding).
#pragma once
#include "omnikv.cuh"

// Weight types: the values of weights.DType.
#define WT_F32 0
#define WT_F16 1
#define WT_Q4_0 2
#define WT_Q4_1 3
#define WT_Q8_0 8
#define WT_Q4_K 12
#define WT_Q6_K 14
#define WT_BF16 30

__device__ __forceinline__ float f16_at(const unsigned char *p) {
	return __half2float(__ushort_as_half((unsigned short)(p[0] | (p[1] << 8))));
}

// deq32 writes out[i] = element 32*j+i of a row (row: the row's bytes) for i < 32 and 32*j+i < cols.
__device__ __forceinline__ void deq32(int type, const unsigned char *row, int j, int cols, float *out) {
	switch (type) {
	case WT_F32:
		for (int i = 0; i < 32; i++) out[i] = 32 * j + i < cols ? ((const float *)row)[32 * j + i] : 0.0f;
		return;
	case WT_F16:
		for (int i = 0; i < 32; i++) out[i] = 32 * j + i < cols ? f16_at(row + 2 * (32 * j + i)) : 0.0f;
		return;
	case WT_BF16:
		for (int i = 0; i < 32; i++) {
			const unsigned char *p = row + 2 * (32 * j + i);
			out[i] = 32 * j + i < cols ? __uint_as_float((unsigned)(p[0] | (p[1] << 8)) << 16) : 0.0f;
		}
		return;
	case WT_Q8_0: {
		const unsigned char *b = row + 34 * j;
		const float d = f16_at(b);
		for (int i = 0; i < 32; i++) out[i] = __fmul_rn((float)(signed char)b[2 + i], d);
		return;
	}
	case WT_Q4_0: {
		const unsigned char *b = row + 18 * j;
		const float d = f16_at(b);
		for (int i = 0; i < 16; i++) {
			out[i] = __fmul_rn(d, (float)((int)(b[2 + i] & 15) - 8));
			out[i + 16] = __fmul_rn(d, (float)((int)(b[2 + i] >> 4) - 8));
		}
		return;
	}
	case WT_Q4_1: {
		const unsigned char *b = row + 20 * j;
		const float d = f16_at(b), m = f16_at(b + 2);
		for (int i = 0; i < 16; i++) {
			out[i] = __fadd_rn(__fmul_rn(d, (float)(b[4 + i] & 15)), m);
			out[i + 16] = __fadd_rn(__fmul_rn(d, (float)(b[4 + i] >> 4)), m);
		}
		return;
	}
	case WT_Q4_K: {
		const unsigned char *b = row + 144 * (j / 8);
		const int sub = j % 8, k = sub / 2;
		const float d = f16_at(b), dmin = f16_at(b + 2);
		const unsigned char *sc = b + 4, *qs = b + 16 + 32 * k;
		unsigned s, mn;
		if (sub < 4) {
			s = sc[sub] & 63;
			mn = sc[sub + 4] & 63;
		} else {
			s = (sc[sub + 4] & 0x0f) | ((sc[sub - 4] >> 6) << 4);
			mn = (sc[sub + 4] >> 4) | ((sc[sub] >> 6) << 4);
		}
		const float d1 = __fmul_rn(d, (float)s), dm1 = __fmul_rn(dmin, (float)mn);
		for (int i = 0; i < 32; i++) {
			const unsigned q = (sub & 1) ? (qs[i] >> 4) : (qs[i] & 15);
			out[i] = __fsub_rn(__fmul_rn(d1, (float)q), dm1);
		}
		return;
	}
	case WT_Q6_K: {
		const unsigned char *b = row + 210 * (j / 8);
		const int sub = j % 8, h = sub / 4, r = sub % 4;
		const unsigned char *L = b + 64 * h, *H = b + 128 + 32 * h, *S = b + 192 + 8 * h;
		const float d = f16_at(b + 208);
		for (int l = 0; l < 32; l++) {
			int q;
			switch (r) {
			case 0: q = (L[l] & 15) | (((H[l] >> 0) & 3) << 4); break;
			case 1: q = (L[l + 32] & 15) | (((H[l] >> 2) & 3) << 4); break;
			case 2: q = (L[l] >> 4) | (((H[l] >> 4) & 3) << 4); break;
			default: q = (L[l + 32] >> 4) | (((H[l] >> 6) & 3) << 4); break;
			}
			const float ds = __fmul_rn(d, (float)(signed char)S[l / 16 + 2 * r]);
			out[l] = __fmul_rn(ds, (float)(q - 32));
		}
		return;
	}
	}
	for (int i = 0; i < 32; i++) out[i] = 0.0f;
}
