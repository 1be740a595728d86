//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 kernels for the packed weight layout (packed.go): 16 interleaved rows per group, 4 bytes of each
// row in one dword, so that one vector holds 4 columns of 16 rows. The kernels multiply them with the
// activations' int8 digits broadcast from memory (VPDPBUSD, AVX-512 VNNI): three int32 sums per row and
// block, one per digit, combined in float32 once per block. Handwritten for this project.
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

// func encodeXAVX512(q []byte, sc []float32, x []float32, stride int)
// For each 32-value block b of x: amax = max(1e-30, max|x|), sc[b*stride] = amax/xqMax (NaN when the
// block holds a NaN, so that it reaches the outputs), and the digits of X = round(x * (xqMax/amax)) at
// q[96*b*stride:][:96] (see encodeXGo).
TEXT ·encodeXAVX512(SB), NOSPLIT, $0-80
	MOVQ         q_base+0(FP), DI
	MOVQ         sc_base+24(FP), BX
	MOVQ         x_base+48(FP), SI
	MOVQ         stride+72(FP), R9
	LEAQ         (R9)(R9*2), R8
	SHLQ         $5, R8 // 96*stride bytes between blocks of q
	SHLQ         $2, R9 // 4*stride bytes between scales
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
	ADDQ         R8, DI
	ADDQ         R9, BX
	DECQ         CX
	JNE          encloop
	VZEROUPPER

encdone:
	RET

nanblock: // max and the scale may have dropped the NaN; the block's scale is NaN, as the Go twin's
	MOVL $0x7fc00000, AX
	MOVL AX, (BX)
	JMP  digits

// func blockSumsAVX(xs, x []float32, stride int)
// xs[b*stride] = sum(x[32b:32b+32]) for each 32-value block b of x (AVX2).
TEXT ·blockSumsAVX(SB), NOSPLIT, $0-56
	MOVQ xs_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ stride+48(FP), R8
	SHLQ $2, R8
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
	ADDQ         R8, DI
	DECQ         CX
	JNZ          bsloop
	VZEROUPPER

bsdone:
	RET
