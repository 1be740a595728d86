//go:build amd64 && !purego

package cpu

import "math"

// expConsts holds the constants in the order the assembly kernel reads them (byte offset = 4*index).
var expConsts = [16]float32{
	expLo, expHi, expLog2e, expC1, expC2, expP0, expP1, expP2, expP3, expP4, expP5, 1,
	float32(math.Inf(1)), 0, 0, 0,
}

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

//go:noescape
func attnExpSumAVX(row, mx []float32, l []float64, c *[16]float32)

//go:noescape
func attnScaleMaxAVX(row, mx []float32, scale float32)

// attnExpSum does row[i] = e^(row[i]-mx[i]); l[i] += float64(row[i]) for i < len(row).
func attnExpSum(row, mx []float32, l []float64) {
	mx, l = mx[:len(row)], l[:len(row)]
	n8 := 0
	if hasAVX2 {
		n8 = len(row) &^ 7
		attnExpSumAVX(row[:n8], mx[:n8], l[:n8], &expConsts)
	}
	attnExpSumGo(row[n8:], mx[n8:], l[n8:])
}

// attnScaleMax does row[i] *= scale; mx[i] = max(mx[i], row[i]) for i < len(row).
func attnScaleMax(row, mx []float32, scale float32) {
	mx = mx[:len(row)]
	n8 := 0
	if hasAVX2 {
		n8 = len(row) &^ 7
		attnScaleMaxAVX(row[:n8], mx[:n8], scale)
	}
	attnScaleMaxGo(row[n8:], mx[n8:], scale)
}

//go:noescape
func rowScaleMaxAVX(row []float32, scale float32) float32

//go:noescape
func rowExpSumAVX(row []float32, sub *[8]float32, c *[16]float32) float64

// rowScaleMax does row[i] *= scale and returns the largest row[i] (-Inf for an empty row).
func rowScaleMax(row []float32, scale float32) float32 {
	n8 := 0
	m := float32(math.Inf(-1))
	if hasAVX2 {
		n8 = len(row) &^ 7
		m = rowScaleMaxAVX(row[:n8], scale)
	}
	return max(m, rowScaleMaxGo(row[n8:], scale))
}

// rowExpSum does row[i] = e^(row[i]-sub) and returns the sum of the results in float64.
func rowExpSum(row []float32, sub float32) float64 {
	n8, s := 0, 0.0
	if hasAVX2 {
		n8 = len(row) &^ 7
		subs := [8]float32{sub, sub, sub, sub, sub, sub, sub, sub}
		s = rowExpSumAVX(row[:n8], &subs, &expConsts)
	}
	return s + rowExpSumGo(row[n8:], sub)
}
