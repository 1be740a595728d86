//go:build amd64 && !purego

package cpu

import (
	"os"
	"unsafe"
)

// OMNIKV_CPU=avx2 keeps the AVX2 kernels (row-major weights, float dot products) on a CPU that has AVX-512
// VNNI: to measure that path where it would not run by itself. Any other value, or none, picks the best.
func init() {
	if os.Getenv("OMNIKV_CPU") == "avx2" {
		hasAVX512, hasVNNI = false, false
	}
}

// hasAVX2 reports whether the CPU and OS support AVX2, FMA and F16C (with YMM state saved by the OS); the
// assembly kernels run only then, the pure-Go twins otherwise.
var hasAVX2 = detectAVX2()

func detectAVX2() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fma     = 1 << 12
		osxsave = 1 << 27
		avx     = 1 << 28
		f16c    = 1 << 29
	)
	if ecx1&(fma|osxsave|avx|f16c) != fma|osxsave|avx|f16c {
		return false
	}
	if xcr0 := xgetbv0(); xcr0&6 != 6 { // XMM and YMM state enabled by the OS
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0 // AVX2
}

func cpuid(eax, ecx uint32) (a, b, c, d uint32)

//go:noescape
func copyNTAVX(dst, src unsafe.Pointer, n int)

// storeFence orders the non-temporal stores before it with the stores after it (SFENCE).
func storeFence()

// copyRowsNT copies src to dst (same length) with non-temporal stores where the sizes and alignment allow
// it, else with copy. The caller calls storeFence before other goroutines read dst.
func copyRowsNT[T uint16 | float32](dst, src []T) {
	n := len(src) * int(unsafe.Sizeof(src[0]))
	if hasAVX2 && n > 0 && n%64 == 0 && uintptr(unsafe.Pointer(&dst[0]))%32 == 0 && len(dst) >= len(src) {
		copyNTAVX(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), n)
		return
	}
	copy(dst, src)
}

// prefetchLines asks for the n >= 1 cache lines from p to be loaded into L1 (a hint: it never faults).
//
//go:noescape
func prefetchLines(p unsafe.Pointer, n int)

func xgetbv0() uint32

// The assembly kernels. Each requires len(b) >= len(a) (dot) or len(x) >= len(y) (axpy); the Go wrappers
// below enforce it with a slice expression so that a short slice panics in Go instead of being overrun.

//go:noescape
func dotF32AVX(a, b []float32) float32

//go:noescape
func axpyF32AVX(y []float32, a float32, x []float32)

//go:noescape
func dotF16AVX(a []uint16, b []float32) float32

//go:noescape
func axpyF16AVX(y []float32, a float32, x []uint16)

//go:noescape
func dotBF16AVX(a []uint16, b []float32) float32

//go:noescape
func scaleF32AVX(x []float32, a float32)

// dotF32 returns sum_i a[i]*b[i]; len(a) == len(b).
func dotF32(a, b []float32) float32 {
	if hasAVX2 {
		return dotF32AVX(a, b[:len(a)])
	}
	return dotF32Go(a, b)
}

// axpyF32 does y += a*x; len(x) == len(y).
func axpyF32(y []float32, a float32, x []float32) {
	if hasAVX2 {
		axpyF32AVX(y, a, x[:len(y)])
		return
	}
	axpyF32Go(y, a, x)
}

// dotF16 returns sum_i f16(a[i])*b[i], a holding IEEE binary16 bits; len(a) == len(b).
func dotF16(a []uint16, b []float32) float32 {
	if hasAVX2 {
		return dotF16AVX(a, b[:len(a)])
	}
	return dotF16Go(a, b)
}

// axpyF16 does y += a*f16(x); len(x) == len(y).
func axpyF16(y []float32, a float32, x []uint16) {
	if hasAVX2 {
		axpyF16AVX(y, a, x[:len(y)])
		return
	}
	axpyF16Go(y, a, x)
}

// dotBF16 returns sum_i bf16(a[i])*b[i]; len(a) == len(b).
func dotBF16(a []uint16, b []float32) float32 {
	if hasAVX2 {
		return dotBF16AVX(a, b[:len(a)])
	}
	return dotBF16Go(a, b)
}

// scaleF32 does x *= a.
func scaleF32(x []float32, a float32) {
	if hasAVX2 {
		scaleF32AVX(x, a)
		return
	}
	scaleF32Go(x, a)
}

// hasAVX512 reports whether the CPU and OS support AVX-512 F, BW and VL on top of hasAVX2 (opmask and ZMM
// state saved by the OS); the AVX-512 decode kernels run only then.
var hasAVX512 = hasAVX2 && detectAVX512()

func detectAVX512() bool {
	if xcr0 := xgetbv0(); xcr0&0xe6 != 0xe6 { // XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const f, bw, vl = 1 << 16, 1 << 30, 1 << 31
	return ebx7&(f|bw|vl) == f|bw|vl
}
