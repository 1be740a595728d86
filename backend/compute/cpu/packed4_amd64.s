//go:build amd64 && !purego

#include "textflag.h"

// Packed decode for four tokens at once (packed4.go): each tile vector of the weight is loaded (and, for
// Q4_1, split into nibbles) once and multiplied with the digits of four tokens, whose activations are
// interleaved block by block: token u's digits of block b at xq + (4b+u)*96, its scale and block sum at
// sc + 4*(4b+u), sum + 4*(4b+u), its Q8_0 corrections at corr + 16*(4b+u). Per token the integer sums and
// their float32 combination are those of rowsPackedQ4_1VNNI / rowsPackedQ8_0VNNI, in the same order, so
// that the results are bit-identical to four calls of the one-token kernels. Handwritten for this project.
//
// Registers: token u's hi, mid, lo digit sums in Z1-Z3 (u=0), Z4-Z6, Z16-Z18, Z19-Z21; its float32
// outputs in Z0, Z22, Z23, Z24. Z7/Z8 the weight vector (low / high nibbles), Z9 d, Z10 m, Z11 scratch,
// Z14 256.0, Z15 the nibble mask.

// Q41T4(i, off, zh, zm, zl): the low and high nibbles of vector i (Z7, Z8) times the digits of the token at
// DI+off.
#define Q41T4(i, off, zh, zm, zl) \
	VPDPBUSD.BCST (off+4*i)(DI), Z7, zh; \
	VPDPBUSD.BCST (off+32+4*i)(DI), Z7, zm; \
	VPDPBUSD.BCST (off+64+4*i)(DI), Z7, zl; \
	VPDPBUSD.BCST (off+16+4*i)(DI), Z8, zh; \
	VPDPBUSD.BCST (off+48+4*i)(DI), Z8, zm; \
	VPDPBUSD.BCST (off+80+4*i)(DI), Z8, zl

#define Q41V4(i) \
	VPSRLW $4, (64+64*i)(SI), Z8; \
	VPANDD (64+64*i)(SI), Z15, Z7; \
	VPANDD Z15, Z8, Z8; \
	Q41T4(i, 0, Z1, Z2, Z3); \
	Q41T4(i, 96, Z4, Z5, Z6); \
	Q41T4(i, 192, Z16, Z17, Z18); \
	Q41T4(i, 288, Z19, Z20, Z21)

// DIGSUM4(u, zh, zm, zl, zo): token u's block result zo += float32((256*hi + mid)*256 + lo) * (d*s[u]),
// d in Z9, s at BX.
#define DIGSUM4(u, zh, zm, zl, zo) \
	VCVTDQ2PS   zh, zh; \
	VCVTDQ2PS   zm, zm; \
	VCVTDQ2PS   zl, zl; \
	VFMADD213PS zm, Z14, zh; \
	VFMADD213PS zl, Z14, zh; \
	VMULPS.BCST (4*u)(BX), Z9, Z11; \
	VFMADD231PS Z11, zh, zo

#define ZERO12 \
	VPXORD Z1, Z1, Z1; \
	VPXORD Z2, Z2, Z2; \
	VPXORD Z3, Z3, Z3; \
	VPXORD Z4, Z4, Z4; \
	VPXORD Z5, Z5, Z5; \
	VPXORD Z6, Z6, Z6; \
	VPXORD Z16, Z16, Z16; \
	VPXORD Z17, Z17, Z17; \
	VPXORD Z18, Z18, Z18; \
	VPXORD Z19, Z19, Z19; \
	VPXORD Z20, Z20, Z20; \
	VPXORD Z21, Z21, Z21

#define ZEROOUT4 \
	VXORPS Z0, Z0, Z0; \
	VXORPS Z22, Z22, Z22; \
	VXORPS Z23, Z23, Z23; \
	VXORPS Z24, Z24, Z24

#define STOREOUT4 \
	VMOVUPS Z0, (R8); \
	VMOVUPS Z22, (R8)(R11*1); \
	VMOVUPS Z23, (R8)(R11*2); \
	VMOVUPS Z24, (R8)(R12*1)

// func rowsPacked4Q4_1VNNI(out *float32, ldo int, groups int, w *byte, nb int, xq *byte, sc *float32, sum *float32)
// out[u*ldo + 16g + r] for tokens u < 4 and the groups at w (nb blocks each).
TEXT ·rowsPacked4Q4_1VNNI(SB), NOSPLIT, $0-64
	MOVQ         out+0(FP), R8
	MOVQ         ldo+8(FP), R11
	SHLQ         $2, R11
	LEAQ         (R11)(R11*2), R12
	MOVQ         groups+16(FP), R9
	MOVQ         w+24(FP), SI
	MOVQ         nb+32(FP), R13
	MOVQ         xq+40(FP), R14
	MOVQ         sc+48(FP), DX
	MOVQ         sum+56(FP), AX
	MOVL         $0x0f0f0f0f, CX
	VPBROADCASTD CX, Z15
	MOVL         $0x43800000, CX // 256.0
	VPBROADCASTD CX, Z14
	TESTQ        R9, R9
	JE           end
	TESTQ        R13, R13
	JE           end

group:
	MOVQ R14, DI
	MOVQ DX, BX
	MOVQ AX, R10
	MOVQ R13, CX
	ZEROOUT4

block:
	ZERO12
	Q41V4(0)
	PREFETCHT0 (3072)(SI)
	PREFETCHT0 (3136)(SI)
	PREFETCHT0 (3200)(SI)
	PREFETCHT0 (3264)(SI)
	PREFETCHT0 (3328)(SI)
	Q41V4(1)
	Q41V4(2)
	Q41V4(3)
	VCVTPH2PS (SI), Z9
	VCVTPH2PS 32(SI), Z10
	DIGSUM4(0, Z1, Z2, Z3, Z0)
	VFMADD231PS.BCST (R10), Z10, Z0
	DIGSUM4(1, Z4, Z5, Z6, Z22)
	VFMADD231PS.BCST 4(R10), Z10, Z22
	DIGSUM4(2, Z16, Z17, Z18, Z23)
	VFMADD231PS.BCST 8(R10), Z10, Z23
	DIGSUM4(3, Z19, Z20, Z21, Z24)
	VFMADD231PS.BCST 12(R10), Z10, Z24
	ADDQ $320, SI
	ADDQ $384, DI
	ADDQ $16, BX
	ADDQ $16, R10
	DECQ CX
	JNE  block

	STOREOUT4
	ADDQ $64, R8
	DECQ R9
	JNE  group

end:
	VZEROUPPER
	RET

// Q80T4(i, off, za, zb, zc): vector i (Z7) times the hi, mid and lo digits of the token at DI+off.
#define Q80T4(i, off, za, zb, zc) \
	VPDPBUSD.BCST (off+4*i)(DI), Z7, za; \
	VPDPBUSD.BCST (off+32+4*i)(DI), Z7, zb; \
	VPDPBUSD.BCST (off+64+4*i)(DI), Z7, zc

#define Q80V4(i) \
	VMOVDQU32 (32+64*i)(SI), Z7; \
	Q80T4(i, 0, Z1, Z2, Z3); \
	Q80T4(i, 96, Z4, Z5, Z6); \
	Q80T4(i, 192, Z16, Z17, Z18); \
	Q80T4(i, 288, Z19, Z20, Z21)

// CORR4(u, zh, zm, zl): token u's digit sums start at its corrections (R10).
#define CORR4(u, zh, zm, zl) \
	VPBROADCASTD (16*u)(R10), zh; \
	VPBROADCASTD (16*u+4)(R10), zm; \
	VPBROADCASTD (16*u+8)(R10), zl

// func rowsPacked4Q8_0VNNI(out *float32, ldo int, groups int, w *byte, nb int, xq *byte, sc *float32, corr *int32)
TEXT ·rowsPacked4Q8_0VNNI(SB), NOSPLIT, $0-64
	MOVQ         out+0(FP), R8
	MOVQ         ldo+8(FP), R11
	SHLQ         $2, R11
	LEAQ         (R11)(R11*2), R12
	MOVQ         groups+16(FP), R9
	MOVQ         w+24(FP), SI
	MOVQ         nb+32(FP), R13
	MOVQ         xq+40(FP), R14
	MOVQ         sc+48(FP), DX
	MOVQ         corr+56(FP), AX
	MOVL         $0x43800000, CX // 256.0
	VPBROADCASTD CX, Z14
	TESTQ        R9, R9
	JE           end
	TESTQ        R13, R13
	JE           end

group:
	MOVQ R14, DI
	MOVQ DX, BX
	MOVQ AX, R10
	MOVQ R13, CX
	ZEROOUT4

block:
	CORR4(0, Z1, Z2, Z3)
	CORR4(1, Z4, Z5, Z6)
	CORR4(2, Z16, Z17, Z18)
	CORR4(3, Z19, Z20, Z21)
	Q80V4(0)
	PREFETCHT0 (3072)(SI)
	PREFETCHT0 (3136)(SI)
	PREFETCHT0 (3200)(SI)
	PREFETCHT0 (3264)(SI)
	PREFETCHT0 (3328)(SI)
	PREFETCHT0 (3392)(SI)
	PREFETCHT0 (3456)(SI)
	PREFETCHT0 (3520)(SI)
	PREFETCHT0 (3584)(SI)
	Q80V4(1)
	Q80V4(2)
	Q80V4(3)
	Q80V4(4)
	Q80V4(5)
	Q80V4(6)
	Q80V4(7)
	VCVTPH2PS (SI), Z9
	DIGSUM4(0, Z1, Z2, Z3, Z0)
	DIGSUM4(1, Z4, Z5, Z6, Z22)
	DIGSUM4(2, Z16, Z17, Z18, Z23)
	DIGSUM4(3, Z19, Z20, Z21, Z24)
	ADDQ $544, SI
	ADDQ $384, DI
	ADDQ $16, BX
	ADDQ $64, R10
	DECQ CX
	JNE  block

	STOREOUT4
	ADDQ $64, R8
	DECQ R9
	JNE  group

end:
	VZEROUPPER
	RET
