//go:build amd64 && !purego

package cpu

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// The packed-layout kernels (packed_amd64.s); the Go wrappers in packed.go check sizes before calling.

// rowsPackedQ4_1VNNI: out (groups*16), w (groups, blocks, 320) packed tiles, xq (blocks, 96) digits,
// sc and sum (blocks).
//
//go:noescape
func rowsPackedQ4_1VNNI(out []float32, w []byte, xq []byte, sc, sum []float32)

// rowsPackedQ8_0VNNI: out (groups*16), w (groups, blocks, 544) packed tiles, xq (blocks, 96) digits,
// sc (blocks), corr (blocks, 4).
//
//go:noescape
func rowsPackedQ8_0VNNI(out []float32, w []byte, xq []byte, sc []float32, corr []int32)

// encodeXAVX512: q (blocks, 96) digits, sc (blocks) scales, x (blocks*32).
//
//go:noescape
func encodeXAVX512(q []byte, sc []float32, x []float32)

//go:noescape
func dequantPackedQ4_1AVX512(dst []float32, group []byte)

//go:noescape
func dequantPackedQ8_0AVX512(dst []float32, group []byte)

//go:noescape
func blockSumsAVX(xs, x []float32)

//go:noescape
func gemm8x16AVX512(out *float32, ldo int, x *float32, ldx int, dq *float32, cols int)

// packKernels reports whether Bind packs weights: only when the AVX-512 VNNI kernels run.
func packKernels() bool { return hasAVX2 && hasAVX512 && hasVNNI }

// hasVNNI reports whether the CPU has AVX-512 VNNI (VPDPBUSD), on top of hasAVX512.
var hasVNNI = hasAVX512 && detectVNNI()

func detectVNNI() bool {
	_, _, ecx7, _ := cpuid(7, 0)
	return ecx7&(1<<11) != 0
}

// rowsPacked computes len(out)/16 groups of a packed weight's decode outputs (see rowsPackedGo).
func rowsPacked(t weights.DType, out []float32, w []byte, x *xQuant) {
	if !packKernels() || len(out) < packRows {
		rowsPackedGo(t, out, w, x)
		return
	}
	nb := len(x.sc)
	_ = x.q[nb*xqBytes-1] // bounds checked here, before the assembly reads
	_ = w[len(out)/packRows*nb*packedTileBytes(t)-1]
	if t == weights.Q4_1 {
		_ = x.sum[nb-1]
		rowsPackedQ4_1VNNI(out, w, x.q, x.sc, x.sum)
	} else {
		_ = x.corr[4*nb-1]
		rowsPackedQ8_0VNNI(out, w, x.q, x.sc, x.corr)
	}
}

// encodeX writes the digits and scales of the len(x)/32 blocks of x (see encodeXGo).
func encodeX(q []byte, sc []float32, x []float32) {
	if !packKernels() || len(x) < 32 {
		encodeXGo(q, sc, x)
		return
	}
	nb := len(x) / 32
	_, _ = q[nb*xqBytes-1], sc[nb-1] // bounds checked here, before the assembly writes
	encodeXAVX512(q, sc, x)
}

// dequantPacked expands one packed group into column tiles (see dequantPackedGo).
func dequantPacked(t weights.DType, dst []float32, group []byte) {
	if !packKernels() || len(dst) < 32*packRows {
		dequantPackedGo(t, dst, group)
		return
	}
	_ = group[len(dst)/(32*packRows)*packedTileBytes(t)-1] // bounds checked here, before the assembly reads
	if t == weights.Q4_1 {
		dequantPackedQ4_1AVX512(dst, group)
	} else {
		dequantPackedQ8_0AVX512(dst, group)
	}
}

// gemm8x16 is gemm8x16Go; the bounds are checked here before the assembly touches memory.
func gemm8x16(out []float32, ldo int, x []float32, ldx int, dq []float32, cols int) {
	if !packKernels() {
		gemm8x16Go(out, ldo, x, ldx, dq, cols)
		return
	}
	if cols < 2 || cols%2 != 0 {
		panic(fmt.Sprintf("gemm8x16: cols %d, want even and >= 2", cols))
	}
	_ = out[7*ldo+15]
	_ = x[7*ldx+cols-1]
	_ = dq[cols*16-1]
	gemm8x16AVX512(&out[0], ldo, &x[0], ldx, &dq[0], cols)
}

// blockSums writes xs[b] = sum(x[32b:32b+32]) for each 32-value block b of x: the m terms of the packed
// Q4_1 kernel.
func blockSums(xs, x []float32) {
	if !hasAVX2 || len(x) < 32 {
		blockSumsGo(xs, x)
		return
	}
	_ = xs[len(x)/32-1] // bounds checked here, before the assembly writes
	blockSumsAVX(xs, x)
}
