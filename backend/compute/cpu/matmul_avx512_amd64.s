//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 (F, BW, VL) decode kernels: the fused dequantize-and-dot over one weight row for the block types
// of the SmolLM2 GGUF. One 32-value block is two 16-lane vectors; the scale multiplies once per block.
// Handwritten for this project.
//
// Q8_0: acc += d * (sum_j q[j]*x[j]), the same order of operations as the AVX2 kernel.
// Q4_1: value q*d+m, so a block contributes d*(sum_j q[j]*x[j]) + m*(sum_j x[j]); the per-block sums of x
// come precomputed (xs, 4 floats per block: 0, sum, 0, 0) and the m terms accumulate in lane 1 of an XMM
// register fed straight from the converted (d, m) pair, so that no broadcast of m is needed.

// Q8BLOCK adds one Q8_0 block at woff(SI), x at xoff(DI), into acc.
#define Q8BLOCK(woff, xoff, acc) \
	VCVTPH2PS    woff(SI), X8; \
	VBROADCASTSS X8, Z8; \
	VPMOVSXBD    woff+2(SI), Z4; \
	VPMOVSXBD    woff+18(SI), Z5; \
	VCVTDQ2PS    Z4, Z4; \
	VCVTDQ2PS    Z5, Z5; \
	VMULPS       xoff(DI), Z4, Z4; \
	VFMADD231PS  xoff+64(DI), Z5, Z4; \
	VFMADD231PS  Z8, Z4, acc

// Q41BLOCK adds one Q4_1 block at woff(SI), x at xoff(DI), block sum at soff(BX): d-part into acc (zmm),
// m-part into lane 1 of macc (xmm). Z15 holds 15 in every dword. Lanes 2-3 of X8 hold nibble bytes read as
// f16 and are multiplied by the zeros of xs; only lane 1 of macc is used. Nibbles become floats through a
// 16-entry table lookup (Z15 = 0, 1, ..., 15 as float32; VPERMPS reads the low 4 bits of each index), which
// takes the AND and both conversions off the arithmetic ports.
#define Q41BLOCK(woff, xoff, soff, acc, macc) \
	VCVTPH2PS    woff(SI), X8; \
	VBROADCASTSS X8, Z9; \
	VPMOVZXBD    woff+4(SI), Z4; \
	VPSRLD       $4, Z4, Z5; \
	VPERMPS      Z15, Z4, Z4; \
	VPERMPS      Z15, Z5, Z5; \
	VMULPS       xoff(DI), Z4, Z4; \
	VFMADD231PS  xoff+64(DI), Z5, Z4; \
	VFMADD231PS  Z9, Z4, acc; \
	VFMADD231PS  soff(BX), X8, macc

// REDUCE16 sums the 16 lanes of Z0 into X0. Clobbers Z1.
#define REDUCE16 \
	VEXTRACTF64X4 $1, Z0, Y1; \
	VADDPS        Y1, Y0, Y0; \
	VEXTRACTF128  $1, Y0, X1; \
	VADDPS        X1, X0, X0; \
	VHADDPS       X0, X0, X0; \
	VHADDPS       X0, X0, X0

// func rowsQ8_0AVX512(out []float32, w []byte, rb int, x []float32, xs []float32)
// out[r] = sum_i dequant(w[r*rb:])[i]*x[i] for r < len(out); xs is not read (same frame as the Q4_1 kernel).
TEXT ·rowsQ8_0AVX512(SB), NOSPLIT, $0-104
	MOVQ out_base+0(FP), R8
	MOVQ out_len+8(FP), R9
	MOVQ w_base+24(FP), R10
	MOVQ rb+48(FP), R11
	MOVQ x_base+56(FP), R12
	MOVQ x_len+64(FP), R13
	SHRQ $5, R13
	TESTQ R9, R9
	JE    end

row:
	MOVQ   R10, SI
	MOVQ   R12, DI
	MOVQ   R13, CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	TESTQ  CX, CX
	JE     done
	TESTQ  $1, CX
	JE     loop2
	Q8BLOCK(0, 0, Z0)
	ADDQ   $34, SI
	ADDQ   $128, DI
	DECQ   CX
	JE     done

loop2: // two blocks per iteration, into Z0 and Z1
	Q8BLOCK(0, 0, Z0)
	Q8BLOCK(34, 128, Z1)
	ADDQ $68, SI
	ADDQ $256, DI
	SUBQ $2, CX
	JNE  loop2

done:
	VADDPS Z1, Z0, Z0
	REDUCE16
	VMOVSS X0, (R8)
	ADDQ   $4, R8
	ADDQ   R11, R10
	DECQ   R9
	JNE    row

end:
	VZEROUPPER
	RET

// func rowsQ4_1AVX512(out []float32, w []byte, rb int, x []float32, xs []float32)
// out[r] = sum_i dequant(w[r*rb:])[i]*x[i] for r < len(out), with xs the blockSums of x.
TEXT ·rowsQ4_1AVX512(SB), NOSPLIT, $0-104
	MOVQ    out_base+0(FP), R8
	MOVQ    out_len+8(FP), R9
	MOVQ    w_base+24(FP), R10
	MOVQ    rb+48(FP), R11
	MOVQ    x_base+56(FP), R12
	MOVQ    x_len+64(FP), R13
	SHRQ    $5, R13
	MOVQ    xs_base+80(FP), R14
	MOVQ    $·nibbleFloats(SB), AX
	VMOVUPS (AX), Z15
	TESTQ   R9, R9
	JE      end

row:
	MOVQ   R10, SI
	MOVQ   R12, DI
	MOVQ   R14, BX
	MOVQ   R13, CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS X10, X10, X10
	VXORPS X11, X11, X11
	TESTQ  CX, CX
	JE     done
	TESTQ  $1, CX
	JE     loop2
	Q41BLOCK(0, 0, 0, Z0, X10)
	ADDQ   $20, SI
	ADDQ   $128, DI
	ADDQ   $16, BX
	DECQ   CX
	JE     done

loop2: // two blocks per iteration, into Z0/X10 and Z1/X11
	Q41BLOCK(0, 0, 0, Z0, X10)
	Q41BLOCK(20, 128, 16, Z1, X11)
	ADDQ $40, SI
	ADDQ $256, DI
	ADDQ $32, BX
	SUBQ $2, CX
	JNE  loop2

done:
	VADDPS    Z1, Z0, Z0
	VADDPS    X11, X10, X10
	REDUCE16
	VMOVSHDUP X10, X10
	VADDSS    X10, X0, X0
	VMOVSS    X0, (R8)
	ADDQ      $4, R8
	ADDQ      R11, R10
	DECQ      R9
	JNE       row

end:
	VZEROUPPER
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

// func blockSumsAVX(xs, x []float32)
// For each 32-value block b of x (len(x)/32 blocks): xs[4b:4b+4] = 0, sum(x[32b:32b+32]), 0, 0 (AVX2).
TEXT ·blockSumsAVX(SB), NOSPLIT, $0-48
	MOVQ   xs_base+0(FP), DI
	MOVQ   x_base+24(FP), SI
	MOVQ   x_len+32(FP), CX
	SHRQ   $5, CX
	JE     bsdone
	VXORPS X7, X7, X7

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
	VBLENDPS     $2, X0, X7, X2 // 0, sum, 0, 0
	VMOVUPS      X2, (DI)
	ADDQ         $128, SI
	ADDQ         $16, DI
	DECQ         CX
	JNZ          bsloop
	VZEROUPPER

bsdone:
	RET
