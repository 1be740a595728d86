package cpu

// Pure-Go twins of the attention kernels (attn_amd64.s). They are the reference semantics and the
// implementation of the purego build, of non-amd64 builds and of CPUs without AVX2/FMA/F16C.

// gemmTileGo does, for i < rows and c < 16,
//
//	c[i*ldc+c] += Σ_{kk<k} a[i*rsA+kk*csA] * b[kk*ldb+c]
//
// a is read with a row stride rsA and a column stride csA, so one kernel serves a row-major A (rsA = lda,
// csA = 1) and a transposed one (rsA = 1, csA = lda).
func gemmTileGo(rows int, c []float32, ldc int, a []float32, rsA, csA int, b []float32, ldb int, k int) {
	for i := 0; i < rows; i++ {
		ci := c[i*ldc : i*ldc+16]
		for kk := 0; kk < k; kk++ {
			av := a[i*rsA+kk*csA]
			bk := b[kk*ldb : kk*ldb+16]
			for j := range ci {
				ci[j] += av * bk[j]
			}
		}
	}
}

// cvtF16RowsGo converts rows rows of n binary16 values, src row r at src[r*srcStride:], into the contiguous
// float32 rows dst (rows, n).
func cvtF16RowsGo(dst []float32, src []uint16, n, rows, srcStride int) {
	for r := 0; r < rows; r++ {
		d, s := dst[r*n:(r+1)*n], src[r*srcStride:r*srcStride+n]
		for i, h := range s {
			d[i] = f16(h)
		}
	}
}

// dot4x3Go writes out[t*ldo+r] = Σ_{i<k} x[t*ldx+i] * w[r*ldw+i] for t < 4, r < 3: the scores of 4 keys
// (rows of x) against 3 query-head rows (rows of w), when too few rows are stacked for gemmTile.
func dot4x3Go(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, k int) {
	for t := 0; t < 4; t++ {
		for r := 0; r < 3; r++ {
			out[t*ldo+r] = dotF32Go(x[t*ldx:t*ldx+k], w[r*ldw:r*ldw+k])
		}
	}
}
