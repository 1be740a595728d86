//go:build !amd64 || purego

package cpu

import "unsafe"

// dotF32 returns sum_i a[i]*b[i]; len(a) == len(b).
func dotF32(a, b []float32) float32 { return dotF32Go(a, b) }

// axpyF32 does y += a*x; len(x) == len(y).
func axpyF32(y []float32, a float32, x []float32) { axpyF32Go(y, a, x) }

// dotF16 returns sum_i f16(a[i])*b[i], a holding IEEE binary16 bits; len(a) == len(b).
func dotF16(a []uint16, b []float32) float32 { return dotF16Go(a, b) }

// axpyF16 does y += a*f16(x); len(x) == len(y).
func axpyF16(y []float32, a float32, x []uint16) { axpyF16Go(y, a, x) }

// dotBF16 returns sum_i bf16(a[i])*b[i]; len(a) == len(b).
func dotBF16(a []uint16, b []float32) float32 { return dotBF16Go(a, b) }

// scaleF32 does x *= a.
func scaleF32(x []float32, a float32) { scaleF32Go(x, a) }

// prefetchLines is a hint the portable build does not give.
func prefetchLines(unsafe.Pointer, int) {}

// copyRowsNT is copy in the portable build.
func copyRowsNT[T uint16 | float32](dst, src []T) { copy(dst, src) }

// storeFence: nothing to order in the portable build.
func storeFence() {}
