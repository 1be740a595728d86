package cpu

import (
	"fmt"
	"sync"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// matmul computes out (n, rows) = x (n, cols) · Wᵀ, where W (rows, cols) is stored as type typ in w
// (rows*RowBytes(cols) bytes, row-major, GGML block layouts). The reference loop is
//
//	for t := 0; t < n; t++ {
//		for r := 0; r < rows; r++ {
//			out[t*rows+r] = sum_i dequant(W)[r][i] * x[t*cols+i] // float32 math
//		}
//	}
//
// Weights are dequantized exactly (x is never quantized). Work is spread over the worker pool; a call
// allocates nothing once its scratch has grown to the largest shape seen. One token (prefillMinTokens) is
// dotted with each weight row directly from its stored form; from two tokens on, strips of rows are
// dequantized into per-worker scratch and reused across tokens by a 4-token x 3-row micro-kernel and its
// one-token form, by the same arithmetic per token.
//
// Invalid arguments are a programming error: matmul panics with checkMatmul's message. Callers at a
// boundary that must not panic call checkMatmul first.
func matmul(out, x []float32, n int, w []byte, typ weights.DType, rows, cols int) {
	if err := checkMatmul(out, x, n, w, typ, rows, cols); err != nil {
		panic("cpu matmul: " + err.Error())
	}
	if n == 0 || rows == 0 {
		return
	}
	j := getJob()
	j.set(out, x, n, w, typ, rows, cols)
	if j.strip == 0 {
		parallelForW(rows, j.rowChunk, j)
	} else {
		parallelForW(j.strips*j.tokBlocks, 1, j)
	}
	putJob(j)
}

// checkMatmul validates matmul's arguments.
func checkMatmul(out, x []float32, n int, w []byte, typ weights.DType, rows, cols int) error {
	if rowDotFunc(typ) == nil {
		return fmt.Errorf("weight type %v is not supported", typ)
	}
	if n < 0 || rows < 0 || cols <= 0 {
		return fmt.Errorf("bad shape: n %d, weight (%d, %d)", n, rows, cols)
	}
	rb, err := typ.RowBytes(cols)
	if err != nil {
		return fmt.Errorf("weight (%d, %d): %w", rows, cols, err)
	}
	if len(w) < rows*rb {
		return fmt.Errorf("weight (%d, %d) of %v: %d bytes, want %d", rows, cols, typ, len(w), rows*rb)
	}
	if len(x) < n*cols {
		return fmt.Errorf("x: %d values, want (%d, %d)", len(x), n, cols)
	}
	if len(out) < n*rows {
		return fmt.Errorf("out: %d values, want (%d, %d)", len(out), n, rows)
	}
	return nil
}

// prefillMinTokens is the token count from which matmul dequantizes strips of rows once and reuses them
// across tokens; below it (one token: a single sequence's decode step) each row is dotted with the token
// directly from its stored form. The strip path computes each token the same way whatever the token count
// (batch-invariant from two tokens on); for one token it would write and re-read the whole weight as
// float32, which made single-stream decode on the AVX2 path 40% slower (13.3-15.2 against 9.3-10.5 ms at
// 128 context, OMNIKV_CPU=avx2, 3 runs each). Packed weights (VNNI) are batch-invariant for every n.
// Measured on the AVX2 path (BenchmarkBatchModel, OMNIKV_CPU=avx2): n = 2 about even, strips ahead from 3.
func prefillMinTokens(weights.DType) int { return 2 }

const (
	stripBytes     = 256 << 10 // dequantized strip size per worker, to stay in L2
	maxStripRows   = 96
	rowChunkBytes  = 16 << 10 // weight bytes per decode chunk
	minTokPerBlock = 16       // tokens per prefill item when tokens are split across workers
	kBlock         = 512      // columns per pass of the micro-kernel: 4 tokens' x = 8 KB, in L1
	kBlockFrom     = 768      // up to this many columns a 4-token tile and 3 weight rows fit L1 unsplit
)

// matmulJob is one call's arguments, its work plan and per-worker scratch. Jobs are recycled through a free
// list; a job belongs to one call at a time.
type matmulJob struct {
	out      []float32 // (n, rows)
	x        []float32 // (n, cols)
	w        []byte    // (rows, rowBytes)
	rowDot   func(w []byte, x []float32) float32
	packed   *packedWeight // the weight when it is packed (w is then nil)
	xq       []byte        // (n*cols/32, 96) packed: the tokens' digits (encodeX), in tiles (see tokenBase)
	xsc      []float32     // (n*cols/32) packed: the tokens' block scales, same order
	xs       []float32     // (n*cols/32) packed, Q4_1: the tokens' block sums, same order
	xcorr    []int32       // (n*cols/32, 4) packed, Q8_0: digitCorrections, same order
	parts    []packedPart  // packed: the weights (one, or several sharing x: matmulPackedShared)
	dequant  func(dst []float32, w []byte)
	n        int
	rows     int
	cols     int
	rowBytes int

	rowChunk  int // decode: rows per chunk
	rowChunks int // packed: number of row chunks; items = rowChunks * tokBlocks
	strip     int // prefill: rows per strip, a multiple of 3; 0 selects the decode path
	strips    int // number of strips
	tokBlock  int // prefill: tokens per item, a multiple of 4 unless it covers all n
	tokBlocks int // number of token blocks; items = strips * tokBlocks
	kStep     int // prefill: columns per micro-kernel pass, a multiple of 8 unless it is cols

	scratch [][]float32 // per worker: see scratchLen
}

var jobs struct {
	sync.Mutex
	free []*matmulJob
}

func getJob() *matmulJob {
	jobs.Lock()
	defer jobs.Unlock()
	if k := len(jobs.free); k > 0 {
		j := jobs.free[k-1]
		jobs.free = jobs.free[:k-1]
		return j
	}
	return &matmulJob{scratch: make([][]float32, poolWorkers())}
}

func putJob(j *matmulJob) {
	j.out, j.x, j.w, j.packed = nil, nil, nil, nil // do not keep the caller's memory alive
	jobs.Lock()
	jobs.free = append(jobs.free, j)
	jobs.Unlock()
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// set records the arguments and plans the work.
func (j *matmulJob) set(out, x []float32, n int, w []byte, typ weights.DType, rows, cols int) {
	rb, _ := typ.RowBytes(cols) // checked by checkMatmul
	j.out, j.x, j.w, j.packed = out, x, w, nil
	j.rowDot, j.dequant = rowDotFunc(typ), dequantFunc(typ)
	j.n, j.rows, j.cols, j.rowBytes = n, rows, cols, rb
	workers := len(j.scratch)
	if n < prefillMinTokens(typ) {
		j.strip = 0
		j.rowChunk = max(1, min(ceilDiv(rows, 4*workers), rowChunkBytes/max(1, rb*n)))
		return
	}
	want := 2 * workers // items, so that a slow worker does not hold up the others
	strip := min(maxStripRows, max(3, stripBytes/(4*cols)/3*3))
	if ceilDiv(rows, strip) < want {
		strip = max(3, ceilDiv(ceilDiv(rows, want), 3)*3)
	}
	j.strip, j.strips = strip, ceilDiv(rows, strip)
	j.planTokens(want, 4)
	j.kStep = cols
	if cols > kBlockFrom { // equal passes of about kBlock columns
		j.kStep = ceilDiv(ceilDiv(cols, ceilDiv(cols, kBlock)), 8) * 8
	}
	j.growScratch(j.scratchLen())
}

// planTokens splits the n tokens of a prefill into blocks (a multiple of tile tokens unless one block
// covers all n) when there are fewer than want strips, so that every worker gets items.
func (j *matmulJob) planTokens(want, tile int) {
	blocks := 1
	if j.strips < want {
		blocks = max(1, min(ceilDiv(want, j.strips), j.n/minTokPerBlock))
	}
	j.tokBlock = ceilDiv(ceilDiv(j.n, blocks), tile) * tile
	j.tokBlocks = ceilDiv(j.n, j.tokBlock)
}

// growScratch grows every worker's scratch to need values here, not in runW: which workers take items
// varies from call to call, and a call must not allocate unless the shape grew.
func (j *matmulJob) growScratch(need int) {
	for w := range j.scratch {
		if cap(j.scratch[w]) < need {
			j.scratch[w] = make([]float32, need)
		}
	}
}

// scratchLen is the per-worker scratch size: a strip (strip, cols).
func (j *matmulJob) scratchLen() int { return j.strip * j.cols }

// runW runs decode rows [lo, hi) or prefill items [lo, hi) on the given worker.
func (j *matmulJob) runW(worker, lo, hi int) {
	if j.packed != nil {
		for it := lo; it < hi; it++ {
			j.runPacked(it)
		}
		return
	}
	if j.strip == 0 {
		j.decodeRows(lo, hi)
		return
	}
	s := j.scratch[worker][:j.scratchLen()] // grown by set
	for it := lo; it < hi; it++ {
		j.prefillItem(s, it/j.tokBlocks, it%j.tokBlocks)
	}
}

// decodeRows computes out[t][r] for rows [lo, hi) and every token, reading each weight row once.
func (j *matmulJob) decodeRows(lo, hi int) {
	rb, cols, rows := j.rowBytes, j.cols, j.rows
	for r := lo; r < hi; r++ {
		wr := j.w[r*rb : (r+1)*rb]
		for t := 0; t < j.n; t++ {
			j.out[t*rows+r] = j.rowDot(wr, j.x[t*cols:(t+1)*cols])
		}
	}
}

// prefillItem dequantizes strip si into s (strip, cols) and multiplies it with token block tb: four tokens
// at a time by the 4x3 micro-kernel, a last one to three one at a time by its one-token form, which
// computes each output the same way, so that a token's result does not depend on how many tokens the call
// has. Wide rows are taken kStep columns at a time so that a 4-token slice of x stays in L1 across the strip.
func (j *matmulJob) prefillItem(s []float32, si, tb int) {
	rb, cols, rows := j.rowBytes, j.cols, j.rows
	r0 := si * j.strip
	nr := min(j.strip, rows-r0)
	for r := 0; r < nr; r++ {
		j.dequant(s[r*cols:(r+1)*cols], j.w[(r0+r)*rb:(r0+r+1)*rb])
	}
	t0 := tb * j.tokBlock
	t1 := min(t0+j.tokBlock, j.n)
	full := nr / 3 * 3
	for t := t0; t < t1; t += 4 {
		m := min(4, t1-t) // tokens in this tile row
		for kc := 0; kc < cols; kc += j.kStep {
			kn := min(j.kStep, cols-kc)
			for r := 0; r < full; r += 3 {
				if m == 4 {
					tile4x3(j.out[t*rows+r0+r:], rows, j.x[t*cols+kc:], cols, s[r*cols+kc:], cols, kn, kc > 0)
					continue
				}
				for u := t; u < t+m; u++ {
					tile1x3(j.out[u*rows+r0+r:], j.x[u*cols+kc:], s[r*cols+kc:], cols, kn, kc > 0)
				}
			}
		}
		for r := full; r < nr; r++ { // ragged last rows
			for u := t; u < t+m; u++ {
				j.out[u*rows+r0+r] = dotF32(j.x[u*cols:(u+1)*cols], s[r*cols:(r+1)*cols])
			}
		}
	}
}
