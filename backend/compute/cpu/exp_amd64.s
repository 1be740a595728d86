//go:build amd64 && !purego

#include "textflag.h"

// Vectorized float32 exp (AVX2 + FMA), 8 values per iteration; the algorithm and its reference loop are in
// exp.go. Handwritten for this project. Constants come from expConsts (DX), byte offsets:
// 0 lo, 4 hi, 8 log2e, 12 c1, 16 c2, 20..40 p0..p5, 44 one, 48 +Inf.

// func expF32AVX(x []float32, c *[16]float32)
TEXT ·expF32AVX(SB), NOSPLIT, $0-32
	MOVQ         x_base+0(FP), SI
	MOVQ         x_len+8(FP), CX
	MOVQ         c+24(FP), DX
	SHRQ         $3, CX
	JE           done
	VBROADCASTSS (DX), Y8        // lo
	VBROADCASTSS 4(DX), Y9       // hi
	VBROADCASTSS 8(DX), Y10      // log2e
	VBROADCASTSS 12(DX), Y11     // c1
	VBROADCASTSS 16(DX), Y12     // c2
	VBROADCASTSS 44(DX), Y13     // 1
	VBROADCASTSS 48(DX), Y14     // +Inf
	MOVL         $127, AX
	MOVD         AX, X15
	VPBROADCASTD X15, Y15        // 127

loop:
	VMOVUPS      (SI), Y0           // v
	VMINPS       Y9, Y0, Y1
	VMAXPS       Y8, Y1, Y1         // clamped v
	VMULPS       Y10, Y1, Y2
	VROUNDPS     $0, Y2, Y2         // n, nearest even
	VFNMADD231PS Y11, Y2, Y1        // r = v - n*c1
	VFNMADD231PS Y12, Y2, Y1        // r -= n*c2
	VBROADCASTSS 20(DX), Y3         // p = p0
	VBROADCASTSS 24(DX), Y4
	VFMADD213PS  Y4, Y1, Y3         // p = p*r + p1
	VBROADCASTSS 28(DX), Y4
	VFMADD213PS  Y4, Y1, Y3
	VBROADCASTSS 32(DX), Y4
	VFMADD213PS  Y4, Y1, Y3
	VBROADCASTSS 36(DX), Y4
	VFMADD213PS  Y4, Y1, Y3
	VBROADCASTSS 40(DX), Y4
	VFMADD213PS  Y4, Y1, Y3
	VMULPS       Y1, Y1, Y4         // r²
	VFMADD213PS  Y1, Y4, Y3         // p*r² + r
	VADDPS       Y13, Y3, Y3        // + 1
	VCVTPS2DQ    Y2, Y5
	VPADDD       Y15, Y5, Y5
	VPSLLD       $23, Y5, Y5        // 2^n
	VMULPS       Y5, Y3, Y3
	VCMPPS       $1, Y8, Y0, Y6     // v < lo
	VANDNPS      Y3, Y6, Y3         // -> 0
	VCMPPS       $14, Y9, Y0, Y6    // v > hi
	VBLENDVPS    Y6, Y14, Y3, Y3    // -> +Inf
	VCMPPS       $3, Y0, Y0, Y6     // v is NaN
	VBLENDVPS    Y6, Y0, Y3, Y3     // -> v
	VMOVUPS      Y3, (SI)
	ADDQ         $32, SI
	DECQ         CX
	JNZ          loop
	VZEROUPPER

done:
	RET
