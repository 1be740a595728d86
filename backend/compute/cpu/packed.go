package cpu

import (
	"fmt"
	"math"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// Packed weights. Bind repacks Q4_1 and Q8_0 matrices whose row count is a multiple of 16 into groups of
// 16 rows with the rows interleaved, when the CPU has the AVX-512 VNNI kernels that read that layout. A
// matmul then computes 16 outputs per vector with integer dot products (VPDPBUSD), 64 weights per
// instruction, against the activations written as three int8 digits per value (see encodeX), for one token
// at a time (rowsPacked) or four sharing each loaded weight vector (rowsPacked4), with the same result
// per token either way. The byte count is the file's; only the order changes, and Q8_0 values are stored
// offset by 128 (q XOR 0x80) so that they are the unsigned operand of VPDPBUSD.
//
// Layout: group g (rows 16g..16g+15), then block b (columns 32b..32b+31), one tile each, tiles in (g, b)
// order. With r the row within the group, a "dword row" of a 64-byte vector holds 4 bytes of row r at
// bytes 4r..4r+3:
//
//	Q4_1 tile (320 bytes): d[r] f16 (32 B), m[r] f16 (32 B), then 4 vectors (256 B): vector i holds
//	                       qs[r][4i..4i+3] in dword row r: the low nibble of byte j is value 4i+j, the
//	                       high nibble value 16+4i+j.
//	Q8_0 tile (544 bytes): d[r] f16 (32 B), then 8 vectors (512 B): vector i holds q[r][4i..4i+3] XOR 0x80
//	                       in dword row r, value 4i+j at byte j.

const packRows = 16

// packedWeight is a weight in the packed layout.
type packedWeight struct {
	typ        weights.DType
	rows, cols int
	data       []byte // (rows/16, cols/32, tile bytes)
}

// packedTileBytes is the size of one (16-row, 32-column) tile of type t, 0 if t is not packed.
func packedTileBytes(t weights.DType) int {
	switch t {
	case weights.Q4_1:
		return packRows * q4_1Bytes
	case weights.Q8_0:
		return packRows * q8_0Bytes
	}
	return 0
}

// canPack reports whether a (rows, cols) weight of type t has a packed layout.
func canPack(t weights.DType, rows, cols int) bool {
	return packedTileBytes(t) > 0 && rows > 0 && rows%packRows == 0 && cols > 0 && cols%32 == 0
}

// packWeight repacks w (rows, cols) of type t, stored row-major in GGML blocks, into the packed layout.
func packWeight(w []byte, t weights.DType, rows, cols int) (*packedWeight, error) {
	if !canPack(t, rows, cols) {
		return nil, fmt.Errorf("weight (%d, %d) of %v has no packed layout", rows, cols, t)
	}
	rb, _ := t.RowBytes(cols)
	if len(w) < rows*rb {
		return nil, fmt.Errorf("weight (%d, %d) of %v: %d bytes, want %d", rows, cols, t, len(w), rows*rb)
	}
	tile, nb := packedTileBytes(t), cols/32
	out := make([]byte, rows*rb)
	for g := 0; g < rows/packRows; g++ {
		for b := 0; b < nb; b++ {
			packTile(out[(g*nb+b)*tile:(g*nb+b+1)*tile], w, t, rb, g, b)
		}
	}
	return &packedWeight{typ: t, rows: rows, cols: cols, data: out}, nil
}

// packTile writes the tile of group g, block b of the row-major weight w (rows of rb bytes) to dst.
func packTile(dst, w []byte, t weights.DType, rb, g, b int) {
	blk := tileBlockBytes(t)
	for r := 0; r < packRows; r++ {
		src := w[(g*packRows+r)*rb+b*blk:][:blk]
		copy(dst[2*r:2*r+2], src[:2]) // d
		switch t {
		case weights.Q4_1:
			copy(dst[32+2*r:32+2*r+2], src[2:4]) // m
			for c, q := range src[4:20] {
				dst[tileQ41(r, c)] = q
			}
		case weights.Q8_0:
			for c, q := range src[2:34] {
				dst[tileQ80(r, c)] = q ^ 0x80
			}
		}
	}
}

// tileQ41 is the offset in a Q4_1 tile of row r's byte c (values c and c+16); tileQ80 that of row r's
// value c in a Q8_0 tile.
func tileQ41(r, c int) int { return 64 + 64*(c/4) + 4*r + c%4 }
func tileQ80(r, c int) int { return 32 + 64*(c/4) + 4*r + c%4 }

// tileBlockBytes is the size of one 32-value GGML block of a packed type.
func tileBlockBytes(t weights.DType) int { return packedTileBytes(t) / packRows }

// groupBytes is the size of one 16-row group of p.
func (p *packedWeight) groupBytes() int { return p.cols / 32 * packedTileBytes(p.typ) }

// Activations of the packed decode kernels. encodeX writes each 32-value block b of x as integers
// X[k] = round(x[k]/s[b]) with |X| <= xqMax, s[b] = max|x[32b:32b+32]| / xqMax: 23 bits of magnitude, as
// many as a float32 mantissa holds for the block's largest value, so that x[k] = X[k]*s[b] within
// float32 rounding of that value. X is stored as three signed digits, X = 65536*hi + 256*mid + lo with
// lo, mid in [-128, 127] and hi in [-128, 127], each the signed operand of one VPDPBUSD.
const (
	xqMax   = 127 << 16 // largest |X|: hi stays within int8
	xqBytes = 96        // digits per block: hi[32], mid[32], lo[32]
	xqFloor = 1e-30     // smallest max|x| used for the scale: blocks of zeros (and tinier) give X = 0
)

// xQuant is one token's activations as the packed decode kernels read them.
type xQuant struct {
	q    []byte    // (blocks, 96): digits hi, mid, lo of the 32 values of each block
	sc   []float32 // (blocks): the block's scale s
	sum  []float32 // (blocks): sum of the block's float values (Q4_1's m term), or nil
	corr []int32   // (blocks, 4): -128 * the sums of hi, mid and lo digits, then 0 (Q8_0's offset), or nil
}

// encodeXGo is the portable twin of encodeXAVX512: digits and scales of the len(x)/32 blocks of x, block
// b's at q[96*b*stride:] and sc[b*stride].
func encodeXGo(q []byte, sc []float32, x []float32, stride int) {
	for b := 0; b < len(x)/32; b++ {
		xb, qb := x[32*b:32*b+32], q[xqBytes*b*stride:xqBytes*(b*stride+1)]
		amax := float32(xqFloor)
		for _, v := range xb {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		inv := xqMax / amax
		for k, v := range xb {
			hi, mid, lo := xqDigits(int32(math.RoundToEven(float64(v * inv))))
			qb[k], qb[32+k], qb[64+k] = byte(hi), byte(mid), byte(lo)
		}
		sc[b*stride] = amax / xqMax
	}
}

// xqDigits splits X (|X| <= xqMax + 1) into its three signed digits.
func xqDigits(x int32) (hi, mid, lo int8) {
	lo = int8(x)
	y := (x - int32(lo)) >> 8
	mid = int8(y)
	return int8((y - int32(mid)) >> 8), mid, lo
}

// digitCorrections writes corr[4b..4b+3] = -128 * (the sums of the hi, mid and lo digits of block b), 0,
// for the len(q)/96 blocks of q (blocks of any layout: corr follows q's order): the Q8_0 kernel multiplies
// the digits with q+128 and starts its sums here.
func digitCorrections(corr []int32, q []byte) {
	for b := 0; b < len(q)/xqBytes; b++ {
		for d := 0; d < 3; d++ {
			var s int32
			for _, v := range q[xqBytes*b+32*d : xqBytes*b+32*d+32] {
				s += int32(int8(v))
			}
			corr[4*b+d] = -128 * s
		}
		corr[4*b+3] = 0
	}
}

// rowsPackedGo computes out[i] = sum_k dequant(W)[16g+i][k]*x[k] for the len(out)/16 groups of w starting at
// its first byte (out holds whole groups), from x encoded by encodeX, in the order the VNNI kernels use: per
// block and row, the three digit dot products in int32, combined as (256*hi + mid)*256 + lo in float32,
// times d*s (+ m*sum(x) for Q4_1). The portable twin of rowsPackedQ4_1VNNI and rowsPackedQ8_0VNNI.
func rowsPackedGo(t weights.DType, out []float32, w []byte, x *xQuant) {
	rowsPackedStrideGo(t, out, w, x.q, x.sc, x.sum, x.corr, len(x.sc), 1)
}

// rowsPackedStrideGo is rowsPackedGo for nb blocks of activations whose block b is entry b*stride of q (96
// bytes each), sc, sum (one value each) and corr (four values each).
func rowsPackedStrideGo(t weights.DType, out []float32, w []byte, q []byte, sc, sum []float32, corr []int32, nb, stride int) {
	tile := packedTileBytes(t)
	for g := 0; g < len(out)/packRows; g++ {
		var acc [packRows]float32
		for b := 0; b < nb; b++ {
			e := b * stride
			tl := w[(g*nb+b)*tile : (g*nb+b+1)*tile]
			xq := q[xqBytes*e : xqBytes*(e+1)]
			for r := 0; r < packRows; r++ {
				var dig [3]int32 // hi, mid, lo
				if t == weights.Q8_0 {
					copy(dig[:], corr[4*e:4*e+3])
				}
				for k := 0; k < 32; k++ {
					var u int32 // the unsigned VPDPBUSD operand
					if t == weights.Q4_1 {
						u = int32(tl[tileQ41(r, k%16)] >> (4 * (k / 16)) & 15)
					} else {
						u = int32(tl[tileQ80(r, k)])
					}
					for d := range dig {
						dig[d] += u * int32(int8(xq[32*d+k]))
					}
				}
				v := (float32(dig[0])*256+float32(dig[1]))*256 + float32(dig[2])
				acc[r] += v * (f16(le16(tl[2*r:])) * sc[e])
				if t == weights.Q4_1 {
					acc[r] += f16(le16(tl[32+2*r:])) * sum[e]
				}
			}
		}
		copy(out[g*packRows:(g+1)*packRows], acc[:])
	}
}

// matmulPacked is matmul for a packed weight: out (n, p.rows) = x (n, p.cols) · Wᵀ, by the integer decode
// kernels for every n (a decode batch or a prefill chunk alike): each token's outputs are those of the
// one-token kernel, bit for bit, whatever it is batched with.
func matmulPacked(out, x []float32, n int, p *packedWeight) {
	if n < 0 || len(x) < n*p.cols || len(out) < n*p.rows || len(p.data) < p.rows/packRows*p.groupBytes() {
		panic(fmt.Sprintf("cpu matmul: packed weight (%d, %d) of %v: x %d, out %d values for n %d", p.rows, p.cols, p.typ, len(x), len(out), n))
	}
	if n == 0 {
		return
	}
	j := getJob()
	j.x, j.n, j.cols, j.packed, j.strip = x, n, p.cols, p, 0
	j.parts = append(j.parts[:0], packedPart{p: p, out: out})
	j.encodeTokens(x, n, p.cols, p.typ == weights.Q4_1, p.typ == weights.Q8_0)
	j.planPacked(p.rows, p.groupBytes())
	parallelForW(j.rowChunks*j.tokBlocks, 1, j)
	clear(j.parts)
	j.parts = j.parts[:0]
	putJob(j)
}

// packedTokBlock is the most tokens one work item of a packed matmul takes: their encoded activations
// (96 bytes per 32 values: 147 KB at 1536 columns) stay in L2 while the item walks its rows.
const packedTokBlock = 32

// planPacked splits a packed matmul over rows (whole groups of gb bytes) and, beyond packedTokBlock tokens,
// over blocks of tokens (a multiple of 4).
func (j *matmulJob) planPacked(rows, gb int) {
	j.tokBlock = min(j.n, packedTokBlock)
	j.tokBlocks = ceilDiv(j.n, j.tokBlock)
	j.rowChunk = packedDecodeChunk(rows/packRows, gb, min(j.n, 4), len(j.scratch), j.tokBlocks)
	j.rowChunks = ceilDiv(rows, j.rowChunk)
}

// packedDecodeChunk is the rows per chunk of a packed decode over groups of gb bytes, for items of n tokens:
// two chunks per worker (over all token blocks), of up to 16*rowChunkBytes of packed weight per token (a
// group is 6-15 KB at SmolLM2's shapes), so that long sequential runs keep the prefetchers streaming.
// BenchmarkMatvecModel measured ~5.5 ms per token's weights at four chunks per worker and 64 KB, 5.2-5.3
// here, and 7+ ms at 8-16 KB chunks.
func packedDecodeChunk(groups, gb, n, workers, tokBlocks int) int {
	return packRows * max(1, min(ceilDiv(groups*tokBlocks, 2*workers), 16*rowChunkBytes/(gb*n)))
}

// growF32 returns s resliced to n values, reallocated when its capacity is short.
func growF32(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// Encoded activations. Tokens [0, 4*(n/4)) are stored in tiles of four, interleaved block by block as
// rowsPacked4 reads them (xTile); the last n%4 tokens each on their own, as rowsPacked reads them. Either
// way token t's block b is entry tokenEntry(t, b) of xq (96 bytes each), xsc, xs (one value each) and xcorr
// (four values each).

// tokenBase returns the entry of token t's first block and the entry stride between its blocks.
func tokenBase(t, n, per int) (base, stride int) {
	if t < n/4*4 {
		return t/4*4*per + t%4, 4
	}
	return t * per, 1
}

// encodeTokens writes the n tokens of x (n, cols) as the packed kernels read them (see xQuant, xTile), into
// the job's buffers, with the block sums a Q4_1 weight needs and the digit corrections of Q8_0.
func (j *matmulJob) encodeTokens(x []float32, n, cols int, sums, corr bool) {
	per := cols / 32
	j.xq = growBytes(j.xq, n*per*xqBytes)
	j.xsc = growF32(j.xsc, n*per)
	j.xs, j.xcorr = j.xs[:0], j.xcorr[:0]
	if sums {
		j.xs = growF32(j.xs, n*per)
	}
	for t := 0; t < n; t++ {
		base, stride := tokenBase(t, n, per)
		xt := x[t*cols : (t+1)*cols]
		encodeX(j.xq[base*xqBytes:], j.xsc[base:], xt, stride)
		if sums {
			blockSums(j.xs[base:], xt, stride)
		}
	}
	if corr {
		if cap(j.xcorr) < n*per*4 {
			j.xcorr = make([]int32, n*per*4)
		}
		j.xcorr = j.xcorr[:n*per*4]
		digitCorrections(j.xcorr, j.xq)
	}
}

// tile returns the encoded activations of tokens [4k, 4k+4) (k < n/4).
func (j *matmulJob) tile(k int) xTile {
	per := j.cols / 32
	lo, hi := 4*k*per, 4*(k+1)*per
	x := xTile{q: j.xq[lo*xqBytes : hi*xqBytes], sc: j.xsc[lo:hi]}
	if len(j.xs) > 0 {
		x.sum = j.xs[lo:hi]
	}
	if len(j.xcorr) > 0 {
		x.corr = j.xcorr[4*lo : 4*hi]
	}
	return x
}

// token returns the encoded activations of token t >= 4*(n/4).
func (j *matmulJob) token(t int) xQuant {
	per := j.cols / 32
	x := xQuant{q: j.xq[t*per*xqBytes : (t+1)*per*xqBytes], sc: j.xsc[t*per : (t+1)*per]}
	if len(j.xs) > 0 {
		x.sum = j.xs[t*per : (t+1)*per]
	}
	if len(j.xcorr) > 0 {
		x.corr = j.xcorr[t*per*4 : (t+1)*per*4]
	}
	return x
}

// growBytes returns s resliced to n bytes, reallocated when its capacity is short.
func growBytes(s []byte, n int) []byte {
	if cap(s) < n {
		return make([]byte, n)
	}
	return s[:n]
}

// runPacked runs work item it = rowChunk*tokBlocks + tokBlock: rows [lo, hi) (whole groups, counted
// through the parts' weights in order) for the item's tokens.
func (j *matmulJob) runPacked(it int) {
	c, tb := it/j.tokBlocks, it%j.tokBlocks
	lo, hi := c*j.rowChunk, (c+1)*j.rowChunk
	t0, t1 := tb*j.tokBlock, min((tb+1)*j.tokBlock, j.n)
	for _, pt := range j.parts {
		if a, b := max(lo, pt.row0), min(hi, pt.row0+pt.p.rows); a < b {
			j.decodeRange(pt.p, pt.out, a-pt.row0, b-pt.row0, t0, t1)
		}
	}
}

// decodeRange computes out (n, p.rows) rows [lo, hi) of packed weight p for tokens [t0, t1): four at a time
// (rowsPacked4) in the tiles of four, one at a time after them.
func (j *matmulJob) decodeRange(p *packedWeight, out []float32, lo, hi, t0, t1 int) {
	gb := p.groupBytes()
	w := p.data[lo/packRows*gb : hi/packRows*gb]
	full := j.n / 4 * 4
	t := t0
	for ; t+4 <= min(t1, full); t += 4 {
		x := j.tile(t / 4)
		rowsPacked4(p.typ, out[t*p.rows+lo:], p.rows, (hi-lo)/packRows, w, &x)
	}
	for ; t < t1; t++ {
		x := j.token(t)
		rowsPacked(p.typ, out[t*p.rows+lo:t*p.rows+hi], w, &x)
	}
}

// packedPart is one weight of a packed matmul: one part for matmulPacked, several for matmulPackedShared.
type packedPart struct {
	p    *packedWeight
	out  []float32 // (n, p.rows)
	row0 int       // the part's first row in the loop's index space
}

// matmulPackedShared is matmulPacked for several packed weights with the same cols that multiply the same
// x: the tokens are encoded once and all rows run as one parallel loop (one wait for the workers instead of
// one per weight). outs[i] (n, ps[i].rows) = x (n, cols) · ps[i]ᵀ.
func matmulPackedShared(outs [][]float32, x []float32, n int, ps []*packedWeight) {
	cols := ps[0].cols
	if n <= 0 || len(x) < n*cols || len(outs) != len(ps) {
		panic(fmt.Sprintf("cpu matmul: %d packed weights sharing x of %d values, n %d, %d outputs", len(ps), len(x), n, len(outs)))
	}
	j := getJob()
	j.x, j.n, j.cols, j.packed, j.strip = x, n, cols, ps[0], 0
	var sums, corr bool
	rows, maxGB := 0, 0
	for i, p := range ps {
		if p.cols != cols || len(outs[i]) < n*p.rows {
			panic(fmt.Sprintf("cpu matmul: packed weight (%d, %d) with x of %d columns, out %d values, n %d", p.rows, p.cols, cols, len(outs[i]), n))
		}
		j.parts = append(j.parts, packedPart{p: p, out: outs[i], row0: rows})
		rows += p.rows
		maxGB = max(maxGB, p.groupBytes())
		sums, corr = sums || p.typ == weights.Q4_1, corr || p.typ == weights.Q8_0
	}
	j.encodeTokens(x, n, cols, sums, corr)
	j.planPacked(rows, maxGB)
	parallelForW(j.rowChunks*j.tokBlocks, 1, j)
	clear(j.parts)
	j.parts = j.parts[:0]
	putJob(j)
}

// blockSumsGo is the reference of blockSums: xs[b*stride] = sum(x[32b:32b+32]) for each 32-value block b
// of x.
func blockSumsGo(xs, x []float32, stride int) {
	for b := 0; b < len(x)/32; b++ {
		var s float32
		for _, v := range x[32*b : 32*b+32] {
			s += v
		}
		xs[b*stride] = s
	}
}

// PacksWeights reports whether Bind repacks Q4_1 and Q8_0 matrices on this CPU (and then releases the
// file's pages of those tensors).
func PacksWeights() bool { return packKernels() }
