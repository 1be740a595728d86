//go:build amd64 && !purego

#include "textflag.h"

// Row operations (rowops.go), AVX2 + F16C, 8 values per iteration; lengths are multiples of 8 (the Go
// wrappers do the tails). Handwritten for this project.

// func cvtF32ToF16AVX(dst []uint16, src []float32)
TEXT ·cvtF32ToF16AVX(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	SHRQ $3, CX
	JE   done

loop:
	VMOVUPS    (SI), Y0
	VCVTPS2PH  $0, Y0, X1 // round to nearest even
	VMOVDQU    X1, (DI)
	ADDQ       $32, SI
	ADDQ       $16, DI
	DECQ       CX
	JNE        loop
	VZEROUPPER

done:
	RET

// func sumSquaresF64AVX(x []float32) float64
TEXT ·sumSquaresF64AVX(SB), NOSPLIT, $0-32
	MOVQ   x_base+0(FP), SI
	MOVQ   x_len+8(FP), CX
	SHRQ   $3, CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	TESTQ  CX, CX
	JE     sum

loop:
	VCVTPS2PD   (SI), Y2
	VCVTPS2PD   16(SI), Y3
	VFMADD231PD Y2, Y2, Y0
	VFMADD231PD Y3, Y3, Y1
	ADDQ        $32, SI
	DECQ        CX
	JNE         loop

sum:
	VADDPD       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD       X1, X0, X0
	VHADDPD      X0, X0, X0
	VMOVSD       X0, ret+24(FP)
	VZEROUPPER
	RET

// func mulScaleF32AVX(o, g, x []float32, r float32)
TEXT ·mulScaleF32AVX(SB), NOSPLIT, $0-76
	MOVQ         o_base+0(FP), DI
	MOVQ         g_base+24(FP), DX
	MOVQ         x_base+48(FP), SI
	MOVQ         x_len+56(FP), CX
	VBROADCASTSS r+72(FP), Y15
	SHRQ         $3, CX
	JE           done

loop:
	VMULPS  (SI), Y15, Y0
	VMULPS  (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JNE     loop
	VZEROUPPER

done:
	RET

// func ropeHalfAVX(v, cos, sin []float32)
// v[j] = a*cos[j] - b*sin[j], v[j+half] = b*cos[j] + a*sin[j] with a = v[j], b = v[j+half], half =
// len(cos), a multiple of 8; products rounded before the sum, as in Go.
TEXT ·ropeHalfAVX(SB), NOSPLIT, $0-72
	MOVQ v_base+0(FP), DI
	MOVQ cos_base+24(FP), SI
	MOVQ cos_len+32(FP), CX
	MOVQ sin_base+48(FP), DX
	LEAQ (DI)(CX*4), BX // v[half:]
	SHRQ $3, CX
	JE   done

loop:
	VMOVUPS (DI), Y0  // a
	VMOVUPS (BX), Y1  // b
	VMOVUPS (SI), Y2  // cos
	VMOVUPS (DX), Y3  // sin
	VMULPS  Y2, Y0, Y4 // a*cos
	VMULPS  Y3, Y1, Y5 // b*sin
	VSUBPS  Y5, Y4, Y4
	VMULPS  Y2, Y1, Y6 // b*cos
	VMULPS  Y3, Y0, Y7 // a*sin
	VADDPS  Y7, Y6, Y6
	VMOVUPS Y4, (DI)
	VMOVUPS Y6, (BX)
	ADDQ    $32, DI
	ADDQ    $32, BX
	ADDQ    $32, SI
	ADDQ    $32, DX
	DECQ    CX
	JNE     loop
	VZEROUPPER

done:
	RET
