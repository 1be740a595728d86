//go:build amd64 && !purego

#include "textflag.h"

// K-quant block kernels (256-value super-blocks) for AVX2 + FMA + F16C: fused dequantize-and-dot over one
// weight row, and dequantize a row to float32. Values are computed exactly as GGML defines them in float32:
// Q4_K (d*sc)*q - dmin*mn, Q6_K (d*sc)*(q-32). Each super-block's scales are expanded to float32 once into
// the 64-byte local frame. Handwritten for this project.

// Q4K_SCALES expands the super-block at R8 (f16 d, f16 dmin, 12 bytes of 6-bit scales and mins) into
// 0(SP) = d*sc[0..7] and 32(SP) = -dmin*mn[0..7]. Scales 0-3 and mins 0-3 are the low 6 bits of bytes 0-3
// and 4-7; scales 4-7 are the low nibbles of bytes 8-11 with the top 2 bits of bytes 0-3 above them, mins
// 4-7 the high nibbles of bytes 8-11 with the top 2 bits of bytes 4-7. Clobbers AX, BX, DX, R12-R14, Y8-Y12.
#define Q4K_SCALES \
	MOVL         (R8), AX; \
	VMOVD        AX, X8; \
	VCVTPH2PS    X8, X8; \
	VMOVSHDUP    X8, X9; \
	VBROADCASTSS X8, Y8; \
	VBROADCASTSS X9, Y9; \
	MOVL         4(R8), AX; \
	MOVL         8(R8), BX; \
	MOVL         12(R8), DX; \
	MOVL         AX, R12; \
	SHRL         $6, R12; \
	ANDL         $0x03030303, R12; \
	SHLL         $4, R12; \
	MOVL         DX, R13; \
	ANDL         $0x0f0f0f0f, R13; \
	ORL          R13, R12; \
	ANDL         $0x3f3f3f3f, AX; \
	MOVL         BX, R14; \
	SHRL         $6, R14; \
	ANDL         $0x03030303, R14; \
	SHLL         $4, R14; \
	SHRL         $4, DX; \
	ANDL         $0x0f0f0f0f, DX; \
	ORL          DX, R14; \
	ANDL         $0x3f3f3f3f, BX; \
	SHLQ         $32, R12; \
	ORQ          R12, AX; \
	SHLQ         $32, R14; \
	ORQ          R14, BX; \
	MOVQ         AX, X10; \
	MOVQ         BX, X11; \
	VPMOVZXBD    X10, Y10; \
	VPMOVZXBD    X11, Y11; \
	VCVTDQ2PS    Y10, Y10; \
	VCVTDQ2PS    Y11, Y11; \
	VMULPS       Y8, Y10, Y10; \
	VMULPS       Y9, Y11, Y11; \
	VXORPS       Y12, Y12, Y12; \
	VSUBPS       Y11, Y12, Y11; \
	VMOVUPS      Y10, (SP); \
	VMOVUPS      Y11, 32(SP)

// Q4K_CHUNK dequantizes the 64 values of chunk c of the super-block at R8 into Y4-Y7 (sub-block 2c, low
// nibbles of bytes q..q+31) and Y8-Y11 (sub-block 2c+1, high nibbles). q = 16+32c, s = 8c. Y15 = 15s.
#define Q4K_CHUNK(q, s) \
	VPMOVZXBD    q(R8), Y4; \
	VPMOVZXBD    q+8(R8), Y5; \
	VPMOVZXBD    q+16(R8), Y6; \
	VPMOVZXBD    q+24(R8), Y7; \
	VPSRLD       $4, Y4, Y8; \
	VPSRLD       $4, Y5, Y9; \
	VPSRLD       $4, Y6, Y10; \
	VPSRLD       $4, Y7, Y11; \
	VPAND        Y15, Y4, Y4; \
	VPAND        Y15, Y5, Y5; \
	VPAND        Y15, Y6, Y6; \
	VPAND        Y15, Y7, Y7; \
	VCVTDQ2PS    Y4, Y4; \
	VCVTDQ2PS    Y5, Y5; \
	VCVTDQ2PS    Y6, Y6; \
	VCVTDQ2PS    Y7, Y7; \
	VCVTDQ2PS    Y8, Y8; \
	VCVTDQ2PS    Y9, Y9; \
	VCVTDQ2PS    Y10, Y10; \
	VCVTDQ2PS    Y11, Y11; \
	VBROADCASTSS s(SP), Y12; \
	VBROADCASTSS s+32(SP), Y13; \
	VFMADD213PS  Y13, Y12, Y4; \
	VFMADD213PS  Y13, Y12, Y5; \
	VFMADD213PS  Y13, Y12, Y6; \
	VFMADD213PS  Y13, Y12, Y7; \
	VBROADCASTSS s+4(SP), Y12; \
	VBROADCASTSS s+36(SP), Y13; \
	VFMADD213PS  Y13, Y12, Y8; \
	VFMADD213PS  Y13, Y12, Y9; \
	VFMADD213PS  Y13, Y12, Y10; \
	VFMADD213PS  Y13, Y12, Y11

// DOT8 accumulates Y4-Y11 times the 64 floats at x(DI) into Y0-Y3.
#define DOT8(x) \
	VFMADD231PS x(DI), Y4, Y0; \
	VFMADD231PS x+32(DI), Y5, Y1; \
	VFMADD231PS x+64(DI), Y6, Y2; \
	VFMADD231PS x+96(DI), Y7, Y3; \
	VFMADD231PS x+128(DI), Y8, Y0; \
	VFMADD231PS x+160(DI), Y9, Y1; \
	VFMADD231PS x+192(DI), Y10, Y2; \
	VFMADD231PS x+224(DI), Y11, Y3

// STORE8 stores Y4-Y11 to the 64 floats at x(DI).
#define STORE8(x) \
	VMOVUPS Y4, x(DI); \
	VMOVUPS Y5, x+32(DI); \
	VMOVUPS Y6, x+64(DI); \
	VMOVUPS Y7, x+96(DI); \
	VMOVUPS Y8, x+128(DI); \
	VMOVUPS Y9, x+160(DI); \
	VMOVUPS Y10, x+192(DI); \
	VMOVUPS Y11, x+224(DI)

#define REDUCE4 \
	VADDPS       Y1, Y0, Y0; \
	VADDPS       Y3, Y2, Y2; \
	VADDPS       Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VHADDPS      X0, X0, X0; \
	VHADDPS      X0, X0, X0

#define CONST15 \
	MOVL         $15, AX; \
	VMOVD        AX, X15; \
	VPBROADCASTD X15, Y15

// func rowDotQ4_KAVX(w []byte, x []float32) float32
TEXT ·rowDotQ4_KAVX(SB), NOSPLIT, $64-52
	MOVQ   w_base+0(FP), R8
	MOVQ   x_base+24(FP), DI
	MOVQ   x_len+32(FP), CX
	SHRQ   $8, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	TESTQ  CX, CX
	JE     done

loop:
	Q4K_SCALES
	CONST15
	Q4K_CHUNK(16, 0)
	DOT8(0)
	Q4K_CHUNK(48, 8)
	DOT8(256)
	Q4K_CHUNK(80, 16)
	DOT8(512)
	Q4K_CHUNK(112, 24)
	DOT8(768)
	ADDQ $144, R8
	ADDQ $1024, DI
	DECQ CX
	JNZ  loop

done:
	REDUCE4
	VMOVSS     X0, ret+48(FP)
	VZEROUPPER
	RET

// func dequantQ4_KAVX(dst []float32, w []byte)
TEXT ·dequantQ4_KAVX(SB), NOSPLIT, $64-48
	MOVQ  dst_base+0(FP), DI
	MOVQ  dst_len+8(FP), CX
	MOVQ  w_base+24(FP), R8
	SHRQ  $8, CX
	TESTQ CX, CX
	JE    done

loop:
	Q4K_SCALES
	CONST15
	Q4K_CHUNK(16, 0)
	STORE8(0)
	Q4K_CHUNK(48, 8)
	STORE8(256)
	Q4K_CHUNK(80, 16)
	STORE8(512)
	Q4K_CHUNK(112, 24)
	STORE8(768)
	ADDQ $144, R8
	ADDQ $1024, DI
	DECQ CX
	JNZ  loop

done:
	VZEROUPPER
	RET

// Q6K_SCALES expands the 16 int8 scales of the super-block at R8 times its f16 d into 0(SP)..63(SP).
#define Q6K_SCALES \
	MOVWLZX      208(R8), AX; \
	VMOVD        AX, X8; \
	VCVTPH2PS    X8, X8; \
	VBROADCASTSS X8, Y8; \
	VPMOVSXBD    192(R8), Y9; \
	VPMOVSXBD    200(R8), Y10; \
	VCVTDQ2PS    Y9, Y9; \
	VCVTDQ2PS    Y10, Y10; \
	VMULPS       Y8, Y9, Y9; \
	VMULPS       Y8, Y10, Y10; \
	VMOVUPS      Y9, (SP); \
	VMOVUPS      Y10, 32(SP)

// Q6K_GROUP dequantizes values l..l+7 of each of the four 32-value groups of one half super-block into
// Y7 (group 0), Y8, Y9, Y10 (group 3). SI = the half's 64 low-bit bytes, BX = its 32 high-bit bytes,
// s = byte offset of its first group's scale at 0(SP). Group g takes its low 4 bits from the low (g < 2) or
// high nibble of SI[l + 32(g&1)] and its high 2 bits from bits 2g, 2g+1 of BX[l]. Y13 = 32s, Y14 = 0x30s,
// Y15 = 15s.
#define Q6K_GROUP(l, s) \
	VPMOVZXBD    l(SI), Y4; \
	VPMOVZXBD    l+32(SI), Y5; \
	VPMOVZXBD    l(BX), Y6; \
	VPAND        Y15, Y4, Y7; \
	VPAND        Y15, Y5, Y8; \
	VPSRLD       $4, Y4, Y9; \
	VPSRLD       $4, Y5, Y10; \
	VPSLLD       $4, Y6, Y11; \
	VPAND        Y14, Y11, Y11; \
	VPOR         Y11, Y7, Y7; \
	VPSLLD       $2, Y6, Y11; \
	VPAND        Y14, Y11, Y11; \
	VPOR         Y11, Y8, Y8; \
	VPAND        Y14, Y6, Y11; \
	VPOR         Y11, Y9, Y9; \
	VPSRLD       $2, Y6, Y11; \
	VPAND        Y14, Y11, Y11; \
	VPOR         Y11, Y10, Y10; \
	VPSUBD       Y13, Y7, Y7; \
	VPSUBD       Y13, Y8, Y8; \
	VPSUBD       Y13, Y9, Y9; \
	VPSUBD       Y13, Y10, Y10; \
	VCVTDQ2PS    Y7, Y7; \
	VCVTDQ2PS    Y8, Y8; \
	VCVTDQ2PS    Y9, Y9; \
	VCVTDQ2PS    Y10, Y10; \
	VBROADCASTSS s(SP), Y11; \
	VMULPS       Y11, Y7, Y7; \
	VBROADCASTSS s+8(SP), Y11; \
	VMULPS       Y11, Y8, Y8; \
	VBROADCASTSS s+16(SP), Y11; \
	VMULPS       Y11, Y9, Y9; \
	VBROADCASTSS s+24(SP), Y11; \
	VMULPS       Y11, Y10, Y10

// Q6K_DOT accumulates Y7-Y10 times x at offsets x, x+128, x+256, x+384 of DI into Y0-Y3.
#define Q6K_DOT(x) \
	VFMADD231PS x(DI), Y7, Y0; \
	VFMADD231PS x+128(DI), Y8, Y1; \
	VFMADD231PS x+256(DI), Y9, Y2; \
	VFMADD231PS x+384(DI), Y10, Y3

#define Q6K_STORE(x) \
	VMOVUPS Y7, x(DI); \
	VMOVUPS Y8, x+128(DI); \
	VMOVUPS Y9, x+256(DI); \
	VMOVUPS Y10, x+384(DI)

#define Q6K_CONSTS \
	CONST15; \
	MOVL         $0x30, AX; \
	VMOVD        AX, X14; \
	VPBROADCASTD X14, Y14; \
	MOVL         $32, AX; \
	VMOVD        AX, X13; \
	VPBROADCASTD X13, Y13

// func rowDotQ6_KAVX(w []byte, x []float32) float32
TEXT ·rowDotQ6_KAVX(SB), NOSPLIT, $64-52
	MOVQ   w_base+0(FP), R8
	MOVQ   x_base+24(FP), DI
	MOVQ   x_len+32(FP), CX
	SHRQ   $8, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	Q6K_CONSTS
	TESTQ  CX, CX
	JE     done

loop:
	Q6K_SCALES
	MOVQ R8, SI
	LEAQ 128(R8), BX
	Q6K_GROUP(0, 0)
	Q6K_DOT(0)
	Q6K_GROUP(8, 0)
	Q6K_DOT(32)
	Q6K_GROUP(16, 4)
	Q6K_DOT(64)
	Q6K_GROUP(24, 4)
	Q6K_DOT(96)
	ADDQ $64, SI
	ADDQ $32, BX
	ADDQ $512, DI
	Q6K_GROUP(0, 32)
	Q6K_DOT(0)
	Q6K_GROUP(8, 32)
	Q6K_DOT(32)
	Q6K_GROUP(16, 36)
	Q6K_DOT(64)
	Q6K_GROUP(24, 36)
	Q6K_DOT(96)
	ADDQ $210, R8
	ADDQ $512, DI
	DECQ CX
	JNZ  loop

done:
	REDUCE4
	VMOVSS     X0, ret+48(FP)
	VZEROUPPER
	RET

// func dequantQ6_KAVX(dst []float32, w []byte)
TEXT ·dequantQ6_KAVX(SB), NOSPLIT, $64-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ w_base+24(FP), R8
	SHRQ $8, CX
	Q6K_CONSTS
	TESTQ CX, CX
	JE    done

loop:
	Q6K_SCALES
	MOVQ R8, SI
	LEAQ 128(R8), BX
	Q6K_GROUP(0, 0)
	Q6K_STORE(0)
	Q6K_GROUP(8, 0)
	Q6K_STORE(32)
	Q6K_GROUP(16, 4)
	Q6K_STORE(64)
	Q6K_GROUP(24, 4)
	Q6K_STORE(96)
	ADDQ $64, SI
	ADDQ $32, BX
	ADDQ $512, DI
	Q6K_GROUP(0, 32)
	Q6K_STORE(0)
	Q6K_GROUP(8, 32)
	Q6K_STORE(32)
	Q6K_GROUP(16, 36)
	Q6K_STORE(64)
	Q6K_GROUP(24, 36)
	Q6K_STORE(96)
	ADDQ $210, R8
	ADDQ $512, DI
	DECQ CX
	JNZ  loop

done:
	VZEROUPPER
	RET
