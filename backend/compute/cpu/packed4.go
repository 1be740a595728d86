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
