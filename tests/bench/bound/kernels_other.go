//go:build !amd64

package main

func sumAVX2(p *float32, n int) float32 { return 0 }
func fmaAVX2(n int) float32             { return 0 }
func fmaAVX512(n int) float32           { return 0 }

func kernelSupport() (avx2, avx512 bool) { return false, false }
