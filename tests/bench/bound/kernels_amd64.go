package main

// sumAVX2 returns the sum of n floats at p; n must be a multiple of 64. Reference loop:
//
//	for i := range n { s += p[i] } // in 64 lanes, reduced at the end
//
//go:noescape
func sumAVX2(p *float32, n int) float32 // p: (n,)

// fmaAVX2 runs n iterations of 12 independent 8-lane fused multiply-adds and returns float32(n).
//
//go:noescape
func fmaAVX2(n int) float32

// fmaAVX512 runs n iterations of 12 independent 16-lane fused multiply-adds and returns float32(n).
//
//go:noescape
func fmaAVX512(n int) float32

func kernelSupport() (avx2, avx512 bool) {
	_, f := cpuInfo()
	avx2 = f["avx2"] && f["fma"]
	return avx2, avx2 && f["avx512f"]
}
