package cpu

import "github.com/omnikv-triton/omnikv-triton/backend/weights"

// Row operations of a decode step that run on the calling goroutine between the parallel loops (RMSNorm,
// RoPE, the KV write): short, but on the critical path while the helpers wait. The assembly versions
// (rowops_amd64.s) do 8 values at a time and give the same bits as these twins, except sumSquaresF64,
// whose float64 sum runs in another order.

// cvtF32ToF16Go writes dst[i] = the IEEE binary16 nearest src[i] (ties to even); len(dst) >= len(src).
func cvtF32ToF16Go(dst []uint16, src []float32) {
	for i, v := range src {
		dst[i] = weights.F32ToF16(v)
	}
}

// sumSquaresF64Go returns sum x[i]^2 accumulated in float64.
func sumSquaresF64Go(x []float32) float64 {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	return ss
}

// mulScaleF32Go writes o[i] = g[i] * (x[i] * r); len(g), len(o) >= len(x).
func mulScaleF32Go(o, g, x []float32, r float32) {
	for i, v := range x {
		o[i] = g[i] * float32(v*r)
	}
}

// ropeHalfGo rotates the pairs (v[j], v[j+half]) of one head by the angles whose cosines and sines are
// cos[j], sin[j] (half = len(cos) = len(sin), len(v) = 2*half).
func ropeHalfGo(v, cos, sin []float32) {
	half := len(cos)
	for j := 0; j < half; j++ {
		a, b := v[j], v[j+half]
		// The conversions keep each product rounded on its own (no fused multiply-add under GOAMD64=v3), as
		// the assembly does.
		v[j] = float32(a*cos[j]) - float32(b*sin[j])
		v[j+half] = float32(b*cos[j]) + float32(a*sin[j])
	}
}
