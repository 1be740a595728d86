// Package cpu is the reference implementation of compute.Device: pure Go for the logic, with Go assembly for
// the hot loops on amd64 (matrix-vector products over every weight type, f32/f16 dot products and axpy) and a
// pure-Go twin of each loop selected by the build tag purego. Work is spread over all cores by a persistent
// worker pool; a decode step allocates nothing.
//
// On CPUs with AVX-512 (F, BW, VL), Bind repacks Q4_1 and Q8_0 matrices into groups of 16 interleaved rows
// (packed.go): the same bytes in another order, read by kernels that produce 16 outputs per vector. The
// file's pages of a repacked tensor are released, so resident memory stays about the file's size, and
// devices of one process share the packed copy of equal bytes (packcache.go).
//
// Numerics: activations and accumulations are float32, weights are dequantized exactly block by block as they
// are read (never expanded wholesale), so results match float32 math on the dequantized weights (up to the
// order of the float32 additions).
package cpu
