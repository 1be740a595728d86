package weights

import (
	"math"
	"testing"
)

func TestF16ToF32(t *testing.T) {
	tests := []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x3555, 0.333251953125},
		{0x7bff, 65504},
		{0x0400, 6.103515625e-05},        // smallest normal
		{0x0001, 5.960464477539063e-08},  // smallest subnormal
		{0x03ff, 6.097555160522461e-05},  // largest subnormal
		{0x8001, -5.960464477539063e-08}, // negative subnormal
		{0x7c00, float32(math.Inf(1))},   // +Inf
		{0xfc00, float32(math.Inf(-1))},  // -Inf
		{0x0200, 3.0517578125e-05},       // subnormal 2^-15
		{0x3bff, 0.99951171875},          // just below one
		{0x4248, 3.140625},               // pi-ish
		{0xfbff, -65504},                 // lowest
		{0x1400, 0.0009765625},           // 2^-10
		{0x0010, 9.5367431640625e-07},    // 2^-20
		{0x5640, 100},                    // integer
		{0xd640, -100},                   // negative integer
		{0x3800, 0.5},                    // a half
		{0x8000, float32(math.Copysign(0, -1))},
	}
	for _, tc := range tests {
		if got := F16ToF32(tc.h); math.Float32bits(got) != math.Float32bits(tc.want) {
			t.Errorf("F16ToF32(%#04x) = %v, want %v", tc.h, got, tc.want)
		}
	}
	if got := F16ToF32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("F16ToF32(NaN) = %v", got)
	}
}

// Every finite or infinite half survives F16 -> F32 -> F16; NaNs stay NaN.
func TestF16RoundTripAll(t *testing.T) {
	for h := range 1 << 16 {
		f := F16ToF32(uint16(h))
		back := F32ToF16(f)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("half %#04x -> %v -> %#04x", h, f, back)
		}
	}
}

func TestF32ToF16Rounding(t *testing.T) {
	tests := []struct {
		f    float32
		want uint16
	}{
		{1.0009765625, 0x3c01},  // exactly representable
		{1.00048828125, 0x3c00}, // tie between 0x3c00 and 0x3c01: even wins
		{1.00146484375, 0x3c02}, // tie between 0x3c01 and 0x3c02: even wins
		{65519.99, 0x7bff},      // rounds down to max
		{65520, 0x7c00},         // tie at max rounds up to Inf
		{1e10, 0x7c00},          // overflow
		{2.9802322e-08, 0x0000}, // 2^-25: tie with zero, even (zero) wins
		{2.9802326e-08, 0x0001}, // just above 2^-25
		{8.940697e-08, 0x0002},  // 1.5 * 2^-24: tie, even (2) wins
		{6.1035156e-05, 0x0400}, // smallest normal
		{6.1e-05, 0x03ff},       // largest subnormal region
		{1e-9, 0x0000},          // underflow
		{-1e-9, 0x8000},         // signed underflow
	}
	for _, tc := range tests {
		if got := F32ToF16(tc.f); got != tc.want {
			t.Errorf("F32ToF16(%v) = %#04x, want %#04x", tc.f, got, tc.want)
		}
	}
}

func TestBF16(t *testing.T) {
	tests := []struct {
		bits uint32 // float32 input bits
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81}, // above tie
		{0x7f7fffff, 0x7f80}, // max float rounds to Inf
		{0x7f800000, 0x7f80}, // Inf
		{0xff800000, 0xff80}, // -Inf
		{0x7fa00001, 0x7fe0}, // signalling NaN becomes quiet NaN
		{0x80000000, 0x8000}, // -0
	}
	for _, tc := range tests {
		if got := F32ToBF16(math.Float32frombits(tc.bits)); got != tc.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", tc.bits, got, tc.want)
		}
	}
	for b := range 1 << 16 {
		f := BF16ToF32(uint16(b))
		if math.IsNaN(float64(f)) {
			continue
		}
		if got := F32ToBF16(f); got != uint16(b) {
			t.Fatalf("bf16 %#04x -> %v -> %#04x", b, f, got)
		}
	}
}
