//go:build amd64 && !purego

package cpu

// expF32AVX replaces x[i] by e^x[i] for i < len(x) rounded down to a multiple of 8; c is expConsts.
//
//go:noescape
func expF32AVX(x []float32, c *[16]float32)

// expF32 replaces each x[i] by e^x[i] (see exp.go). The last len(x)%8 values go through an 8-wide buffer so
// that every element gets the same assembly arithmetic.
func expF32(x []float32) {
	if !hasAVX2 {
		expF32Go(x)
		return
	}
	n8 := len(x) &^ 7
	if n8 > 0 {
		expF32AVX(x[:n8], &expConsts)
	}
	if n8 < len(x) {
		var tmp [8]float32
		tail := x[n8:]
		copy(tmp[:], tail)
		expF32AVX(tmp[:], &expConsts)
		copy(tail, tmp[:])
	}
}
