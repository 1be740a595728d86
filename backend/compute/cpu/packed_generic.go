//go:build !amd64 || purego

package cpu

import "github.com/omnikv-triton/omnikv-triton/backend/weights"

// packKernels: the portable build does not pack weights (its kernels gain nothing from the layout); tests
// still run the packed path through the Go twins.
func packKernels() bool { return false }

func rowsPacked(t weights.DType, out []float32, w []byte, x *xQuant) { rowsPackedGo(t, out, w, x) }

func encodeX(q []byte, sc []float32, x []float32, stride int) { encodeXGo(q, sc, x, stride) }

func blockSums(xs, x []float32, stride int) { blockSumsGo(xs, x, stride) }

func rowsPacked4(t weights.DType, out []float32, ldo, groups int, w []byte, x *xTile) {
	rowsPacked4Go(t, out, ldo, groups, w, x)
}
