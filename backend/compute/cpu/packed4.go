package cpu

import "github.com/omnikv-triton/omnikv-triton/backend/weights"

// xTile is four tokens' activations as rowsPacked4 reads them: interleaved block by block, so that one
// pointer walks the blocks of all four.
type xTile struct {
	q    []byte    // (blocks, 4, 96) digits (see encodeX)
	sc   []float32 // (blocks, 4) scales
	sum  []float32 // (blocks, 4) block sums (Q4_1), or nil
	corr []int32   // (blocks, 4, 4) digit corrections (Q8_0), or nil
}

// interleave4 builds the tile of four tokens encoded one by one.
func interleave4(dst *xTile, xs [4]*xQuant) {
	nb := len(xs[0].sc)
	dst.q = growBytes(dst.q, nb*4*xqBytes)
	dst.sc = growF32(dst.sc, nb*4)
	if xs[0].sum != nil {
		dst.sum = growF32(dst.sum, nb*4)
	}
	if xs[0].corr != nil {
		if cap(dst.corr) < nb*16 {
			dst.corr = make([]int32, nb*16)
		}
		dst.corr = dst.corr[:nb*16]
	}
	for b := 0; b < nb; b++ {
		for u, x := range xs {
			copy(dst.q[(4*b+u)*xqBytes:(4*b+u+1)*xqBytes], x.q[b*xqBytes:(b+1)*xqBytes])
			dst.sc[4*b+u] = x.sc[b]
			if x.sum != nil {
				dst.sum[4*b+u] = x.sum[b]
			}
			if x.corr != nil {
				copy(dst.corr[(4*b+u)*4:(4*b+u+1)*4], x.corr[4*b:4*b+4])
			}
		}
	}
}

// rowsPacked4Go is the portable twin of rowsPacked4Q4_1VNNI / rowsPacked4Q8_0VNNI: out[u*ldo+16g+r] for
// the four tokens u of x and the groups of w that out[u*ldo:][:16*groups] covers, each token's exactly as
// rowsPackedGo computes it.
func rowsPacked4Go(t weights.DType, out []float32, ldo, groups int, w []byte, x *xTile) {
	nb := len(x.sc) / 4
	for u := 0; u < 4; u++ {
		var sum []float32
		var corr []int32
		if x.sum != nil {
			sum = x.sum[u:]
		}
		if x.corr != nil {
			corr = x.corr[4*u:]
		}
		rowsPackedStrideGo(t, out[u*ldo:u*ldo+groups*packRows], w, x.q[u*xqBytes:], x.sc[u:], sum, corr, nb, 4)
	}
}
