//go:build amd64 && !purego

#include "textflag.h"

// Attention kernels for AVX2 + FMA + F16C. Handwritten for this project; the pure-Go twins in
// attn_kernels.go define what they compute.

// func gemm3x16AVX(c *float32, ldc int, a *float32, rsA, csA int, b *float32, ldb int, k int)
// c[i*ldc+j] += Σ_{kk<k} a[i*rsA+kk*csA] * b[kk*ldb+j] for i < 3, j < 16; k >= 1.
// Accumulators Y(2i), Y(2i+1); per kk: 2 loads of b, 3 broadcasts of a, 6 FMAs.
TEXT ·gemm3x16AVX(SB), NOSPLIT, $0-64
	MOVQ    c+0(FP), DI
	MOVQ    ldc+8(FP), R8
	SHLQ    $2, R8
	MOVQ    a+16(FP), SI
	MOVQ    rsA+24(FP), R9
	SHLQ    $2, R9
	MOVQ    csA+32(FP), R10
	SHLQ    $2, R10
	MOVQ    b+40(FP), BX
	MOVQ    ldb+48(FP), R11
	SHLQ    $2, R11
	MOVQ    k+56(FP), CX
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS (DI)(R8*1), Y2
	VMOVUPS 32(DI)(R8*1), Y3
	VMOVUPS (DI)(R8*2), Y4
	VMOVUPS 32(DI)(R8*2), Y5

loop3:
	VMOVUPS      (BX), Y6
	VMOVUPS      32(BX), Y7
	VBROADCASTSS (SI), Y8
	VFMADD231PS  Y8, Y6, Y0
	VFMADD231PS  Y8, Y7, Y1
	VBROADCASTSS (SI)(R9*1), Y9
	VFMADD231PS  Y9, Y6, Y2
	VFMADD231PS  Y9, Y7, Y3
	VBROADCASTSS (SI)(R9*2), Y10
	VFMADD231PS  Y10, Y6, Y4
	VFMADD231PS  Y10, Y7, Y5
	ADDQ         R10, SI
	ADDQ         R11, BX
	DECQ         CX
	JNZ          loop3

	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, (DI)(R8*1)
	VMOVUPS Y3, 32(DI)(R8*1)
	VMOVUPS Y4, (DI)(R8*2)
	VMOVUPS Y5, 32(DI)(R8*2)
	VZEROUPPER
	RET

// func gemm6x16AVX(c *float32, ldc int, a *float32, rsA, csA int, b *float32, ldb int, k int)
// As gemm3x16AVX for i < 6: accumulators Y0-Y11, b in Y12-Y13, broadcasts in Y14-Y15; rows 3-5 of a and c
// are addressed from DX and R12 (3 row strides further).
TEXT ·gemm6x16AVX(SB), NOSPLIT, $0-64
	MOVQ    c+0(FP), DI
	MOVQ    ldc+8(FP), R8
	SHLQ    $2, R8
	MOVQ    a+16(FP), SI
	MOVQ    rsA+24(FP), R9
	SHLQ    $2, R9
	MOVQ    csA+32(FP), R10
	SHLQ    $2, R10
	MOVQ    b+40(FP), BX
	MOVQ    ldb+48(FP), R11
	SHLQ    $2, R11
	MOVQ    k+56(FP), CX
	LEAQ    (R9)(R9*2), DX
	ADDQ    SI, DX               // a row 3
	LEAQ    (R8)(R8*2), R12
	ADDQ    DI, R12              // c row 3
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS (DI)(R8*1), Y2
	VMOVUPS 32(DI)(R8*1), Y3
	VMOVUPS (DI)(R8*2), Y4
	VMOVUPS 32(DI)(R8*2), Y5
	VMOVUPS (R12), Y6
	VMOVUPS 32(R12), Y7
	VMOVUPS (R12)(R8*1), Y8
	VMOVUPS 32(R12)(R8*1), Y9
	VMOVUPS (R12)(R8*2), Y10
	VMOVUPS 32(R12)(R8*2), Y11

loop6:
	VMOVUPS      (BX), Y12
	VMOVUPS      32(BX), Y13
	VBROADCASTSS (SI), Y14
	VFMADD231PS  Y14, Y12, Y0
	VFMADD231PS  Y14, Y13, Y1
	VBROADCASTSS (SI)(R9*1), Y15
	VFMADD231PS  Y15, Y12, Y2
	VFMADD231PS  Y15, Y13, Y3
	VBROADCASTSS (SI)(R9*2), Y14
	VFMADD231PS  Y14, Y12, Y4
	VFMADD231PS  Y14, Y13, Y5
	VBROADCASTSS (DX), Y15
	VFMADD231PS  Y15, Y12, Y6
	VFMADD231PS  Y15, Y13, Y7
	VBROADCASTSS (DX)(R9*1), Y14
	VFMADD231PS  Y14, Y12, Y8
	VFMADD231PS  Y14, Y13, Y9
	VBROADCASTSS (DX)(R9*2), Y15
	VFMADD231PS  Y15, Y12, Y10
	VFMADD231PS  Y15, Y13, Y11
	ADDQ         R10, SI
	ADDQ         R10, DX
	ADDQ         R11, BX
	DECQ         CX
	JNZ          loop6

	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, (DI)(R8*1)
	VMOVUPS Y3, 32(DI)(R8*1)
	VMOVUPS Y4, (DI)(R8*2)
	VMOVUPS Y5, 32(DI)(R8*2)
	VMOVUPS Y6, (R12)
	VMOVUPS Y7, 32(R12)
	VMOVUPS Y8, (R12)(R8*1)
	VMOVUPS Y9, 32(R12)(R8*1)
	VMOVUPS Y10, (R12)(R8*2)
	VMOVUPS Y11, 32(R12)(R8*2)
	VZEROUPPER
	RET

// func cvtF16RowsAVX(dst *float32, src *uint16, n8, rows, srcStride int)
// dst[r*n8+i] = f16(src[r*srcStride+i]) for r < rows, i < n8; n8 a positive multiple of 8, rows >= 1.
TEXT ·cvtF16RowsAVX(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n8+16(FP), R8
	SHRQ $3, R8
	MOVQ rows+24(FP), DX
	MOVQ srcStride+32(FP), R9
	SHLQ $1, R9

row:
	MOVQ SI, AX
	MOVQ R8, CX

col:
	VCVTPH2PS (AX), Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, AX
	ADDQ      $32, DI
	DECQ      CX
	JNZ       col
	ADDQ      R9, SI
	DECQ      DX
	JNZ       row
	VZEROUPPER
	RET
