package weights

import (
	"encoding/binary"
	"fmt"
	"math"
)

// checkRow validates a (src, dst) pair for one row of n = len(dst) elements of type t.
func checkRow(t DType, srcLen, n int) error {
	rb, err := t.RowBytes(n)
	if err != nil {
		return err
	}
	if srcLen != rb {
		return fmt.Errorf("%v row of %d elements needs %d bytes, got %d", t, n, rb, srcLen)
	}
	return nil
}

func f16at(b []byte, off int) float32 { return F16ToF32(binary.LittleEndian.Uint16(b[off:])) }

// DequantizeRow expands one row of type t into float32: len(dst) elements from len(src) bytes, which
// must be exactly t.RowBytes(len(dst)). The results are bit-exact with GGML's dequantize_row_* and
// gguf-py's dequantize. Per block b of src (d, m, dmin as f16, all products in float32 in this order):
//
//	F32:  dst[i] = src as little-endian float32
//	F16:  dst[i] = F16ToF32(h[i]);  BF16: dst[i] = BF16ToF32(h[i])
//	Q8_0: {d, q[32] int8}:            dst[j] = float32(q[j]) * d
//	Q4_0: {d, qs[16]}:                dst[j] = d * float32(qs[j]&15 - 8); dst[j+16] = d * float32(qs[j]>>4 - 8)
//	Q4_1: {d, m, qs[16]}:             dst[j] = d*float32(qs[j]&15) + m;   dst[j+16] = d*float32(qs[j]>>4) + m
//	Q4_K: {d, dmin, scales[12], qs[128]}: for sub-block s in 0..7 (32 elements each), with 6-bit (sc, mn)
//	      = scaleMinK4(s, scales): dst[32s+l] = (d*sc)*float32(nibble) - dmin*mn, where sub-blocks 2k and
//	      2k+1 take the low and high nibbles of qs[32k : 32k+32]
//	Q6_K: {ql[128], qh[64], scales[16] int8, d}: for half h in 0..1 and l in 0..31, with L = ql[64h:],
//	      H = qh[32h:], S = scales[8h:], out = dst[128h:]:
//	      q1 = L[l]&15    | (H[l]>>0&3)<<4;  out[l]    = (d*S[l/16+0]) * float32(q1-32)
//	      q2 = L[l+32]&15 | (H[l]>>2&3)<<4;  out[l+32] = (d*S[l/16+2]) * float32(q2-32)
//	      q3 = L[l]>>4    | (H[l]>>4&3)<<4;  out[l+64] = (d*S[l/16+4]) * float32(q3-32)
//	      q4 = L[l+32]>>4 | (H[l]>>6&3)<<4;  out[l+96] = (d*S[l/16+6]) * float32(q4-32)
func DequantizeRow(t DType, src []byte, dst []float32) error {
	if err := checkRow(t, len(src), len(dst)); err != nil {
		return fmt.Errorf("dequantize: %w", err)
	}
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case Q8_0:
		for b := 0; b < len(dst)/32; b++ {
			blk, out := src[34*b:34*b+34], dst[32*b:32*b+32]
			d := f16at(blk, 0)
			for j := range 32 {
				out[j] = float32(int8(blk[2+j])) * d
			}
		}
	case Q4_0:
		for b := 0; b < len(dst)/32; b++ {
			blk, out := src[18*b:18*b+18], dst[32*b:32*b+32]
			d := f16at(blk, 0)
			for j := range 16 {
				q := blk[2+j]
				out[j] = d * float32(int(q&15)-8)
				out[j+16] = d * float32(int(q>>4)-8)
			}
		}
	case Q4_1:
		for b := 0; b < len(dst)/32; b++ {
			blk, out := src[20*b:20*b+20], dst[32*b:32*b+32]
			d, m := f16at(blk, 0), f16at(blk, 2)
			for j := range 16 {
				q := blk[4+j]
				// The explicit float32 conversions forbid fusing into an FMA, which would round differently.
				out[j] = float32(d*float32(q&15)) + m
				out[j+16] = float32(d*float32(q>>4)) + m
			}
		}
	case Q4_K:
		for b := 0; b < len(dst)/256; b++ {
			dequantQ4K(src[144*b:144*b+144], dst[256*b:256*b+256])
		}
	case Q6_K:
		for b := 0; b < len(dst)/256; b++ {
			dequantQ6K(src[210*b:210*b+210], dst[256*b:256*b+256])
		}
	default:
		return fmt.Errorf("dequantize: type %v not supported", t)
	}
	return nil
}

// scaleMinK4 unpacks the 6-bit scale and min of sub-block j (0..7) from Q4_K's 12 packed bytes: bytes 0-3
// hold scales 0-3 (low 6 bits), bytes 4-7 mins 0-3; sub-blocks 4-7 take their low 4 bits from bytes 8-11
// and their high 2 bits from the top bits of bytes 0-3 (scales) and 4-7 (mins).
func scaleMinK4(j int, q []byte) (sc, mn uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

func dequantQ4K(blk []byte, out []float32) {
	d, dmin := f16at(blk, 0), f16at(blk, 2)
	scales, qs := blk[4:16], blk[16:144]
	for k := range 4 {
		sc1, m1 := scaleMinK4(2*k, scales)
		sc2, m2 := scaleMinK4(2*k+1, scales)
		d1, dm1 := d*float32(sc1), dmin*float32(m1)
		d2, dm2 := d*float32(sc2), dmin*float32(m2)
		q := qs[32*k : 32*k+32]
		for l := range 32 {
			out[64*k+l] = float32(d1*float32(q[l]&15)) - dm1
			out[64*k+32+l] = float32(d2*float32(q[l]>>4)) - dm2
		}
	}
}

func dequantQ6K(blk []byte, out []float32) {
	ql, qh, sc := blk[0:128], blk[128:192], blk[192:208]
	d := f16at(blk, 208)
	for h := range 2 {
		L, H, S, o := ql[64*h:], qh[32*h:], sc[8*h:], out[128*h:]
		for l := range 32 {
			is := l / 16
			q1 := int(L[l]&15|(H[l]>>0&3)<<4) - 32
			q2 := int(L[l+32]&15|(H[l]>>2&3)<<4) - 32
			q3 := int(L[l]>>4|(H[l]>>4&3)<<4) - 32
			q4 := int(L[l+32]>>4|(H[l]>>6&3)<<4) - 32
			o[l] = float32(d*float32(int8(S[is+0]))) * float32(q1)
			o[l+32] = float32(d*float32(int8(S[is+2]))) * float32(q2)
			o[l+64] = float32(d*float32(int8(S[is+4]))) * float32(q3)
			o[l+96] = float32(d*float32(int8(S[is+6]))) * float32(q4)
		}
	}
}
