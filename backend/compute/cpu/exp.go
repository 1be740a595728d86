package cpu

import "math"

// Fast float32 exp for softmax. The reference loop (expF32Go, also the purego build's implementation) is
//
//	for i, v := range x {
//		n := round(v * log2(e))                  // v = n·ln2 + r, |r| <= ln2/2
//		r := v - n*expC1 - n*expC2               // ln2 = expC1 + expC2, n*expC1 exact
//		p := 1 + r + r²·poly5(r)                 // degree-7 approximation of e^r
//		x[i] = p · 2^n
//	}
//
// with the special cases: v < expLo (e^v below the smallest normal float32) gives 0, so exp(-Inf) = 0;
// v > expHi gives +Inf (e^v overflows float32 from 88.72; (expHi, 88.72] also returns +Inf); NaN stays NaN.
// Measured error over [expLo, expHi] (exp_test.go sweep): at most 2 ulp of the correctly rounded result.
const (
	expLo    = -87.33654785 // float32 just below ln(2^-126): n >= -126 keeps 2^n normal
	expHi    = 88.37        // n <= 127 keeps 2^n finite
	expLog2e = 1.44269504088896341
	expC1    = 0.693359375     // 355/512: n*expC1 is exact for |n| <= 2^14
	expC2    = -2.12194440e-4  // ln2 - expC1
	expP0    = 1.9875691500e-4 // polynomial coefficients of (e^r - 1 - r)/r², highest first
	expP1    = 1.3981999507e-3 //
	expP2    = 8.3334519073e-3 //
	expP3    = 4.1665795894e-2 //
	expP4    = 1.6666665459e-1 //
	expP5    = 5.0000001201e-1 //
)

// expF32Go replaces each x[i] by e^x[i] (see the reference loop above).
func expF32Go(x []float32) {
	for i, v := range x {
		x[i] = exp32(v)
	}
}

// exp32 is one element of expF32Go.
func exp32(v float32) float32 {
	switch {
	case v != v:
		return v
	case v < expLo:
		return 0
	case v > expHi:
		return float32(math.Inf(1))
	}
	n := float32(math.RoundToEven(float64(v * expLog2e)))
	r := v - n*expC1
	r -= n * expC2
	p := float32(expP0)
	p = p*r + expP1
	p = p*r + expP2
	p = p*r + expP3
	p = p*r + expP4
	p = p*r + expP5
	y := p*(r*r) + r + 1
	return y * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// attnExpSumGo does row[i] = e^(row[i]-mx[i]); l[i] += float64(row[i]) for i < len(row): the exp and sum
// pass of the blocked attention's online softmax.
func attnExpSumGo(row, mx []float32, l []float64) {
	mx, l = mx[:len(row)], l[:len(row)]
	for i, v := range row {
		e := exp32(v - mx[i])
		row[i] = e
		l[i] += float64(e)
	}
}

// attnScaleMaxGo does row[i] *= scale; mx[i] = max(mx[i], row[i]) for i < len(row): the scale and max pass.
func attnScaleMaxGo(row, mx []float32, scale float32) {
	mx = mx[:len(row)]
	for i, v := range row {
		v *= scale
		row[i] = v
		mx[i] = max(mx[i], v)
	}
}

// rowScaleMaxGo is the reference loop of rowScaleMax.
func rowScaleMaxGo(row []float32, scale float32) float32 {
	m := float32(math.Inf(-1))
	for j, v := range row {
		v *= scale
		row[j] = v
		m = max(m, v)
	}
	return m
}

// rowExpSumGo is the reference loop of rowExpSum.
func rowExpSumGo(row []float32, sub float32) float64 {
	var s float64
	for j, v := range row {
		e := exp32(v - sub)
		row[j] = e
		s += float64(e)
	}
	return s
}
