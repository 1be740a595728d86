//go:build amd64 && !purego

package cpu

import "github.com/omnikv-triton/omnikv-triton/backend/weights"

// Assembly block kernels (matmul_amd64.s). Row dots read len(x)/blockSize blocks from w; dequant kernels
// write len(dst) values. Callers guarantee that w holds at least that many blocks (matmul checks the whole
// weight's size once per call).

//go:noescape
func rowDotQ4_0AVX(w []byte, x []float32) float32

//go:noescape
func rowDotQ4_1AVX(w []byte, x []float32) float32

//go:noescape
func rowDotQ8_0AVX(w []byte, x []float32) float32

//go:noescape
func rowDotF32AVX(w []byte, x []float32) float32

//go:noescape
func rowDotF16AVX(w []byte, x []float32) float32

//go:noescape
func rowDotBF16AVX(w []byte, x []float32) float32

//go:noescape
func dequantQ4_0AVX(dst []float32, w []byte)

//go:noescape
func dequantQ4_1AVX(dst []float32, w []byte)

//go:noescape
func dequantQ8_0AVX(dst []float32, w []byte)

//go:noescape
func dequantF16AVX(dst []float32, w []byte)

//go:noescape
func dequantBF16AVX(dst []float32, w []byte)

//go:noescape
func rowDotQ4_KAVX(w []byte, x []float32) float32

//go:noescape
func rowDotQ6_KAVX(w []byte, x []float32) float32

//go:noescape
func dequantQ4_KAVX(dst []float32, w []byte)

//go:noescape
func dequantQ6_KAVX(dst []float32, w []byte)

//go:noescape
func tile1x3AVX(out *float32, x *float32, w *float32, ldw int, k int, add bool)

//go:noescape
func tile4x3AVX(out *float32, ldo int, x *float32, ldx int, w *float32, ldw int, k int, add bool)

// rowDotFunc returns the row dot product for weights of type t (nil if t is not supported).
func rowDotFunc(t weights.DType) func(w []byte, x []float32) float32 {
	if !hasAVX2 {
		return rowDotGo(t)
	}
	switch t {
	case weights.Q4_K:
		return rowDotQ4_KAVX
	case weights.Q6_K:
		return rowDotQ6_KAVX
	case weights.F32:
		return rowDotF32AVX
	case weights.F16:
		return rowDotF16AVX
	case weights.BF16:
		return rowDotBF16AVX
	case weights.Q4_0:
		return rowDotQ4_0AVX
	case weights.Q4_1:
		return rowDotQ4_1AVX
	case weights.Q8_0:
		return rowDotQ8_0AVX
	}
	return nil
}

// rowDotGo returns the pure-Go row dot for the types that also have an assembly one.
func rowDotGo(t weights.DType) func(w []byte, x []float32) float32 {
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
	}
	if !hasAVX2 {
		return dequantGo(t)
	}
	switch t {
	case weights.F16:
		return dequantF16AVX
	case weights.BF16:
		return dequantBF16AVX
	case weights.Q4_0:
		return dequantQ4_0AVX
	case weights.Q4_1:
		return dequantQ4_1AVX
	case weights.Q8_0:
		return dequantQ8_0AVX
	case weights.Q4_K:
		return dequantQ4_KAVX
	case weights.Q6_K:
		return dequantQ6_KAVX
	}
	return nil
}

// dequantGo returns the pure-Go dequantization for the types that also have an assembly one.
func dequantGo(t weights.DType) func(dst []float32, w []byte) {
	switch t {
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
	if !hasAVX2 {
		tile4x3Go(out, ldo, x, ldx, w, ldw, k, add)
		return
	}
	// Bounds checks in Go before the assembly touches memory.
	_ = out[3*ldo+2]
	_ = x[3*ldx+k-1]
	_ = w[2*ldw+k-1]
	k8 := k &^ 7
	tile4x3AVX(&out[0], ldo, &x[0], ldx, &w[0], ldw, k8, add)
	if k8 == k {
		return
	}
	for t := 0; t < 4; t++ {
		xt := x[t*ldx+k8 : t*ldx+k]
		for r := 0; r < 3; r++ {
			out[t*ldo+r] += dotF32Go(xt, w[r*ldw+k8:r*ldw+k])
		}
	}
}

// tile1x3 is tile4x3 for one token: out[r] (+)= x · w row r for r < 3, each by tile4x3's arithmetic.
func tile1x3(out []float32, x []float32, w []float32, ldw int, k int, add bool) {
	if !hasAVX2 {
		tile1x3Go(out, x, w, ldw, k, add)
		return
	}
	_ = out[2]
	_ = x[k-1]
	_ = w[2*ldw+k-1]
	k8 := k &^ 7
	tile1x3AVX(&out[0], &x[0], &w[0], ldw, k8, add)
	if k8 == k {
		return
	}
	for r := 0; r < 3; r++ {
		out[r] += dotF32Go(x[k8:k], w[r*ldw+k8:r*ldw+k])
	}
}
