package cpu

import (
	"encoding/binary"
	"math"
)

// Pure-Go dequantization and row dot products for every weight type, in GGML block layouts. The dequant
// functions are the reference for the assembly kernels; the K-quant ones are used by every build.
//
// Each dequant function writes len(dst) values (a whole number of blocks) from w, which holds exactly
// those blocks. Each row dot returns sum_i dequant(w)[i]*x[i] over len(x) values.

const (
	q4_0Bytes = 18  // f16 d, 16 bytes of nibbles
	q4_1Bytes = 20  // f16 d, f16 m, 16 bytes of nibbles
	q8_0Bytes = 34  // f16 d, 32 int8
	q4_KBytes = 144 // f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles
	q6_KBytes = 210 // 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 int8 scales, f16 d
)

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }

// dequantF32Go: w holds little-endian float32 values.
func dequantF32Go(dst []float32, w []byte) {
	w = w[:4*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:]))
	}
}

// dequantF16Go: w holds IEEE binary16 values.
func dequantF16Go(dst []float32, w []byte) {
	w = w[:2*len(dst)]
	for i := range dst {
		dst[i] = f16(le16(w[2*i:]))
	}
}

// dequantBF16Go: w holds bfloat16 values (the top half of a float32).
func dequantBF16Go(dst []float32, w []byte) {
	w = w[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(le16(w[2*i:])) << 16)
	}
}

// dequantQ4_0Go: per block of 32, x[j] = (q[j]-8)*d, q[j] = low nibble of byte j for j < 16, high nibble of
// byte j-16 otherwise.
func dequantQ4_0Go(dst []float32, w []byte) {
	for b := 0; b < len(dst)/32; b++ {
		blk := w[b*q4_0Bytes : (b+1)*q4_0Bytes]
		d := f16(le16(blk))
		o := dst[b*32 : b*32+32]
		for j, q := range blk[2:18] {
			o[j] = float32(int(q&15)-8) * d
			o[j+16] = float32(int(q>>4)-8) * d
		}
	}
}

// dequantQ4_1Go: per block of 32, x[j] = q[j]*d + m with nibbles as in Q4_0.
func dequantQ4_1Go(dst []float32, w []byte) {
	for b := 0; b < len(dst)/32; b++ {
		blk := w[b*q4_1Bytes : (b+1)*q4_1Bytes]
		d, m := f16(le16(blk)), f16(le16(blk[2:]))
		o := dst[b*32 : b*32+32]
		for j, q := range blk[4:20] {
			o[j] = float32(q&15)*d + m
			o[j+16] = float32(q>>4)*d + m
		}
	}
}

// dequantQ8_0Go: per block of 32, x[j] = int8(q[j])*d.
func dequantQ8_0Go(dst []float32, w []byte) {
	for b := 0; b < len(dst)/32; b++ {
		blk := w[b*q8_0Bytes : (b+1)*q8_0Bytes]
		d := f16(le16(blk))
		o := dst[b*32 : b*32+32]
		for j, q := range blk[2:34] {
			o[j] = float32(int8(q)) * d
		}
	}
}

// q4KScaleMin unpacks the 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes s: for j < 4 the
// low 6 bits of s[j] and s[j+4]; for j >= 4 the nibbles of s[j+4] with the top 2 bits of s[j-4] and s[j]
// as their high bits.
func q4KScaleMin(s []byte, j int) (sc, mn uint8) {
	if j < 4 {
		return s[j] & 63, s[j+4] & 63
	}
	return s[j+4]&15 | (s[j-4]>>6)<<4, s[j+4]>>4 | (s[j]>>6)<<4
}

// dequantQ4_KBlock expands one 256-value Q4_K super-block: 4 chunks of 64 values, chunk c using the 32 bytes
// qs[32c:32c+32], low nibbles for sub-block 2c, high nibbles for sub-block 2c+1; value = d*sc*q - dmin*mn.
func dequantQ4_KBlock(o *[256]float32, blk []byte) {
	blk = blk[:q4_KBytes]
	d, dmin := f16(le16(blk)), f16(le16(blk[2:]))
	scales, qs := blk[4:16], blk[16:144]
	for c := 0; c < 4; c++ {
		sc0, m0 := q4KScaleMin(scales, 2*c)
		sc1, m1 := q4KScaleMin(scales, 2*c+1)
		d0, dm0 := d*float32(sc0), dmin*float32(m0)
		d1, dm1 := d*float32(sc1), dmin*float32(m1)
		lo, hi := o[64*c:64*c+32], o[64*c+32:64*c+64]
		for l, q := range qs[32*c : 32*c+32] {
			lo[l] = d0*float32(q&15) - dm0
			hi[l] = d1*float32(q>>4) - dm1
		}
	}
}

// dequantQ6_KBlock expands one 256-value Q6_K super-block: two halves of 128 values; in half h, value
// 32g+l (g = 0..3, l = 0..31) has low 4 bits from ql[64h + l + 32(g&1)] (low nibble for g < 2, high nibble
// otherwise) and high 2 bits from qh[32h+l] >> 2g; value = (d * scale[(128h+32g+l)/16]) * (q - 32).
func dequantQ6_KBlock(o *[256]float32, blk []byte) {
	blk = blk[:q6_KBytes]
	d := f16(le16(blk[208:]))
	for h := 0; h < 2; h++ {
		ql, qh, sc := blk[64*h:64*h+64], blk[128+32*h:128+32*h+32], blk[192+8*h:192+8*h+8]
		out := o[128*h : 128*h+128]
		for half := 0; half < 2; half++ { // l in [16*half, 16*half+16) shares the scales sc[half+2g]
			s0 := d * float32(int8(sc[half]))
			s1 := d * float32(int8(sc[half+2]))
			s2 := d * float32(int8(sc[half+4]))
			s3 := d * float32(int8(sc[half+6]))
			for l := 16 * half; l < 16*half+16; l++ {
				a, b, hb := ql[l], ql[l+32], qh[l]
				out[l] = s0 * float32(int(a&15|(hb&3)<<4)-32)
				out[l+32] = s1 * float32(int(b&15|(hb>>2&3)<<4)-32)
				out[l+64] = s2 * float32(int(a>>4|(hb>>4&3)<<4)-32)
				out[l+96] = s3 * float32(int(b>>4|(hb>>6)<<4)-32)
			}
		}
	}
}

func dequantQ4_KGo(dst []float32, w []byte) {
	for b := 0; b < len(dst)/256; b++ {
		dequantQ4_KBlock((*[256]float32)(dst[256*b:]), w[b*q4_KBytes:])
	}
}

func dequantQ6_KGo(dst []float32, w []byte) {
	for b := 0; b < len(dst)/256; b++ {
		dequantQ6_KBlock((*[256]float32)(dst[256*b:]), w[b*q6_KBytes:])
	}
}

// rowDotQ4_K dequantizes one super-block at a time into a stack buffer and takes its dot product with x.
func rowDotQ4_K(w []byte, x []float32) float32 {
	var buf [256]float32
	var s float32
	for b := 0; b < len(x)/256; b++ {
		dequantQ4_KBlock(&buf, w[b*q4_KBytes:])
		s += dotF32(buf[:], x[256*b:256*b+256])
	}
	return s
}

// rowDotQ6_K is rowDotQ4_K for Q6_K.
func rowDotQ6_K(w []byte, x []float32) float32 {
	var buf [256]float32
	var s float32
	for b := 0; b < len(x)/256; b++ {
		dequantQ6_KBlock(&buf, w[b*q6_KBytes:])
		s += dotF32(buf[:], x[256*b:256*b+256])
	}
	return s
}

// rowDotQ4_0Go is the fused pure-Go row dot for Q4_0.
func rowDotQ4_0Go(w []byte, x []float32) float32 {
	var s float32
	for b := 0; b < len(x)/32; b++ {
		blk := w[b*q4_0Bytes : (b+1)*q4_0Bytes]
		d := f16(le16(blk))
		xs := x[32*b : 32*b+32]
		var s0, s1 float32
		for j, q := range blk[2:18] {
			s0 += float32(int(q&15)-8) * d * xs[j]
			s1 += float32(int(q>>4)-8) * d * xs[j+16]
		}
		s += s0 + s1
	}
	return s
}

// rowDotQ4_1Go is the fused pure-Go row dot for Q4_1.
func rowDotQ4_1Go(w []byte, x []float32) float32 {
	var s float32
	for b := 0; b < len(x)/32; b++ {
		blk := w[b*q4_1Bytes : (b+1)*q4_1Bytes]
		d, m := f16(le16(blk)), f16(le16(blk[2:]))
		xs := x[32*b : 32*b+32]
		var s0, s1 float32
		for j, q := range blk[4:20] {
			s0 += (float32(q&15)*d + m) * xs[j]
			s1 += (float32(q>>4)*d + m) * xs[j+16]
		}
		s += s0 + s1
	}
	return s
}

// rowDotQ8_0Go is the fused pure-Go row dot for Q8_0.
func rowDotQ8_0Go(w []byte, x []float32) float32 {
	var s float32
	for b := 0; b < len(x)/32; b++ {
		blk := w[b*q8_0Bytes : (b+1)*q8_0Bytes]
		d := f16(le16(blk))
		xs := x[32*b : 32*b+32]
		var s0, s1 float32
		for j := 0; j < 32; j += 2 {
			s0 += float32(int8(blk[2+j])) * d * xs[j]
			s1 += float32(int8(blk[3+j])) * d * xs[j+1]
		}
		s += s0 + s1
	}
	return s
}

// rowDotF32Go is the pure-Go row dot for F32 weights stored little-endian.
func rowDotF32Go(w []byte, x []float32) float32 {
	w = w[:4*len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := w[4*i : 4*i+16]
		s0 += math.Float32frombits(binary.LittleEndian.Uint32(v)) * x[i]
		s1 += math.Float32frombits(binary.LittleEndian.Uint32(v[4:])) * x[i+1]
		s2 += math.Float32frombits(binary.LittleEndian.Uint32(v[8:])) * x[i+2]
		s3 += math.Float32frombits(binary.LittleEndian.Uint32(v[12:])) * x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:])) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// rowDotF16Go and rowDotBF16Go convert 256 values at a time into a stack buffer and take its dot product
// with x.
func rowDotF16Go(w []byte, x []float32) float32 {
	var buf [256]float32
	var s float32
	for off := 0; off < len(x); off += 256 {
		k := min(256, len(x)-off)
		dequantF16Go(buf[:k], w[2*off:])
		s += dotF32Go(buf[:k], x[off:off+k])
	}
	return s
}

func rowDotBF16Go(w []byte, x []float32) float32 {
	var buf [256]float32
	var s float32
	for off := 0; off < len(x); off += 256 {
		k := min(256, len(x)-off)
		dequantBF16Go(buf[:k], w[2*off:])
		s += dotF32Go(buf[:k], x[off:off+k])
	}
	return s
}

// tile4x3Go writes (or adds, when add) out[t*ldo+r] = sum_{i<k} x[t*ldx+i]*w[r*ldw+i] for t < 4, r < 3.
func tile4x3Go(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, k int, add bool) {
	x0, x1, x2, x3 := x[:k], x[ldx:ldx+k], x[2*ldx:2*ldx+k], x[3*ldx:3*ldx+k]
	w0, w1, w2 := w[:k], w[ldw:ldw+k], w[2*ldw:2*ldw+k]
	var s00, s01, s02, s10, s11, s12, s20, s21, s22, s30, s31, s32 float32
	for i := range w0 {
		a, b, c := w0[i], w1[i], w2[i]
		s00 += x0[i] * a
		s01 += x0[i] * b
		s02 += x0[i] * c
		s10 += x1[i] * a
		s11 += x1[i] * b
		s12 += x1[i] * c
		s20 += x2[i] * a
		s21 += x2[i] * b
		s22 += x2[i] * c
		s30 += x3[i] * a
		s31 += x3[i] * b
		s32 += x3[i] * c
	}
	if add {
		s00, s01, s02 = s00+out[0], s01+out[1], s02+out[2]
		s10, s11, s12 = s10+out[ldo], s11+out[ldo+1], s12+out[ldo+2]
		s20, s21, s22 = s20+out[2*ldo], s21+out[2*ldo+1], s22+out[2*ldo+2]
		s30, s31, s32 = s30+out[3*ldo], s31+out[3*ldo+1], s32+out[3*ldo+2]
	}
	out[0], out[1], out[2] = s00, s01, s02
	out[ldo], out[ldo+1], out[ldo+2] = s10, s11, s12
	out[2*ldo], out[2*ldo+1], out[2*ldo+2] = s20, s21, s22
	out[3*ldo], out[3*ldo+1], out[3*ldo+2] = s30, s31, s32
}

// tile1x3Go is tile4x3Go for one token, with the same arithmetic per output.
func tile1x3Go(out []float32, x []float32, w []float32, ldw int, k int, add bool) {
	x0 := x[:k]
	w0, w1, w2 := w[:k], w[ldw:ldw+k], w[2*ldw:2*ldw+k]
	var s00, s01, s02 float32
	for i := range w0 {
		a, b, c := w0[i], w1[i], w2[i]
		s00 += x0[i] * a
		s01 += x0[i] * b
		s02 += x0[i] * c
	}
	if add {
		s00, s01, s02 = s00+out[0], s01+out[1], s02+out[2]
	}
	out[0], out[1], out[2] = s00, s01, s02
}
