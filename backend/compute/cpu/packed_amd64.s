//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 kernels for the packed weight layout (packed.go): 16 interleaved rows per group, 4 bytes of each
// row in one dword, so that one vector holds 4 columns of 16 rows. Decode multiplies them with the
// activations' int8 digits broadcast from memory (VPDPBUSD, AVX-512 VNNI): three int32 sums per row and
// block, one per digit, combined in float32 once per block. Prefill dequantizes a group into (cols, 16)
// column tiles and runs an 8-token x 16-row micro-kernel over them. Handwritten for this project.
//
// The decode kernels prefetch the tiles 3 KB ahead (PREFETCHT0; a prefetch never faults, past the end of
// w included): once the integer dots made them memory-bound, the hardware prefetcher alone left ~10% of
// the bandwidth unused (BenchmarkMatvecModel: 6.2 -> 5.5 ms per token's weights).

// Q41V(i): vector i of the Q4_1 tile at SI (columns 4i..4i+3 in the low nibbles, 16+4i.. in the high
// ones) times the hi, mid and lo digits at DI: low nibbles into Z1-Z3, high nibbles into Z4-Z6.
#define Q41V(i) \
	VPSRLW        $4, (64+64*i)(SI), Z8; \
	VPANDD        (64+64*i)(SI), Z15, Z7; \
	VPANDD        Z15, Z8, Z8; \
	VPDPBUSD.BCST (4*i)(DI), Z7, Z1; \
	VPDPBUSD.BCST (32+4*i)(DI), Z7, Z2; \
	VPDPBUSD.BCST (64+4*i)(DI), Z7, Z3; \
	VPDPBUSD.BCST (16+4*i)(DI), Z8, Z4; \
	VPDPBUSD.BCST (48+4*i)(DI), Z8, Z5; \
	VPDPBUSD.BCST (80+4*i)(DI), Z8, Z6

// BLOCKSUM combines the digit sums Z1-Z6 of one block: Z1 = float32((256*hi + mid)*256 + lo), then
// Z0 += Z1 * d*s (d at SI as f16, s at BX).
#define BLOCKSUM \
	VPADDD          Z4, Z1, Z1; \
	VPADDD          Z5, Z2, Z2; \
	VPADDD          Z6, Z3, Z3; \
	VCVTDQ2PS       Z1, Z1; \
	VCVTDQ2PS       Z2, Z2; \
	VCVTDQ2PS       Z3, Z3; \
	VFMADD213PS     Z2, Z14, Z1; \
	VFMADD213PS     Z3, Z14, Z1; \
	VCVTPH2PS       (SI), Z9; \
	VMULPS.BCST     (BX), Z9, Z9; \
	VFMADD231PS     Z9, Z1, Z0

// func rowsPackedQ4_1VNNI(out []float32, w []byte, xq []byte, sc, sum []float32)
// out[16g+r] = sum over blocks b of d[r]*s[b]*sum_k q[r][k]*X[k] + m[r]*sum[b], for the len(out)/16
// groups at w; xq holds the digits of len(sc) >= 1 blocks.
TEXT ·rowsPackedQ4_1VNNI(SB), NOSPLIT, $0-120
	MOVQ         out_base+0(FP), R8
	MOVQ         out_len+8(FP), R9
	SHRQ         $4, R9
	MOVQ         w_base+24(FP), SI
	MOVQ         xq_base+48(FP), R12
	MOVQ         sc_base+72(FP), R11
	MOVQ         sc_len+80(FP), R13
	MOVQ         sum_base+96(FP), R14
	MOVL         $0x0f0f0f0f, AX
	VPBROADCASTD AX, Z15
	MOVL         $0x43800000, AX // 256.0
	VPBROADCASTD AX, Z14
	TESTQ        R9, R9
	JE           end

group:
	MOVQ   R12, DI
	MOVQ   R11, BX
	MOVQ   R14, R10
	MOVQ   R13, CX
	VXORPS Z0, Z0, Z0

block:
	VPXORD           Z1, Z1, Z1
	VPXORD           Z2, Z2, Z2
	VPXORD           Z3, Z3, Z3
	VPXORD           Z4, Z4, Z4
	VPXORD           Z5, Z5, Z5
	VPXORD           Z6, Z6, Z6
	Q41V(0)
	PREFETCHT0 (3072)(SI)
	PREFETCHT0 (3136)(SI)
	PREFETCHT0 (3200)(SI)
	PREFETCHT0 (3264)(SI)
	PREFETCHT0 (3328)(SI)
	Q41V(1)
	Q41V(2)
	Q41V(3)
	BLOCKSUM
	VCVTPH2PS        32(SI), Z10
	VFMADD231PS.BCST (R10), Z10, Z0
	ADDQ             $320, SI
	ADDQ             $96, DI
	ADDQ             $4, BX
	ADDQ             $4, R10
	DECQ             CX
	JNE              block

	VMOVUPS Z0, (R8)
	ADDQ    $64, R8
	DECQ    R9
	JNE     group

end:
	VZEROUPPER
	RET

// Q80V(i, a, b, c): vector i of the Q8_0 tile at SI (columns 4i..4i+3, offset by 128) times the hi, mid
// and lo digits at DI, into a, b, c.
#define Q80V(i, a, b, c) \
	VMOVDQU32     (32+64*i)(SI), Z7; \
	VPDPBUSD.BCST (4*i)(DI), Z7, a; \
	VPDPBUSD.BCST (32+4*i)(DI), Z7, b; \
	VPDPBUSD.BCST (64+4*i)(DI), Z7, c

// func rowsPackedQ8_0VNNI(out []float32, w []byte, xq []byte, sc []float32, corr []int32)
// out[16g+r] = sum over blocks b of d[r]*s[b]*sum_k q[r][k]*X[k], for the len(out)/16 groups at w; the
// sums of (q+128)*digit start at corr (-128 * the digit sums), which makes them sums of q*digit.
TEXT ·rowsPackedQ8_0VNNI(SB), NOSPLIT, $0-120
	MOVQ         out_base+0(FP), R8
	MOVQ         out_len+8(FP), R9
	SHRQ         $4, R9
	MOVQ         w_base+24(FP), SI
	MOVQ         xq_base+48(FP), R12
	MOVQ         sc_base+72(FP), R11
	MOVQ         sc_len+80(FP), R13
	MOVQ         corr_base+96(FP), R14
	MOVL         $0x43800000, AX // 256.0
	VPBROADCASTD AX, Z14
	TESTQ        R9, R9
	JE           end

group:
	MOVQ   R12, DI
	MOVQ   R11, BX
	MOVQ   R14, R10
	MOVQ   R13, CX
	VXORPS Z0, Z0, Z0

block:
	VPBROADCASTD (R10), Z1
	VPBROADCASTD 4(R10), Z2
	VPBROADCASTD 8(R10), Z3
	VPXORD       Z4, Z4, Z4
	VPXORD       Z5, Z5, Z5
	VPXORD       Z6, Z6, Z6
	Q80V(0, Z1, Z2, Z3)
	PREFETCHT0 (3072)(SI)
	PREFETCHT0 (3136)(SI)
	PREFETCHT0 (3200)(SI)
	PREFETCHT0 (3264)(SI)
	PREFETCHT0 (3328)(SI)
	PREFETCHT0 (3392)(SI)
	PREFETCHT0 (3456)(SI)
	PREFETCHT0 (3520)(SI)
	PREFETCHT0 (3584)(SI)
	Q80V(1, Z4, Z5, Z6)
	Q80V(2, Z1, Z2, Z3)
	Q80V(3, Z4, Z5, Z6)
	Q80V(4, Z1, Z2, Z3)
	Q80V(5, Z4, Z5, Z6)
	Q80V(6, Z1, Z2, Z3)
	Q80V(7, Z4, Z5, Z6)
	BLOCKSUM
	ADDQ $544, SI
	ADDQ $96, DI
	ADDQ $4, BX
	ADDQ $16, R10
	DECQ CX
	JNE  block

	VMOVUPS Z0, (R8)
	ADDQ    $64, R8
	DECQ    R9
	JNE     group

end:
	VZEROUPPER
	RET

// DIGITS(z, off) splits the int32 values X in z into digits hi, mid, lo (X = 65536*hi + 256*mid + lo,
// each in int8) and stores them as bytes at off, 32+off and 64+off from DI. Clobbers z, Z6, Z7.
#define DIGITS(z, off) \
	VPSLLD  $24, z, Z6; \
	VPSRAD  $24, Z6, Z6; \
	VPSUBD  Z6, z, z; \
	VPSRAD  $8, z, z; \
	VPSLLD  $24, z, Z7; \
	VPSRAD  $24, Z7, Z7; \
	VPSUBD  Z7, z, z; \
	VPSRAD  $8, z, z; \
	VPMOVDB z, (off)(DI); \
	VPMOVDB Z7, (32+off)(DI); \
	VPMOVDB Z6, (64+off)(DI)

// func encodeXAVX512(q []byte, sc []float32, x []float32)
// For each 32-value block b of x: amax = max(1e-30, max|x|), sc[b] = amax/xqMax (NaN when the block
// holds a NaN, so that it reaches the outputs), and the digits of X = round(x * (xqMax/amax)) at
// q[96b:96b+96] (see encodeXGo).
TEXT ·encodeXAVX512(SB), NOSPLIT, $0-72
	MOVQ         q_base+0(FP), DI
	MOVQ         sc_base+24(FP), BX
	MOVQ         x_base+48(FP), SI
	MOVQ         x_len+56(FP), CX
	SHRQ         $5, CX
	JE           encdone
	MOVL         $0x7fffffff, AX
	VPBROADCASTD AX, Z10
	MOVL         $0x0da24260, AX // xqFloor, 1e-30
	VPBROADCASTD AX, Z11
	MOVL         $0x4afe0000, AX // xqMax, 8323072.0
	VMOVD        AX, X12

encloop:
	VMOVUPS      (SI), Z0
	VMOVUPS      64(SI), Z1
	VANDPS       Z10, Z0, Z2
	VANDPS       Z10, Z1, Z3
	VMAXPS       Z3, Z2, Z2
	VMAXPS       Z11, Z2, Z2
	VSHUFF32X4   $0x4e, Z2, Z2, Z3
	VMAXPS       Z3, Z2, Z2
	VSHUFF32X4   $0xb1, Z2, Z2, Z3
	VMAXPS       Z3, Z2, Z2
	VPERMILPS    $0x4e, Z2, Z3
	VMAXPS       Z3, Z2, Z2
	VPERMILPS    $0xb1, Z2, Z3
	VMAXPS       Z3, Z2, Z2
	VDIVSS       X2, X12, X4
	VDIVSS       X12, X2, X5
	VCMPPS       $3, Z0, Z0, K1 // unordered: NaN lanes
	VCMPPS       $3, Z1, Z1, K2
	KORTESTW     K1, K2
	JNZ          nanblock
	VMOVSS       X5, (BX)

digits:
	VBROADCASTSS X4, Z4
	VMULPS       Z4, Z0, Z0
	VMULPS       Z4, Z1, Z1
	VCVTPS2DQ    Z0, Z0
	VCVTPS2DQ    Z1, Z1
	DIGITS(Z0, 0)
	DIGITS(Z1, 16)
	ADDQ         $128, SI
	ADDQ         $96, DI
	ADDQ         $4, BX
	DECQ         CX
	JNE          encloop
	VZEROUPPER

encdone:
	RET

nanblock: // max and the scale may have dropped the NaN; the block's scale is NaN, as the Go twin's
	MOVL $0x7fc00000, AX
	MOVL AX, (BX)
	JMP  digits

// P41DQ(i, j) writes values 4i+j and 16+4i+j of the 16 rows (vector i of the Q4_1 tile in Z16, d in Z8,
// m in Z9) to DI.
#define P41DQ(i, j) \
	VPSRLD      $(8*j), Z16, Z4; \
	VPERMPS     Z15, Z4, Z4; \
	VFMADD213PS Z9, Z8, Z4; \
	VMOVUPS     Z4, (64*(4*i+j))(DI); \
	VPSRLD      $(8*j+4), Z16, Z5; \
	VPERMPS     Z15, Z5, Z5; \
	VFMADD213PS Z9, Z8, Z5; \
	VMOVUPS     Z5, (64*(16+4*i+j))(DI)

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
	VMOVDQU32 (64)(SI), Z16
	P41DQ(0, 0)
	P41DQ(0, 1)
	P41DQ(0, 2)
	P41DQ(0, 3)
	VMOVDQU32 (128)(SI), Z16
	P41DQ(1, 0)
	P41DQ(1, 1)
	P41DQ(1, 2)
	P41DQ(1, 3)
	VMOVDQU32 (192)(SI), Z16
	P41DQ(2, 0)
	P41DQ(2, 1)
	P41DQ(2, 2)
	P41DQ(2, 3)
	VMOVDQU32 (256)(SI), Z16
	P41DQ(3, 0)
	P41DQ(3, 1)
	P41DQ(3, 2)
	P41DQ(3, 3)
	ADDQ      $320, SI
	ADDQ      $2048, DI
	DECQ      CX
	JNE       block

end:
	VZEROUPPER
	RET

// P80DQ(i, j) writes value 4i+j of the 16 rows (vector i of the Q8_0 tile in Z16, its offset of 128
// removed; d in Z8) to DI.
#define P80DQ(i, j) \
	VPSLLD    $(24-8*j), Z16, Z4; \
	VPSRAD    $24, Z4, Z4; \
	VCVTDQ2PS Z4, Z4; \
	VMULPS    Z8, Z4, Z4; \
	VMOVUPS   Z4, (64*(4*i+j))(DI)

// func dequantPackedQ8_0AVX512(dst []float32, group []byte)
// dst[k*16+r] = q[r][k]*d[r] for the len(dst)/512 blocks of one packed group.
TEXT ·dequantPackedQ8_0AVX512(SB), NOSPLIT, $0-48
	MOVQ         dst_base+0(FP), DI
	MOVQ         dst_len+8(FP), CX
	SHRQ         $9, CX
	MOVQ         group_base+24(FP), SI
	MOVL         $0x80808080, AX
	VPBROADCASTD AX, Z13
	TESTQ        CX, CX
	JE           end

block:
	VCVTPH2PS (SI), Z8
	VPXORD    (32)(SI), Z13, Z16
	P80DQ(0, 0)
	P80DQ(0, 1)
	P80DQ(0, 2)
	P80DQ(0, 3)
	VPXORD    (96)(SI), Z13, Z16
	P80DQ(1, 0)
	P80DQ(1, 1)
	P80DQ(1, 2)
	P80DQ(1, 3)
	VPXORD    (160)(SI), Z13, Z16
	P80DQ(2, 0)
	P80DQ(2, 1)
	P80DQ(2, 2)
	P80DQ(2, 3)
	VPXORD    (224)(SI), Z13, Z16
	P80DQ(3, 0)
	P80DQ(3, 1)
	P80DQ(3, 2)
	P80DQ(3, 3)
	VPXORD    (288)(SI), Z13, Z16
	P80DQ(4, 0)
	P80DQ(4, 1)
	P80DQ(4, 2)
	P80DQ(4, 3)
	VPXORD    (352)(SI), Z13, Z16
	P80DQ(5, 0)
	P80DQ(5, 1)
	P80DQ(5, 2)
	P80DQ(5, 3)
	VPXORD    (416)(SI), Z13, Z16
	P80DQ(6, 0)
	P80DQ(6, 1)
	P80DQ(6, 2)
	P80DQ(6, 3)
	VPXORD    (480)(SI), Z13, Z16
	P80DQ(7, 0)
	P80DQ(7, 1)
	P80DQ(7, 2)
	P80DQ(7, 3)
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

// nibbleFloats: 0, 1, ..., 15 as float32, the lookup table of P41DQ.
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
