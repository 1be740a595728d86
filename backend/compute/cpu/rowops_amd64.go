//go:build amd64 && !purego

package cpu

import "fmt"

// The row operations' assembly (rowops_amd64.s) handles the first len&^7 values; the wrappers check the
// lengths and do the tail in Go.

//go:noescape
func cvtF32ToF16AVX(dst []uint16, src []float32)

//go:noescape
func sumSquaresF64AVX(x []float32) float64

//go:noescape
func mulScaleF32AVX(o, g, x []float32, r float32)

//go:noescape
func ropeHalfAVX(v, cos, sin []float32)

// cvtF32ToF16 writes dst[i] = the IEEE binary16 nearest src[i] (see cvtF32ToF16Go).
func cvtF32ToF16(dst []uint16, src []float32) {
	if len(dst) < len(src) {
		panic(fmt.Sprintf("cvtF32ToF16: %d values into %d", len(src), len(dst)))
	}
	dst = dst[:len(src)]
	n := len(src) &^ 7
	if hasAVX2 && n > 0 {
		cvtF32ToF16AVX(dst[:n], src[:n])
	} else {
		n = 0
	}
	cvtF32ToF16Go(dst[n:], src[n:])
}

// sumSquaresF64 returns sum x[i]^2 accumulated in float64 (see sumSquaresF64Go).
func sumSquaresF64(x []float32) float64 {
	n := len(x) &^ 7
	if !hasAVX2 || n == 0 {
		return sumSquaresF64Go(x)
	}
	return sumSquaresF64AVX(x[:n]) + sumSquaresF64Go(x[n:])
}

// mulScaleF32 writes o[i] = g[i] * (x[i] * r) (see mulScaleF32Go).
func mulScaleF32(o, g, x []float32, r float32) {
	if len(o) < len(x) || len(g) < len(x) {
		panic(fmt.Sprintf("mulScaleF32: o %d, g %d values for x %d", len(o), len(g), len(x)))
	}
	o, g = o[:len(x)], g[:len(x)]
	n := len(x) &^ 7
	if hasAVX2 && n > 0 {
		mulScaleF32AVX(o[:n], g[:n], x[:n], r)
	} else {
		n = 0
	}
	mulScaleF32Go(o[n:], g[n:], x[n:], r)
}

// ropeHalf rotates the pairs (v[j], v[j+half]) of one head (see ropeHalfGo).
func ropeHalf(v, cos, sin []float32) {
	half := len(cos)
	if len(v) < 2*half || len(sin) < half {
		panic(fmt.Sprintf("ropeHalf: v %d, sin %d values for %d cosines", len(v), len(sin), half))
	}
	v, sin = v[:2*half], sin[:half]
	if !hasAVX2 || half%8 != 0 {
		ropeHalfGo(v, cos, sin)
		return
	}
	ropeHalfAVX(v, cos, sin)
}
