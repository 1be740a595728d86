package cpu

import "math"

// Pure-Go vector loops. They are the reference semantics of the assembly kernels (vec_amd64.s) and the
// implementation used by the purego build, by non-amd64 builds and on CPUs without AVX2/FMA/F16C.

// dotF32Go returns sum_i a[i]*b[i] over len(a) elements (len(b) >= len(a)).
func dotF32Go(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyF32Go does y[i] += a*x[i] for i < len(y) (len(x) >= len(y)).
func axpyF32Go(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	for i, v := range x {
		y[i] += a * v
	}
}

// dotF16Go returns sum_i f16(a[i])*b[i] over len(a) elements.
func dotF16Go(a []uint16, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(a); i += 2 {
		s0 += f16(a[i]) * b[i]
		s1 += f16(a[i+1]) * b[i+1]
	}
	for ; i < len(a); i++ {
		s0 += f16(a[i]) * b[i]
	}
	return s0 + s1
}

// axpyF16Go does y[i] += a*f16(x[i]) for i < len(y).
func axpyF16Go(y []float32, a float32, x []uint16) {
	x = x[:len(y)]
	for i, v := range x {
		y[i] += a * f16(v)
	}
}

// dotBF16Go returns sum_i bf16(a[i])*b[i] over len(a) elements.
func dotBF16Go(a []uint16, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(a); i += 2 {
		s0 += math.Float32frombits(uint32(a[i])<<16) * b[i]
		s1 += math.Float32frombits(uint32(a[i+1])<<16) * b[i+1]
	}
	for ; i < len(a); i++ {
		s0 += math.Float32frombits(uint32(a[i])<<16) * b[i]
	}
	return s0 + s1
}

// scaleF32Go does x[i] *= a.
func scaleF32Go(x []float32, a float32) {
	for i := range x {
		x[i] *= a
	}
}

// f16 converts IEEE binary16 bits to float32 exactly (normals, subnormals, zeros, infinities, NaN).
func f16(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0: // zero or subnormal: mant * 2^-24, exact in float32
		v := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(math.Float32bits(v) | sign)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}
