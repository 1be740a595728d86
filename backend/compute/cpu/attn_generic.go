//go:build !amd64 || purego

package cpu

// gemmTile does c[i*ldc+j] += Σ_kk a[i*rsA+kk*csA] * b[kk*ldb+j] for i < rows (3 or 6), j < 16.
func gemmTile(rows int, c []float32, ldc int, a []float32, rsA, csA int, b []float32, ldb int, k int) {
	gemmTileGo(rows, c, ldc, a, rsA, csA, b, ldb, k)
}

// cvtF16Rows converts rows rows of n binary16 values (src row r at r*srcStride) to float32 dst (rows, n).
func cvtF16Rows(dst []float32, src []uint16, n, rows, srcStride int) {
	cvtF16RowsGo(dst, src, n, rows, srcStride)
}

// dot4x3 writes out[t*ldo+r] = Σ_{i<k} x[t*ldx+i] * w[r*ldw+i] for t < 4, r < 3.
func dot4x3(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, k int) {
	dot4x3Go(out, ldo, x, ldx, w, ldw, k)
}
