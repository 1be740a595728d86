//go:build !amd64 || purego

package cpu

import "github.com/omnikv-triton/omnikv-triton/backend/weights"

// packKernels: the portable build does not pack weights (its kernels gain nothing from the layout); tests
// still run the packed path through the Go twins.
func packKernels() bool { return false }

func rowsPacked(t weights.DType, out []float32, w []byte, x *xQuant) { rowsPackedGo(t, out, w, x) }

func encodeX(q []byte, sc []float32, x []float32) { encodeXGo(q, sc, x) }

func dequantPacked(t weights.DType, dst []float32, group []byte) { dequantPackedGo(t, dst, group) }

func gemm8x16(out []float32, ldo int, x []float32, ldx int, dq []float32, cols int) {
	gemm8x16Go(out, ldo, x, ldx, dq, cols)
}

func blockSums(xs, x []float32) { blockSumsGo(xs, x) }
