//go:build !amd64 || purego

package cpu

import "github.com/omnikv-triton/omnikv-triton/backend/weights"

// rowDotFunc returns the row dot product for weights of type t (nil if t is not supported).
func rowDotFunc(t weights.DType) func(w []byte, x []float32) float32 {
	switch t {
	case weights.F32:
		return rowDotF32Go
	case weights.F16:
		return rowDotF16Go
	case weights.BF16:
		return rowDotBF16Go
	case weights.Q4_0:
		return rowDotQ4_0Go
	case weights.Q4_1:
		return rowDotQ4_1Go
	case weights.Q8_0:
		return rowDotQ8_0Go
	case weights.Q4_K:
		return rowDotQ4_K
	case weights.Q6_K:
		return rowDotQ6_K
	}
	return nil
}

// dequantFunc returns the row dequantization for weights of type t (nil if t is not supported).
func dequantFunc(t weights.DType) func(dst []float32, w []byte) {
	switch t {
	case weights.F32:
		return dequantF32Go
	case weights.F16:
		return dequantF16Go
	case weights.BF16:
		return dequantBF16Go
	case weights.Q4_0:
		return dequantQ4_0Go
	case weights.Q4_1:
		return dequantQ4_1Go
	case weights.Q8_0:
		return dequantQ8_0Go
	case weights.Q4_K:
		return dequantQ4_KGo
	case weights.Q6_K:
		return dequantQ6_KGo
	}
	return nil
}

// tile4x3 writes (or adds, when add) out[t*ldo+r] = sum_{i<k} x[t*ldx+i]*w[r*ldw+i] for t < 4, r < 3.
func tile4x3(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, k int, add bool) {
	tile4x3Go(out, ldo, x, ldx, w, ldw, k, add)
}

func tile1x3(out []float32, x []float32, w []float32, ldw int, k int, add bool) {
	tile1x3Go(out, x, w, ldw, k, add)
}
