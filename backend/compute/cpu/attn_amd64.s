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
	MOVQ R9, R10
	SHLQ $4, R10 // prefetch distance: 16 rows ahead (KV rows come from memory, strided)

row:
	MOVQ       SI, AX
	MOVQ       R8, CX
	PREFETCHT0 (SI)(R10*1)
	PREFETCHT0 64(SI)(R10*1)

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

// ROW3(a, b, c, xa, xt): stores the lane sums of a, b, c to 0, 4, 8(DI); clobbers a, c and xt.
#define ROW3(a, b, c, xa, xt) \
	VHADDPS      b, a, a \
	VHADDPS      c, c, c \
	VHADDPS      c, a, a \
	VEXTRACTF128 $1, a, xt \
	VADDPS       xt, xa, xa \
	VMOVSD       xa, (DI) \
	VPERMILPS    $2, xa, xt \
	VMOVSS       xt, 8(DI)

// func dot4x3AVX(out *float32, ldo int, x *float32, ldx int, w *float32, ldw int, k int)
// out[t*ldo+r] = Σ_{i<k} x[t*ldx+i] * w[r*ldw+i] for t < 4, r < 3; k a positive multiple of 8.
// Accumulators Y(3t+r); per 8 values: 3 loads of w, 4 of x, 12 FMAs.
TEXT ·dot4x3AVX(SB), NOSPLIT, $0-56
	MOVQ   out+0(FP), DI
	MOVQ   ldo+8(FP), R8
	SHLQ   $2, R8
	MOVQ   x+16(FP), SI
	MOVQ   ldx+24(FP), R9
	SHLQ   $2, R9
	LEAQ   (R9)(R9*2), R10
	ADDQ   SI, R10            // x row 3
	MOVQ   w+32(FP), BX
	MOVQ   ldw+40(FP), R11
	SHLQ   $2, R11
	MOVQ   k+48(FP), CX
	SHRQ   $3, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

dloop:
	VMOVUPS     (BX), Y12
	VMOVUPS     (BX)(R11*1), Y13
	VMOVUPS     (BX)(R11*2), Y14
	VMOVUPS     (SI), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y1
	VFMADD231PS Y15, Y14, Y2
	VMOVUPS     (SI)(R9*1), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y5
	VMOVUPS     (SI)(R9*2), Y15
	VFMADD231PS Y15, Y12, Y6
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS     (R10), Y15
	VFMADD231PS Y15, Y12, Y9
	VFMADD231PS Y15, Y13, Y10
	VFMADD231PS Y15, Y14, Y11
	ADDQ        $32, BX
	ADDQ        $32, SI
	ADDQ        $32, R10
	DECQ        CX
	JNZ         dloop

	ROW3(Y0, Y1, Y2, X0, X12)
	ADDQ R8, DI
	ROW3(Y3, Y4, Y5, X3, X12)
	ADDQ R8, DI
	ROW3(Y6, Y7, Y8, X6, X12)
	ADDQ R8, DI
	ROW3(Y9, Y10, Y11, X9, X12)
	VZEROUPPER
	RET
