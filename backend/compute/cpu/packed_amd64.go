//go:build amd64 && !purego

package cpu

import (
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

// encodeXAVX512: x (blocks*32); block b's digits at q[96*b*stride:][:96], its scale at sc[b*stride].
//
//go:noescape
func encodeXAVX512(q []byte, sc []float32, x []float32, stride int)

//go:noescape
func blockSumsAVX(xs, x []float32, stride int)

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

// encodeX writes the digits and scales of the len(x)/32 blocks of x, block b's at q[96*b*stride:] and
// sc[b*stride] (see encodeXGo).
func encodeX(q []byte, sc []float32, x []float32, stride int) {
	if !packKernels() || len(x) < 32 {
		encodeXGo(q, sc, x, stride)
		return
	}
	nb := len(x) / 32
	_, _ = q[((nb-1)*stride+1)*xqBytes-1], sc[(nb-1)*stride] // bounds checked here, before the assembly writes
	encodeXAVX512(q, sc, x, stride)
}

// blockSums writes xs[b*stride] = sum(x[32b:32b+32]) for each 32-value block b of x: the m terms of the
// packed Q4_1 kernel.
func blockSums(xs, x []float32, stride int) {
	if !hasAVX2 || len(x) < 32 {
		blockSumsGo(xs, x, stride)
		return
	}
	_ = xs[(len(x)/32-1)*stride] // bounds checked here, before the assembly writes
	blockSumsAVX(xs, x, stride)
}

//go:noescape
func rowsPacked4Q4_1VNNI(out *float32, ldo int, groups int, w *byte, nb int, xq *byte, sc *float32, sum *float32)

//go:noescape
func rowsPacked4Q8_0VNNI(out *float32, ldo int, groups int, w *byte, nb int, xq *byte, sc *float32, corr *int32)

// rowsPacked4 computes groups*16 outputs of a packed weight for the four tokens of x (see rowsPacked4Go).
func rowsPacked4(t weights.DType, out []float32, ldo, groups int, w []byte, x *xTile) {
	if !packKernels() {
		rowsPacked4Go(t, out, ldo, groups, w, x)
		return
	}
	nb := len(x.sc) / 4
	if groups == 0 || nb == 0 {
		return
	}
	_ = out[3*ldo+groups*packRows-1]
	_ = w[groups*nb*packedTileBytes(t)-1]
	_ = x.q[nb*4*xqBytes-1]
	if t == weights.Q4_1 {
		_ = x.sum[4*nb-1]
		rowsPacked4Q4_1VNNI(&out[0], ldo, groups, &w[0], nb, &x.q[0], &x.sc[0], &x.sum[0])
	} else {
		_ = x.corr[16*nb-1]
		rowsPacked4Q8_0VNNI(&out[0], ldo, groups, &w[0], nb, &x.q[0], &x.sc[0], &x.corr[0])
	}
}
