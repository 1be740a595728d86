//go:build !amd64 || purego

package cpu

// expF32 replaces each x[i] by e^x[i] (see exp.go).
func expF32(x []float32) { expF32Go(x) }
