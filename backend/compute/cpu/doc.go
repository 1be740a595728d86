// Package cpu is the reference implementation of compute.Device: pure Go for the logic, with Go assembly for
// the hot loops on amd64 (matrix-vector products over every weight type, f32/f16 dot products and axpy) and a
// pure-Go twin of each loop selected by the build tag purego. Work is spread over all cores by a persistent
// worker pool; a decode step allocates nothing.
//
// Numerics: activations and accumulations are float32, weights are dequantized exactly block by block as they
// are read (never expanded wholesale), so results match float32 math on the dequantized weights.
package cpu
