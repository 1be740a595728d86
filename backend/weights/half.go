package weights

import "math"

// F16ToF32 converts an IEEE 754 binary16 value (as bits) to float32 exactly, including subnormals,
// infinities and NaN payloads.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN: keep the payload
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	}
	// Subnormal half: mant * 2^-24, which is a normal float32. Normalize the mantissa.
	e := uint32(113) // biased float32 exponent of 2^-14
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// F32ToF16 converts a float32 to IEEE 754 binary16 bits, rounding to nearest, ties to even. Values too
// large become ±Inf; NaN stays NaN (quiet, top payload bits kept).
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(mant>>13)
	}
	e := exp - 127 + 15 // biased half exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Result is subnormal (or zero): value = (1.mant) * 2^(exp-127); half subnormal unit is 2^-24.
		if e < -10 {
			return sign // below half of the smallest subnormal: rounds to zero
		}
		m := mant | 0x800000    // 24-bit significand with implicit one
		shift := uint32(14 - e) // bits to drop so that the unit becomes 2^-24
		half := uint32(1) << (shift - 1)
		q := m >> shift
		rem := m & (1<<shift - 1)
		if rem > half || (rem == half && q&1 == 1) {
			q++
		}
		return sign | uint16(q) // q may reach 0x400: the smallest normal, encoded correctly
	}
	q := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && q&1 == 1) {
		q++ // may carry into the exponent, up to 0x7c00 = Inf, which is correct
	}
	return sign | uint16(q)
}

// BF16ToF32 converts bfloat16 bits to float32 (exact: bf16 is the top half of a float32).
func BF16ToF32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// F32ToBF16 converts a float32 to bfloat16 bits, rounding to nearest, ties to even, as GGML's
// ggml_compute_fp32_to_bf16 does: NaN becomes a quiet NaN with the same sign and top payload bits.
func F32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16((u&0xffff0000 | 64<<16) >> 16)
	}
	return uint16((uint64(u) + uint64(0x7fff+(u>>16)&1)) >> 16)
}
