//go:build amd64 && !purego

package cpu

// Assembly attention kernels (attn_amd64.s); the Go wrappers check bounds before the assembly reads or
// writes memory.

//go:noescape
func gemm3x16AVX(c *float32, ldc int, a *float32, rsA, csA int, b *float32, ldb int, k int)

//go:noescape
func gemm6x16AVX(c *float32, ldc int, a *float32, rsA, csA int, b *float32, ldb int, k int)

//go:noescape
func cvtF16RowsAVX(dst *float32, src *uint16, n8, rows, srcStride int)

// gemmTile does c[i*ldc+j] += Σ_kk a[i*rsA+kk*csA] * b[kk*ldb+j] for i < rows (3 or 6), j < 16.
func gemmTile(rows int, c []float32, ldc int, a []float32, rsA, csA int, b []float32, ldb int, k int) {
	if !hasAVX2 || k == 0 || (rows != 3 && rows != 6) {
		gemmTileGo(rows, c, ldc, a, rsA, csA, b, ldb, k)
		return
	}
	_ = c[(rows-1)*ldc+15]
	_ = a[(rows-1)*rsA+(k-1)*csA]
	_ = b[(k-1)*ldb+15]
	if rows == 6 {
		gemm6x16AVX(&c[0], ldc, &a[0], rsA, csA, &b[0], ldb, k)
	} else {
		gemm3x16AVX(&c[0], ldc, &a[0], rsA, csA, &b[0], ldb, k)
	}
}

// cvtF16Rows converts rows rows of n binary16 values (src row r at r*srcStride) to float32 dst (rows, n).
func cvtF16Rows(dst []float32, src []uint16, n, rows, srcStride int) {
	if !hasAVX2 || rows == 0 || n < 8 {
		cvtF16RowsGo(dst, src, n, rows, srcStride)
		return
	}
	_ = dst[rows*n-1]
	_ = src[(rows-1)*srcStride+n-1]
	n8 := n &^ 7
	if n8 == n {
		cvtF16RowsAVX(&dst[0], &src[0], n, rows, srcStride)
		return
	}
	for r := 0; r < rows; r++ { // rows not a multiple of 8 wide: vector part per row, then the rest
		d, s := dst[r*n:(r+1)*n], src[r*srcStride:r*srcStride+n]
		cvtF16RowsAVX(&d[0], &s[0], n8, 1, 0)
		for i := n8; i < n; i++ {
			d[i] = f16(s[i])
		}
	}
}

//go:noescape
func dot4x3AVX(out *float32, ldo int, x *float32, ldx int, w *float32, ldw int, k int)

// dot4x3 writes out[t*ldo+r] = Σ_{i<k} x[t*ldx+i] * w[r*ldw+i] for t < 4, r < 3.
func dot4x3(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, k int) {
	k8 := k &^ 7
	if !hasAVX2 || k8 == 0 {
		dot4x3Go(out, ldo, x, ldx, w, ldw, k)
		return
	}
	_ = out[3*ldo+2]
	_ = x[3*ldx+k-1]
	_ = w[2*ldw+k-1]
	dot4x3AVX(&out[0], ldo, &x[0], ldx, &w[0], ldw, k8)
	for t := 0; t < 4 && k8 < k; t++ {
		for r := 0; r < 3; r++ {
			out[t*ldo+r] += dotF32Go(x[t*ldx+k8:t*ldx+k], w[r*ldw+k8:r*ldw+k])
		}
	}
}
