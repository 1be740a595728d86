//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 kernels for the packed weight layout (packed.go): 16 interleaved rows per group, so that one
// vector holds one column of 16 rows. Decode multiplies a column with x[k] broadcast from memory; prefill
// dequantizes a group into (cols, 16) column tiles and runs an 8-token x 16-row micro-kernel over them.
// Handwritten for this project. Z15 holds nibbleFloats (0..15 as float32) in the Q4_1 kernels.

// P41LOAD(c) loads byte column c of the Q4_1 tile at SI as floats: Z4 = low nibbles (value c of the 16
// rows), Z5 = high nibbles (value c+16).
#define P41LOAD(c) \
	VPMOVZXBD (64+16*c)(SI), Z4; \
	VPSRLD    $4, Z4, Z5; \
	VPERMPS   Z15, Z4, Z4; \
	VPERMPS   Z15, Z5, Z5

// P41FIRST / P41NEXT start / continue the products of column c with x[c] and x[c+16] (x at DI) in the
// accumulator pair a, b.
#define P41FIRST(c, a, b) \
	P41LOAD(c); \
	VMULPS.BCST (4*c)(DI), Z4, a; \
	VMULPS.BCST (64+4*c)(DI), Z5, b

#define P41NEXT(c, a, b) \
	P41LOAD(c); \
	VFMADD231PS.BCST (4*c)(DI), Z4, a; \
	VFMADD231PS.BCST (64+4*c)(DI), Z5, b

// func rowsPackedQ4_1AVX512(out []float32, w []byte, x []float32, xs []float32)
// out[16g+r] = sum over blocks b of d[r]*sum_c q[r][c]*x[32b+c] + m[r]*xs[b], for the len(out)/16 groups
// at w; x holds len(x)/32 >= 1 blocks.
TEXT ·rowsPackedQ4_1AVX512(SB), NOSPLIT, $0-96
	MOVQ    out_base+0(FP), R8
	MOVQ    out_len+8(FP), R9
	SHRQ    $4, R9
	MOVQ    w_base+24(FP), SI
	MOVQ    x_base+48(FP), R12
	MOVQ    x_len+56(FP), R13
	SHRQ    $5, R13
	MOVQ    xs_base+72(FP), R14
	MOVQ    $·nibbleFloats(SB), AX
	VMOVUPS (AX), Z15
	TESTQ   R9, R9
	JE      end

group:
	MOVQ   R12, DI
	MOVQ   R14, BX
	MOVQ   R13, CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1

block:
	VCVTPH2PS        (SI), Z8
	VCVTPH2PS        32(SI), Z9
	P41FIRST(0, Z2, Z3)
	P41FIRST(1, Z6, Z7)
	P41FIRST(2, Z10, Z11)
	P41FIRST(3, Z12, Z13)
	P41NEXT(4, Z2, Z3)
	P41NEXT(5, Z6, Z7)
	P41NEXT(6, Z10, Z11)
	P41NEXT(7, Z12, Z13)
	P41NEXT(8, Z2, Z3)
	P41NEXT(9, Z6, Z7)
	P41NEXT(10, Z10, Z11)
	P41NEXT(11, Z12, Z13)
	P41NEXT(12, Z2, Z3)
	P41NEXT(13, Z6, Z7)
	P41NEXT(14, Z10, Z11)
	P41NEXT(15, Z12, Z13)
	VADDPS           Z3, Z2, Z2
	VADDPS           Z7, Z6, Z6
	VADDPS           Z11, Z10, Z10
	VADDPS           Z13, Z12, Z12
	VADDPS           Z6, Z2, Z2
	VADDPS           Z12, Z10, Z10
	VADDPS           Z10, Z2, Z2
	VFMADD231PS      Z8, Z2, Z0
	VFMADD231PS.BCST (BX), Z9, Z1
	ADDQ             $320, SI
	ADDQ             $128, DI
	ADDQ             $4, BX
	DECQ             CX
	JNE              block

	VADDPS  Z1, Z0, Z0
	VMOVUPS Z0, (R8)
	ADDQ    $64, R8
	DECQ    R9
	JNE     group

end:
	VZEROUPPER
	RET

// P80FIRST / P80NEXT: column c of the Q8_0 tile at SI times x[c] (x at DI), into accumulator a.
#define P80FIRST(c, a) \
	VPMOVSXBD   (32+16*c)(SI), Z4; \
	VCVTDQ2PS   Z4, Z4; \
	VMULPS.BCST (4*c)(DI), Z4, a

#define P80NEXT(c, a) \
	VPMOVSXBD        (32+16*c)(SI), Z4; \
	VCVTDQ2PS        Z4, Z4; \
	VFMADD231PS.BCST (4*c)(DI), Z4, a

// func rowsPackedQ8_0AVX512(out []float32, w []byte, x []float32, xs []float32)
// out[16g+r] = sum over blocks b of d[r]*sum_c q[r][c]*x[32b+c]; xs is not read.
TEXT ·rowsPackedQ8_0AVX512(SB), NOSPLIT, $0-96
	MOVQ  out_base+0(FP), R8
	MOVQ  out_len+8(FP), R9
	SHRQ  $4, R9
	MOVQ  w_base+24(FP), SI
	MOVQ  x_base+48(FP), R12
	MOVQ  x_len+56(FP), R13
	SHRQ  $5, R13
	TESTQ R9, R9
	JE    end

group:
	MOVQ   R12, DI
	MOVQ   R13, CX
	VXORPS Z0, Z0, Z0

block:
	VCVTPH2PS (SI), Z8
	P80FIRST(0, Z2)
	P80FIRST(1, Z3)
	P80FIRST(2, Z6)
	P80FIRST(3, Z7)
	P80NEXT(4, Z2)
	P80NEXT(5, Z3)
	P80NEXT(6, Z6)
	P80NEXT(7, Z7)
	P80NEXT(8, Z2)
	P80NEXT(9, Z3)
	P80NEXT(10, Z6)
	P80NEXT(11, Z7)
	P80NEXT(12, Z2)
	P80NEXT(13, Z3)
	P80NEXT(14, Z6)
	P80NEXT(15, Z7)
	P80NEXT(16, Z2)
	P80NEXT(17, Z3)
	P80NEXT(18, Z6)
	P80NEXT(19, Z7)
	P80NEXT(20, Z2)
	P80NEXT(21, Z3)
	P80NEXT(22, Z6)
	P80NEXT(23, Z7)
	P80NEXT(24, Z2)
	P80NEXT(25, Z3)
	P80NEXT(26, Z6)
	P80NEXT(27, Z7)
	P80NEXT(28, Z2)
	P80NEXT(29, Z3)
	P80NEXT(30, Z6)
	P80NEXT(31, Z7)
	VADDPS      Z3, Z2, Z2
	VADDPS      Z7, Z6, Z6
	VADDPS      Z6, Z2, Z2
	VFMADD231PS Z8, Z2, Z0
	ADDQ        $544, SI
	ADDQ        $128, DI
	DECQ        CX
	JNE         block

	VMOVUPS Z0, (R8)
	ADDQ    $64, R8
	DECQ    R9
	JNE     group

end:
	VZEROUPPER
	RET

// P41DQ(c) writes values c and c+16 of the 16 rows (Q4_1 tile at SI, d in Z8, m in Z9) to DI.
#define P41DQ(c) \
	P41LOAD(c); \
	VFMADD213PS Z9, Z8, Z4; \
	VFMADD213PS Z9, Z8, Z5; \
	VMOVUPS     Z4, (64*c)(DI); \
	VMOVUPS     Z5, (1024+64*c)(DI)

// func dequantPackedQ4_1AVX512(dst []float32, group []byte)
// dst[k*16+r] = q[r][k]*d[r] + m[r] for the len(dst)/512 blocks of one packed group.
TEXT ·dequantPackedQ4_1AVX512(SB), NOSPLIT, $0-48
	MOVQ    dst_base+0(FP), DI
	MOVQ    dst_len+8(FP), CX
	SHRQ    $9, CX
	MOVQ    group_base+24(FP), SI
	MOVQ    $·nibbleFloats(SB), AX
	VMOVUPS (AX), Z15
	TESTQ   CX, CX
	JE      end

block:
	VCVTPH2PS (SI), Z8
	VCVTPH2PS 32(SI), Z9
	P41DQ(0)
	P41DQ(1)
	P41DQ(2)
	P41DQ(3)
	P41DQ(4)
	P41DQ(5)
	P41DQ(6)
	P41DQ(7)
	P41DQ(8)
	P41DQ(9)
	P41DQ(10)
	P41DQ(11)
	P41DQ(12)
	P41DQ(13)
	P41DQ(14)
	P41DQ(15)
	ADDQ      $320, SI
	ADDQ      $2048, DI
	DECQ      CX
	JNE       block

end:
	VZEROUPPER
	RET

// P80DQ(c) writes value c of the 16 rows (Q8_0 tile at SI, d in Z8) to DI.
#define P80DQ(c) \
	VPMOVSXBD (32+16*c)(SI), Z4; \
	VCVTDQ2PS Z4, Z4; \
	VMULPS    Z8, Z4, Z4; \
	VMOVUPS   Z4, (64*c)(DI)

// func dequantPackedQ8_0AVX512(dst []float32, group []byte)
// dst[k*16+r] = q[r][k]*d[r] for the len(dst)/512 blocks of one packed group.
TEXT ·dequantPackedQ8_0AVX512(SB), NOSPLIT, $0-48
	MOVQ  dst_base+0(FP), DI
	MOVQ  dst_len+8(FP), CX
	SHRQ  $9, CX
	MOVQ  group_base+24(FP), SI
	TESTQ CX, CX
	JE    end

block:
	VCVTPH2PS (SI), Z8
	P80DQ(0)
	P80DQ(1)
	P80DQ(2)
	P80DQ(3)
	P80DQ(4)
	P80DQ(5)
	P80DQ(6)
	P80DQ(7)
	P80DQ(8)
	P80DQ(9)
	P80DQ(10)
	P80DQ(11)
	P80DQ(12)
	P80DQ(13)
	P80DQ(14)
	P80DQ(15)
	P80DQ(16)
	P80DQ(17)
	P80DQ(18)
	P80DQ(19)
	P80DQ(20)
	P80DQ(21)
	P80DQ(22)
	P80DQ(23)
	P80DQ(24)
	P80DQ(25)
	P80DQ(26)
	P80DQ(27)
	P80DQ(28)
	P80DQ(29)
	P80DQ(30)
	P80DQ(31)
	ADDQ      $544, SI
	ADDQ      $2048, DI
	DECQ      CX
	JNE       block

end:
	VZEROUPPER
	RET

// func gemm8x16AVX512(out *float32, ldo int, x *float32, ldx int, dq *float32, cols int)
// out[t*ldo+r] = sum_{k<cols} x[t*ldx+k] * dq[k*16+r] for t < 8, r < 16 (cols even, >= 2). Accumulators
// Z0-Z7 (one per token) take the even k and Z16-Z23 the odd ones, summed at the end: two independent
// chains per output, and sums of cols/2 terms. Per k one load of the column and 8 FMAs with x broadcast
// from memory.
TEXT ·gemm8x16AVX512(SB), NOSPLIT, $0-48
	MOVQ   out+0(FP), R8
	MOVQ   ldo+8(FP), R9
	SHLQ   $2, R9
	MOVQ   x+16(FP), BX
	MOVQ   ldx+24(FP), R10
	SHLQ   $2, R10
	LEAQ   (R10)(R10*2), R11
	LEAQ   (BX)(R10*4), R12
	MOVQ   dq+32(FP), SI
	MOVQ   cols+40(FP), CX
	SHRQ   $1, CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z16, Z16, Z16
	VXORPS Z17, Z17, Z17
	VXORPS Z18, Z18, Z18
	VXORPS Z19, Z19, Z19
	VXORPS Z20, Z20, Z20
	VXORPS Z21, Z21, Z21
	VXORPS Z22, Z22, Z22
	VXORPS Z23, Z23, Z23

loop:
	VMOVUPS          (SI), Z8
	VMOVUPS          64(SI), Z9
	VFMADD231PS.BCST (BX), Z8, Z0
	VFMADD231PS.BCST (BX)(R10*1), Z8, Z1
	VFMADD231PS.BCST (BX)(R10*2), Z8, Z2
	VFMADD231PS.BCST (BX)(R11*1), Z8, Z3
	VFMADD231PS.BCST (R12), Z8, Z4
	VFMADD231PS.BCST (R12)(R10*1), Z8, Z5
	VFMADD231PS.BCST (R12)(R10*2), Z8, Z6
	VFMADD231PS.BCST (R12)(R11*1), Z8, Z7
	VFMADD231PS.BCST 4(BX), Z9, Z16
	VFMADD231PS.BCST 4(BX)(R10*1), Z9, Z17
	VFMADD231PS.BCST 4(BX)(R10*2), Z9, Z18
	VFMADD231PS.BCST 4(BX)(R11*1), Z9, Z19
	VFMADD231PS.BCST 4(R12), Z9, Z20
	VFMADD231PS.BCST 4(R12)(R10*1), Z9, Z21
	VFMADD231PS.BCST 4(R12)(R10*2), Z9, Z22
	VFMADD231PS.BCST 4(R12)(R11*1), Z9, Z23
	ADDQ             $128, SI
	ADDQ             $8, BX
	ADDQ             $8, R12
	DECQ             CX
	JNE              loop

	VADDPS  Z16, Z0, Z0
	VADDPS  Z17, Z1, Z1
	VADDPS  Z18, Z2, Z2
	VADDPS  Z19, Z3, Z3
	VADDPS  Z20, Z4, Z4
	VADDPS  Z21, Z5, Z5
	VADDPS  Z22, Z6, Z6
	VADDPS  Z23, Z7, Z7
	LEAQ    (R9)(R9*2), R11
	VMOVUPS Z0, (R8)
	VMOVUPS Z1, (R8)(R9*1)
	VMOVUPS Z2, (R8)(R9*2)
	VMOVUPS Z3, (R8)(R11*1)
	LEAQ    (R8)(R9*4), R8
	VMOVUPS Z4, (R8)
	VMOVUPS Z5, (R8)(R9*1)
	VMOVUPS Z6, (R8)(R9*2)
	VMOVUPS Z7, (R8)(R11*1)
	VZEROUPPER
	RET

// func blockSumsAVX(xs, x []float32)
// xs[b] = sum(x[32b:32b+32]) for each 32-value block b of x (AVX2).
TEXT ·blockSumsAVX(SB), NOSPLIT, $0-48
	MOVQ xs_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	SHRQ $5, CX
	JE   bsdone

bsloop:
	VMOVUPS      (SI), Y0
	VADDPS       32(SI), Y0, Y0
	VMOVUPS      64(SI), Y1
	VADDPS       96(SI), Y1, Y1
	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMOVSS       X0, (DI)
	ADDQ         $128, SI
	ADDQ         $4, DI
	DECQ         CX
	JNZ          bsloop
	VZEROUPPER

bsdone:
	RET

// nibbleFloats: 0, 1, ..., 15 as float32, the lookup table of Q41BLOCK.
DATA ·nibbleFloats+0(SB)/4, $0x00000000
DATA ·nibbleFloats+4(SB)/4, $0x3f800000
DATA ·nibbleFloats+8(SB)/4, $0x40000000
DATA ·nibbleFloats+12(SB)/4, $0x40400000
DATA ·nibbleFloats+16(SB)/4, $0x40800000
DATA ·nibbleFloats+20(SB)/4, $0x40a00000
DATA ·nibbleFloats+24(SB)/4, $0x40c00000
DATA ·nibbleFloats+28(SB)/4, $0x40e00000
DATA ·nibbleFloats+32(SB)/4, $0x41000000
DATA ·nibbleFloats+36(SB)/4, $0x41100000
DATA ·nibbleFloats+40(SB)/4, $0x41200000
DATA ·nibbleFloats+44(SB)/4, $0x41300000
DATA ·nibbleFloats+48(SB)/4, $0x41400000
DATA ·nibbleFloats+52(SB)/4, $0x41500000
DATA ·nibbleFloats+56(SB)/4, $0x41600000
DATA ·nibbleFloats+60(SB)/4, $0x41700000
GLOBL ·nibbleFloats(SB), RODATA|NOPTR, $64
