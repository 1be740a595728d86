package weights

import (
	"encoding/binary"
	"fmt"
	"math"
)

// QuantizeRow stores one row of len(src) float32 values as type t into dst, which must be exactly
// t.RowBytes(len(src)) bytes. These are GGML's simple reference quantizers (bit-exact with gguf-py's
// quantize), meant for building synthetic weights in tests and tools, not for quality. Per block of 32:
//
//	F32/F16/BF16: element-wise (F16 and BF16 round to nearest, ties to even)
//	Q8_0: amax = max|x|; d = amax/127; id = 1/d (0 if d == 0); q[j] = roundHalfAway(x[j]*id); store f16(d)
//	Q4_0: v = the x with the largest |x|; d = v / -8; id = 1/d (0 if d == 0);
//	      q[j] = clamp(trunc(x[j]*id + 8.5), 0, 15); qs[j] = q[j] | q[j+16]<<4; store f16(d)
//	Q4_1: lo, hi = min, max; d = (hi-lo)/15; id = 1/d (0 if d == 0);
//	      q[j] = clamp(trunc((x[j]-lo)*id + 0.5), 0, 15); store f16(d), f16(lo)
func QuantizeRow(t DType, src []float32, dst []byte) error {
	if err := checkRow(t, len(dst), len(src)); err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	switch t {
	case F32:
		for i, x := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(x))
		}
	case F16:
		for i, x := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], F32ToF16(x))
		}
	case BF16:
		for i, x := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], F32ToBF16(x))
		}
	case Q8_0:
		for b := 0; b < len(src)/32; b++ {
			quantQ8_0(src[32*b:32*b+32], dst[34*b:34*b+34])
		}
	case Q4_0:
		for b := 0; b < len(src)/32; b++ {
			quantQ4_0(src[32*b:32*b+32], dst[18*b:18*b+18])
		}
	case Q4_1:
		for b := 0; b < len(src)/32; b++ {
			quantQ4_1(src[32*b:32*b+32], dst[20*b:20*b+20])
		}
	default:
		return fmt.Errorf("quantize: type %v not supported (only F32, F16, BF16, Q8_0, Q4_0, Q4_1)", t)
	}
	return nil
}

func inverse(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

// clampNibble truncates v toward zero and clamps it to 0..15.
func clampNibble(v float32) uint8 {
	t := float32(math.Trunc(float64(v)))
	switch {
	case !(t >= 0): // also NaN
		return 0
	case t > 15:
		return 15
	}
	return uint8(t)
}

func quantQ8_0(x []float32, out []byte) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	id := inverse(d)
	binary.LittleEndian.PutUint16(out, F32ToF16(d))
	for j, v := range x {
		out[2+j] = byte(int8(math.Round(float64(float32(v * id)))))
	}
}

func quantQ4_0(x []float32, out []byte) {
	var amax, vmax float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, vmax = a, v
		}
	}
	d := vmax / -8
	id := inverse(d)
	binary.LittleEndian.PutUint16(out, F32ToF16(d))
	for j := range 16 {
		lo := clampNibble(float32(x[j]*id) + 8.5)
		hi := clampNibble(float32(x[j+16]*id) + 8.5)
		out[2+j] = lo | hi<<4
	}
}

func quantQ4_1(x []float32, out []byte) {
	lo, hi := x[0], x[0]
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	d := (hi - lo) / 15
	id := inverse(d)
	binary.LittleEndian.PutUint16(out, F32ToF16(d))
	binary.LittleEndian.PutUint16(out[2:], F32ToF16(lo))
	for j := range 16 {
		a := clampNibble(float32((x[j]-lo)*id) + 0.5)
		b := clampNibble(float32((x[j+16]-lo)*id) + 0.5)
		out[4+j] = a | b<<4
	}
}
