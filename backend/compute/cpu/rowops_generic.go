//go:build !amd64 || purego

package cpu

func cvtF32ToF16(dst []uint16, src []float32) { cvtF32ToF16Go(dst, src) }

func sumSquaresF64(x []float32) float64 { return sumSquaresF64Go(x) }

func mulScaleF32(o, g, x []float32, r float32) { mulScaleF32Go(o, g, x, r) }

func ropeHalf(v, cos, sin []float32) { ropeHalfGo(v, cos, sin) }
