//go:build amd64 && !purego

#include "textflag.h"

// Vectorized float32 exp (AVX2 + FMA), 8 values per iteration; the algorithm and its reference loop are in
// exp.go. Handwritten for this project. Constants come from expConsts (DX), byte offsets:
// 0 lo, 4 hi, 8 log2e, 12 c1, 16 c2, 20..40 p0..p5, 44 one, 48 +Inf. attnExpSumAVX and attnScaleMaxAVX
// are the two softmax passes of the blocked attention (attention.go), vectorized over query-head rows.

// EXP_CONSTS loads the constants (DX = &expConsts) into Y8-Y15.
#define EXP_CONSTS \
	VBROADCASTSS (DX), Y8 \
	VBROADCASTSS 4(DX), Y9 \
	VBROADCASTSS 8(DX), Y10 \
	VBROADCASTSS 12(DX), Y11 \
	VBROADCASTSS 16(DX), Y12 \
	VBROADCASTSS 44(DX), Y13 \
	VBROADCASTSS 48(DX), Y14 \
	MOVL         $127, AX \
	MOVD         AX, X15 \
	VPBROADCASTD X15, Y15

// EXP8 sets Y3 = e^Y0 (8 lanes); clobbers Y1, Y2, Y4, Y5, Y6; needs EXP_CONSTS and DX.
#define EXP8 \
	VMINPS       Y9, Y0, Y1 \
	VMAXPS       Y8, Y1, Y1 \
	VMULPS       Y10, Y1, Y2 \
	VROUNDPS     $0, Y2, Y2 \
	VFNMADD231PS Y11, Y2, Y1 \
	VFNMADD231PS Y12, Y2, Y1 \
	VBROADCASTSS 20(DX), Y3 \
	VBROADCASTSS 24(DX), Y4 \
	VFMADD213PS  Y4, Y1, Y3 \
	VBROADCASTSS 28(DX), Y4 \
	VFMADD213PS  Y4, Y1, Y3 \
	VBROADCASTSS 32(DX), Y4 \
	VFMADD213PS  Y4, Y1, Y3 \
	VBROADCASTSS 36(DX), Y4 \
	VFMADD213PS  Y4, Y1, Y3 \
	VBROADCASTSS 40(DX), Y4 \
	VFMADD213PS  Y4, Y1, Y3 \
	VMULPS       Y1, Y1, Y4 \
	VFMADD213PS  Y1, Y4, Y3 \
	VADDPS       Y13, Y3, Y3 \
	VCVTPS2DQ    Y2, Y5 \
	VPADDD       Y15, Y5, Y5 \
	VPSLLD       $23, Y5, Y5 \
	VMULPS       Y5, Y3, Y3 \
	VCMPPS       $1, Y8, Y0, Y6 \
	VANDNPS      Y3, Y6, Y3 \
	VCMPPS       $14, Y9, Y0, Y6 \
	VBLENDVPS    Y6, Y14, Y3, Y3 \
	VCMPPS       $3, Y0, Y0, Y6 \
	VBLENDVPS    Y6, Y0, Y3, Y3 // -> v

// func expF32AVX(x []float32, c *[16]float32)
TEXT ·expF32AVX(SB), NOSPLIT, $0-32
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ c+24(FP), DX
	SHRQ $3, CX
	JE   done
	EXP_CONSTS

loop:
	VMOVUPS (SI), Y0
	EXP8
	VMOVUPS Y3, (SI)
	ADDQ    $32, SI
	DECQ    CX
	JNZ     loop
	VZEROUPPER

done:
	RET

// func attnExpSumAVX(row, mx []float32, l []float64, c *[16]float32)
// For i < len(row) rounded down to a multiple of 8: row[i] = e^(row[i]-mx[i]); l[i] += float64(row[i]).
TEXT ·attnExpSumAVX(SB), NOSPLIT, $0-80
	MOVQ row_base+0(FP), SI
	MOVQ row_len+8(FP), CX
	MOVQ mx_base+24(FP), DI
	MOVQ l_base+48(FP), BX
	MOVQ c+72(FP), DX
	SHRQ $3, CX
	JE   esdone
	EXP_CONSTS

esloop:
	VMOVUPS      (SI), Y0
	VSUBPS       (DI), Y0, Y0
	EXP8
	VMOVUPS      Y3, (SI)
	VCVTPS2PD    X3, Y4
	VADDPD       (BX), Y4, Y4
	VMOVUPD      Y4, (BX)
	VEXTRACTF128 $1, Y3, X5
	VCVTPS2PD    X5, Y5
	VADDPD       32(BX), Y5, Y5
	VMOVUPD      Y5, 32(BX)
	ADDQ         $32, SI
	ADDQ         $32, DI
	ADDQ         $64, BX
	DECQ         CX
	JNZ          esloop
	VZEROUPPER

esdone:
	RET

// func attnScaleMaxAVX(row, mx []float32, scale float32)
// For i < len(row) rounded down to a multiple of 8: row[i] *= scale; mx[i] = max(mx[i], row[i]).
TEXT ·attnScaleMaxAVX(SB), NOSPLIT, $0-52
	MOVQ         row_base+0(FP), SI
	MOVQ         row_len+8(FP), CX
	MOVQ         mx_base+24(FP), DI
	VBROADCASTSS scale+48(FP), Y8
	SHRQ         $3, CX
	JE           smdone

smloop:
	VMULPS  (SI), Y8, Y0
	VMOVUPS Y0, (SI)
	VMAXPS  (DI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     smloop
	VZEROUPPER

smdone:
	RET

// func rowScaleMaxAVX(row []float32, scale float32) float32
// For i < len(row) rounded down to a multiple of 8: row[i] *= scale; returns the largest of them (-Inf for
// none).
TEXT ·rowScaleMaxAVX(SB), NOSPLIT, $0-36
	MOVQ         row_base+0(FP), SI
	MOVQ         row_len+8(FP), CX
	VBROADCASTSS scale+24(FP), Y8
	MOVL         $0xff800000, AX
	VMOVD        AX, X9
	VBROADCASTSS X9, Y9
	SHRQ         $3, CX
	JE           rmdone

rmloop:
	VMULPS  (SI), Y8, Y0
	VMOVUPS Y0, (SI)
	VMAXPS  Y0, Y9, Y9
	ADDQ    $32, SI
	DECQ    CX
	JNZ     rmloop

rmdone:
	VEXTRACTF128 $1, Y9, X0
	VMAXPS       X0, X9, X9
	VPERMILPS    $0x4e, X9, X0
	VMAXPS       X0, X9, X9
	VPERMILPS    $0xb1, X9, X0
	VMAXPS       X0, X9, X9
	VMOVSS       X9, ret+32(FP)
	VZEROUPPER
	RET

// func rowExpSumAVX(row []float32, sub *[8]float32, c *[16]float32) float64
// For i < len(row) rounded down to a multiple of 8: row[i] = e^(row[i]-sub[0]) (sub holds the value 8
// times); returns their sum, accumulated in float64.
TEXT ·rowExpSumAVX(SB), NOSPLIT, $0-48
	MOVQ   row_base+0(FP), SI
	MOVQ   row_len+8(FP), CX
	MOVQ   sub+24(FP), BX
	MOVQ   c+32(FP), DX
	VXORPD Y7, Y7, Y7
	SHRQ   $3, CX
	JE     redone
	EXP_CONSTS

reloop:
	VMOVUPS      (SI), Y0
	VSUBPS       (BX), Y0, Y0
	EXP8
	VMOVUPS      Y3, (SI)
	VCVTPS2PD    X3, Y4
	VADDPD       Y4, Y7, Y7
	VEXTRACTF128 $1, Y3, X5
	VCVTPS2PD    X5, Y5
	VADDPD       Y5, Y7, Y7
	ADDQ         $32, SI
	DECQ         CX
	JNZ          reloop

redone:
	VEXTRACTF128 $1, Y7, X0
	VADDPD       X0, X7, X7
	VPERMILPD    $1, X7, X0
	VADDSD       X0, X7, X7
	VMOVSD       X7, ret+40(FP)
	VZEROUPPER
	RET
