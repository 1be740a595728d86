//go:build amd64 && !purego

#include "textflag.h"

// Block kernels for the weight types of matmul: fused dequantize-and-dot over one weight row (decode),
// dequantize a row to float32 (prefill strips), and the 4-token x 3-row float32 micro-kernel. AVX2 + FMA +
// F16C. Dequantized values are computed exactly as GGML defines them in float32 (q*d, q*d+m); products with
// x are accumulated in four 8-lane float32 accumulators. Handwritten for this project.

// SCALE_D loads the f16 at 0(SI) and broadcasts it as float32 to Y8.
#define SCALE_D \
	MOVWLZX      (SI), AX; \
	VMOVD        AX, X8; \
	VCVTPH2PS    X8, X8; \
	VBROADCASTSS X8, Y8

// NIBBLES32 loads the 16 nibble bytes at off(SI) as int32: Y4 = values 0-7, Y6 = 8-15 (low nibbles),
// Y5 = 16-23, Y7 = 24-31 (high nibbles). Y15 must hold 15 in every dword.
#define NIBBLES32(off) \
	VPMOVZXBD off(SI), Y4; \
	VPMOVZXBD off+8(SI), Y6; \
	VPSRLD    $4, Y4, Y5; \
	VPSRLD    $4, Y6, Y7; \
	VPAND     Y15, Y4, Y4; \
	VPAND     Y15, Y6, Y6

// CVT4 converts Y4-Y7 from int32 to float32.
#define CVT4 \
	VCVTDQ2PS Y4, Y4; \
	VCVTDQ2PS Y5, Y5; \
	VCVTDQ2PS Y6, Y6; \
	VCVTDQ2PS Y7, Y7

// REDUCE4 sums Y0-Y3 horizontally into X0.
#define REDUCE4 \
	VADDPS       Y1, Y0, Y0; \
	VADDPS       Y3, Y2, Y2; \
	VADDPS       Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VHADDPS      X0, X0, X0; \
	VHADDPS      X0, X0, X0

// func rowDotQ8_0AVX(w []byte, x []float32) float32
// Per block: s = sum_j q[j]*x[j] (exact int8 -> float32), acc += d*s: the scale multiplies once per block.
TEXT ·rowDotQ8_0AVX(SB), NOSPLIT, $0-52
	MOVQ   w_base+0(FP), SI
	MOVQ   x_base+24(FP), DI
	MOVQ   x_len+32(FP), CX
	SHRQ   $5, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	TESTQ  CX, CX
	JE     done
	TESTQ  $1, CX
	JE     loop2

	// one block alone when the count is odd
	SCALE_D
	VPMOVSXBD   2(SI), Y4
	VPMOVSXBD   10(SI), Y5
	VPMOVSXBD   18(SI), Y6
	VPMOVSXBD   26(SI), Y7
	CVT4
	VMULPS      (DI), Y4, Y4
	VMULPS      32(DI), Y5, Y5
	VFMADD231PS 64(DI), Y6, Y4
	VFMADD231PS 96(DI), Y7, Y5
	VADDPS      Y5, Y4, Y4
	VFMADD231PS Y8, Y4, Y0
	ADDQ        $34, SI
	ADDQ        $128, DI
	DECQ        CX
	JE          done

loop2: // two blocks per iteration, accumulated into Y0/Y1 and Y2/Y3
	SCALE_D
	VPMOVSXBD    2(SI), Y4
	VPMOVSXBD    10(SI), Y5
	VPMOVSXBD    18(SI), Y6
	VPMOVSXBD    26(SI), Y7
	CVT4
	VMULPS       (DI), Y4, Y4
	VMULPS       32(DI), Y5, Y5
	VFMADD231PS  64(DI), Y6, Y4
	VFMADD231PS  96(DI), Y7, Y5
	VFMADD231PS  Y8, Y4, Y0
	VFMADD231PS  Y8, Y5, Y1
	MOVWLZX      34(SI), AX
	VMOVD        AX, X9
	VCVTPH2PS    X9, X9
	VBROADCASTSS X9, Y9
	VPMOVSXBD    36(SI), Y10
	VPMOVSXBD    44(SI), Y11
	VPMOVSXBD    52(SI), Y12
	VPMOVSXBD    60(SI), Y13
	VCVTDQ2PS    Y10, Y10
	VCVTDQ2PS    Y11, Y11
	VCVTDQ2PS    Y12, Y12
	VCVTDQ2PS    Y13, Y13
	VMULPS       128(DI), Y10, Y10
	VMULPS       160(DI), Y11, Y11
	VFMADD231PS  192(DI), Y12, Y10
	VFMADD231PS  224(DI), Y13, Y11
	VFMADD231PS  Y9, Y10, Y2
	VFMADD231PS  Y9, Y11, Y3
	ADDQ         $68, SI
	ADDQ         $256, DI
	SUBQ         $2, CX
	JNE          loop2

done:
	REDUCE4
	VMOVSS     X0, ret+48(FP)
	VZEROUPPER
	RET

// func rowDotQ4_0AVX(w []byte, x []float32) float32
TEXT ·rowDotQ4_0AVX(SB), NOSPLIT, $0-52
	MOVQ         w_base+0(FP), SI
	MOVQ         x_base+24(FP), DI
	MOVQ         x_len+32(FP), CX
	SHRQ         $5, CX
	MOVL         $15, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $8, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	VXORPS       Y0, Y0, Y0
	VXORPS       Y1, Y1, Y1
	VXORPS       Y2, Y2, Y2
	VXORPS       Y3, Y3, Y3
	TESTQ        CX, CX
	JE           done

loop:
	SCALE_D
	NIBBLES32(2)
	VPSUBD      Y14, Y4, Y4
	VPSUBD      Y14, Y5, Y5
	VPSUBD      Y14, Y6, Y6
	VPSUBD      Y14, Y7, Y7
	CVT4
	VMULPS      Y8, Y4, Y4
	VMULPS      Y8, Y5, Y5
	VMULPS      Y8, Y6, Y6
	VMULPS      Y8, Y7, Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y6, Y1
	VFMADD231PS 64(DI), Y5, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $18, SI
	ADDQ        $128, DI
	DECQ        CX
	JNZ         loop

done:
	REDUCE4
	VMOVSS     X0, ret+48(FP)
	VZEROUPPER
	RET

// func rowDotQ4_1AVX(w []byte, x []float32) float32
TEXT ·rowDotQ4_1AVX(SB), NOSPLIT, $0-52
	MOVQ         w_base+0(FP), SI
	MOVQ         x_base+24(FP), DI
	MOVQ         x_len+32(FP), CX
	SHRQ         $5, CX
	MOVL         $15, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	VXORPS       Y0, Y0, Y0
	VXORPS       Y1, Y1, Y1
	VXORPS       Y2, Y2, Y2
	VXORPS       Y3, Y3, Y3
	TESTQ        CX, CX
	JE           done

loop:
	MOVL         (SI), AX
	VMOVD        AX, X8
	VCVTPH2PS    X8, X8
	VMOVSHDUP    X8, X9
	VBROADCASTSS X8, Y8
	VBROADCASTSS X9, Y9
	NIBBLES32(4)
	CVT4
	VFMADD213PS  Y9, Y8, Y4
	VFMADD213PS  Y9, Y8, Y5
	VFMADD213PS  Y9, Y8, Y6
	VFMADD213PS  Y9, Y8, Y7
	VFMADD231PS  (DI), Y4, Y0
	VFMADD231PS  32(DI), Y6, Y1
	VFMADD231PS  64(DI), Y5, Y2
	VFMADD231PS  96(DI), Y7, Y3
	ADDQ         $20, SI
	ADDQ         $128, DI
	DECQ         CX
	JNZ          loop

done:
	REDUCE4
	VMOVSS     X0, ret+48(FP)
	VZEROUPPER
	RET

// The plain float row dots reuse the vector kernels: the argument frames have the same layout, with the
// element count taken from x.

// func rowDotF32AVX(w []byte, x []float32) float32
TEXT ·rowDotF32AVX(SB), NOSPLIT, $0-52
	MOVQ x_len+32(FP), AX
	MOVQ AX, w_len+8(FP)
	JMP  ·dotF32AVX(SB)

// func rowDotF16AVX(w []byte, x []float32) float32
TEXT ·rowDotF16AVX(SB), NOSPLIT, $0-52
	MOVQ x_len+32(FP), AX
	MOVQ AX, w_len+8(FP)
	JMP  ·dotF16AVX(SB)

// func rowDotBF16AVX(w []byte, x []float32) float32
TEXT ·rowDotBF16AVX(SB), NOSPLIT, $0-52
	MOVQ x_len+32(FP), AX
	MOVQ AX, w_len+8(FP)
	JMP  ·dotBF16AVX(SB)

// func dequantQ8_0AVX(dst []float32, w []byte)
TEXT ·dequantQ8_0AVX(SB), NOSPLIT, $0-48
	MOVQ  dst_base+0(FP), DI
	MOVQ  dst_len+8(FP), CX
	MOVQ  w_base+24(FP), SI
	SHRQ  $5, CX
	TESTQ CX, CX
	JE    done

loop:
	SCALE_D
	VPMOVSXBD 2(SI), Y4
	VPMOVSXBD 10(SI), Y5
	VPMOVSXBD 18(SI), Y6
	VPMOVSXBD 26(SI), Y7
	CVT4
	VMULPS    Y8, Y4, Y4
	VMULPS    Y8, Y5, Y5
	VMULPS    Y8, Y6, Y6
	VMULPS    Y8, Y7, Y7
	VMOVUPS   Y4, (DI)
	VMOVUPS   Y5, 32(DI)
	VMOVUPS   Y6, 64(DI)
	VMOVUPS   Y7, 96(DI)
	ADDQ      $34, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       loop

done:
	VZEROUPPER
	RET

// func dequantQ4_0AVX(dst []float32, w []byte)
TEXT ·dequantQ4_0AVX(SB), NOSPLIT, $0-48
	MOVQ         dst_base+0(FP), DI
	MOVQ         dst_len+8(FP), CX
	MOVQ         w_base+24(FP), SI
	SHRQ         $5, CX
	MOVL         $15, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $8, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	TESTQ        CX, CX
	JE           done

loop:
	SCALE_D
	NIBBLES32(2)
	VPSUBD  Y14, Y4, Y4
	VPSUBD  Y14, Y5, Y5
	VPSUBD  Y14, Y6, Y6
	VPSUBD  Y14, Y7, Y7
	CVT4
	VMULPS  Y8, Y4, Y4
	VMULPS  Y8, Y5, Y5
	VMULPS  Y8, Y6, Y6
	VMULPS  Y8, Y7, Y7
	VMOVUPS Y4, (DI)
	VMOVUPS Y6, 32(DI)
	VMOVUPS Y5, 64(DI)
	VMOVUPS Y7, 96(DI)
	ADDQ    $18, SI
	ADDQ    $128, DI
	DECQ    CX
	JNZ     loop

done:
	VZEROUPPER
	RET

// func dequantQ4_1AVX(dst []float32, w []byte)
TEXT ·dequantQ4_1AVX(SB), NOSPLIT, $0-48
	MOVQ         dst_base+0(FP), DI
	MOVQ         dst_len+8(FP), CX
	MOVQ         w_base+24(FP), SI
	SHRQ         $5, CX
	MOVL         $15, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	TESTQ        CX, CX
	JE           done

loop:
	MOVL         (SI), AX
	VMOVD        AX, X8
	VCVTPH2PS    X8, X8
	VMOVSHDUP    X8, X9
	VBROADCASTSS X8, Y8
	VBROADCASTSS X9, Y9
	NIBBLES32(4)
	CVT4
	VFMADD213PS  Y9, Y8, Y4
	VFMADD213PS  Y9, Y8, Y5
	VFMADD213PS  Y9, Y8, Y6
	VFMADD213PS  Y9, Y8, Y7
	VMOVUPS      Y4, (DI)
	VMOVUPS      Y6, 32(DI)
	VMOVUPS      Y5, 64(DI)
	VMOVUPS      Y7, 96(DI)
	ADDQ         $20, SI
	ADDQ         $128, DI
	DECQ         CX
	JNZ          loop

done:
	VZEROUPPER
	RET

// func dequantF16AVX(dst []float32, w []byte)
TEXT ·dequantF16AVX(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ w_base+24(FP), SI

loop8:
	CMPQ      CX, $8
	JB        tail1
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JMP       loop8

tail1:
	TESTQ     CX, CX
	JE        done
	MOVWLZX   (SI), AX
	VMOVD     AX, X0
	VCVTPH2PS X0, X0
	VMOVSS    X0, (DI)
	ADDQ      $2, SI
	ADDQ      $4, DI
	DECQ      CX
	JMP       tail1

done:
	VZEROUPPER
	RET

// func dequantBF16AVX(dst []float32, w []byte)
TEXT ·dequantBF16AVX(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ w_base+24(FP), SI

loop8:
	CMPQ      CX, $8
	JB        tail1
	VPMOVZXWD (SI), Y0
	VPSLLD    $16, Y0, Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JMP       loop8

tail1:
	TESTQ   CX, CX
	JE      done
	MOVWLZX (SI), AX
	SHLL    $16, AX
	MOVL    AX, (DI)
	ADDQ    $2, SI
	ADDQ    $4, DI
	DECQ    CX
	JMP     tail1

done:
	VZEROUPPER
	RET

// TILE_ROW_SUM reduces the accumulators a, b, c (ymm) of one token to three floats stored at 0, 4, 8(DI).
// Clobbers a, b and Y15.
#define TILE_ROW_SUM(a, b, c, xa) \
	VHADDPS      b, a, a; \
	VHADDPS      c, c, Y15; \
	VHADDPS      Y15, a, a; \
	VEXTRACTF128 $1, a, X15; \
	VADDPS       X15, xa, xa; \
	VMOVSD       xa, (DI); \
	VEXTRACTPS   $2, xa, 8(DI)

// TILE_ROW_ADD is TILE_ROW_SUM adding the three sums to the floats already at 0, 4, 8(DI).
#define TILE_ROW_ADD(a, b, c, xa) \
	VHADDPS      b, a, a; \
	VHADDPS      c, c, Y15; \
	VHADDPS      Y15, a, a; \
	VEXTRACTF128 $1, a, X15; \
	VADDPS       X15, xa, xa; \
	VMOVSD       (DI), X15; \
	VINSERTPS    $0x20, 8(DI), X15, X15; \
	VADDPS       X15, xa, xa; \
	VMOVSD       xa, (DI); \
	VEXTRACTPS   $2, xa, 8(DI)

// func tile4x3AVX(out *float32, ldo int, x *float32, ldx int, w *float32, ldw int, k int, add bool)
// out[t*ldo+r] = sum_{i<k} x[t*ldx+i] * w[r*ldw+i] for t < 4, r < 3 (added to out when add); k is a
// multiple of 8.
// Accumulators: Y(3t+r). Loads per 8 values: 3 weight rows and 4 tokens for 12 FMAs.
TEXT ·tile4x3AVX(SB), NOSPLIT, $0-57
	MOVQ   out+0(FP), DI
	MOVQ   ldo+8(FP), R8
	SHLQ   $2, R8
	MOVQ   x+16(FP), SI
	MOVQ   ldx+24(FP), R9
	SHLQ   $2, R9
	LEAQ   (SI)(R9*2), R10
	ADDQ   R9, R10           // R10 = x + 3 rows
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
	TESTQ  CX, CX
	JE     store

loop:
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
	JNZ         loop

store:
	MOVBLZX add+56(FP), AX
	TESTL   AX, AX
	JNE     addstore
	TILE_ROW_SUM(Y0, Y1, Y2, X0)
	ADDQ R8, DI
	TILE_ROW_SUM(Y3, Y4, Y5, X3)
	ADDQ R8, DI
	TILE_ROW_SUM(Y6, Y7, Y8, X6)
	ADDQ R8, DI
	TILE_ROW_SUM(Y9, Y10, Y11, X9)
	VZEROUPPER
	RET

addstore:
	TILE_ROW_ADD(Y0, Y1, Y2, X0)
	ADDQ R8, DI
	TILE_ROW_ADD(Y3, Y4, Y5, X3)
	ADDQ R8, DI
	TILE_ROW_ADD(Y6, Y7, Y8, X6)
	ADDQ R8, DI
	TILE_ROW_ADD(Y9, Y10, Y11, X9)
	VZEROUPPER
	RET

// func tile1x3AVX(out *float32, x *float32, w *float32, ldw int, k int, add bool)
// out[r] = sum_{i<k} x[i] * w[r*ldw+i] for r < 3 (added to out when add); k is a multiple of 8. Each
// output's arithmetic (one accumulator of 8 lanes over k, the same reduction) is tile4x3AVX's for that
// token, so that a token's result does not depend on the tokens it is computed with.
TEXT ·tile1x3AVX(SB), NOSPLIT, $0-41
	MOVQ   out+0(FP), DI
	MOVQ   x+8(FP), SI
	MOVQ   w+16(FP), BX
	MOVQ   ldw+24(FP), R11
	SHLQ   $2, R11
	MOVQ   k+32(FP), CX
	SHRQ   $3, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	TESTQ  CX, CX
	JE     store1

loop1:
	VMOVUPS     (SI), Y15
	VFMADD231PS (BX), Y15, Y0
	VFMADD231PS (BX)(R11*1), Y15, Y1
	VFMADD231PS (BX)(R11*2), Y15, Y2
	ADDQ        $32, BX
	ADDQ        $32, SI
	DECQ        CX
	JNZ         loop1

store1:
	MOVBLZX add+40(FP), AX
	TESTL   AX, AX
	JNE     addstore1
	TILE_ROW_SUM(Y0, Y1, Y2, X0)
	VZEROUPPER
	RET

addstore1:
	TILE_ROW_ADD(Y0, Y1, Y2, X0)
	VZEROUPPER
	RET
