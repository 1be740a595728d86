package weights

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/internal/testmodel"
)

// goldenRecord is one case of testdata/quant_golden.bin, written by testdata/gen_quant_golden.py with
// gguf-py (see that script for the layout).
type goldenRecord struct {
	kind  uint32 // 0: dequantize src -> want; 1: quantize x -> want bytes
	typ   DType
	name  string
	bytes []byte    // quantized bytes (source for kind 0, expected for kind 1)
	vals  []float32 // float values (expected for kind 0, source for kind 1)
}

func readGolden(t *testing.T) []goldenRecord {
	t.Helper()
	b, err := os.ReadFile("testdata/quant_golden.bin")
	if err != nil {
		t.Fatal(err)
	}
	c := &cursor{b: b}
	magic, err := c.take(8, "magic")
	if err != nil || string(magic) != "OKVQG001" {
		t.Fatalf("quant_golden.bin: bad magic %q (%v)", magic, err)
	}
	u32 := func() uint32 {
		v, err := c.u32("field")
		if err != nil {
			t.Fatalf("quant_golden.bin: %v", err)
		}
		return v
	}
	if v := u32(); v != 1 {
		t.Fatalf("quant_golden.bin: version %d", v)
	}
	n := int(u32())
	recs := make([]goldenRecord, n)
	for i := range recs {
		r := &recs[i]
		r.kind, r.typ = u32(), DType(u32())
		nelem, nbytes, nlen := int(u32()), int(u32()), int(u32())
		name, _ := c.take(nlen, "name")
		r.name = string(name)
		floats := func() []float32 {
			p, err := c.take(4*nelem, "floats")
			if err != nil {
				t.Fatalf("quant_golden.bin %s: %v", r.name, err)
			}
			out := make([]float32, nelem)
			for j := range out {
				out[j] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*j:]))
			}
			return out
		}
		raw := func() []byte {
			p, err := c.take(nbytes, "bytes")
			if err != nil {
				t.Fatalf("quant_golden.bin %s: %v", r.name, err)
			}
			return p
		}
		if r.kind == 0 {
			r.bytes, r.vals = raw(), floats()
		} else {
			r.vals, r.bytes = floats(), raw()
		}
	}
	if c.left() != 0 {
		t.Fatalf("quant_golden.bin: %d trailing bytes", c.left())
	}
	return recs
}

// TestDequantizeGolden checks DequantizeRow bit for bit against gguf-py on synthetic blocks of every
// type and on rows of the real model.
func TestDequantizeGolden(t *testing.T) {
	seen := map[DType]bool{}
	for _, r := range readGolden(t) {
		if r.kind != 0 {
			continue
		}
		seen[r.typ] = true
		t.Run(r.name, func(t *testing.T) {
			got := make([]float32, len(r.vals))
			if err := DequantizeRow(r.typ, r.bytes, got); err != nil {
				t.Fatal(err)
			}
			bad := 0
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(r.vals[i]) {
					if bad < 5 {
						t.Errorf("element %d: got %v (%#08x), want %v (%#08x)", i, got[i],
							math.Float32bits(got[i]), r.vals[i], math.Float32bits(r.vals[i]))
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d elements differ", bad, len(got))
			}
		})
	}
	for _, typ := range []DType{F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K, Q6_K} {
		if !seen[typ] {
			t.Errorf("golden file has no dequantize case for %v", typ)
		}
	}
}

// TestQuantizeGolden checks QuantizeRow bit for bit against gguf-py's quantizers.
func TestQuantizeGolden(t *testing.T) {
	n := 0
	for _, r := range readGolden(t) {
		if r.kind != 1 {
			continue
		}
		n++
		t.Run(r.name, func(t *testing.T) {
			got := make([]byte, len(r.bytes))
			if err := QuantizeRow(r.typ, r.vals, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, r.bytes) {
				for i := range got {
					if got[i] != r.bytes[i] {
						t.Fatalf("first difference at byte %d: got %#02x, want %#02x", i, got[i], r.bytes[i])
					}
				}
			}
		})
	}
	if n < 5 {
		t.Errorf("golden file has %d quantize cases, want 5", n)
	}
}

// The model rows in the golden file must be the bytes the reader finds in the real model.
func TestGoldenRowsMatchModel(t *testing.T) {
	s, err := Open(testmodel.SmolLM2(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	for _, r := range readGolden(t) {
		var name string
		var row int
		if _, err := fmt.Sscanf(r.name, "model %s row %d", &name, &row); err != nil {
			continue
		}
		n++
		tt, err := s.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tt.Row(row), r.bytes) {
			t.Errorf("%s: row %d differs from the golden source bytes", name, row)
		}
	}
	if n == 0 {
		t.Fatal("golden file has no model rows")
	}
}

func TestQuantizeRoundTripError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 256)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	tests := []struct {
		typ    DType
		maxRel float64 // worst |error| relative to the block's max |x|
	}{
		{F32, 0}, {F16, 1e-3}, {BF16, 8e-3}, {Q8_0, 1.0 / 127}, {Q4_1, 1.0 / 15}, {Q4_0, 1.0 / 8},
	}
	for _, tc := range tests {
		t.Run(tc.typ.String(), func(t *testing.T) {
			rb, _ := tc.typ.RowBytes(len(x))
			q := make([]byte, rb)
			if err := QuantizeRow(tc.typ, x, q); err != nil {
				t.Fatal(err)
			}
			y := make([]float32, len(x))
			if err := DequantizeRow(tc.typ, q, y); err != nil {
				t.Fatal(err)
			}
			for b := 0; b < len(x); b += 32 {
				var amax float64
				for _, v := range x[b : b+32] {
					amax = max(amax, math.Abs(float64(v)))
				}
				for i := b; i < b+32; i++ {
					if e := math.Abs(float64(y[i] - x[i])); e > tc.maxRel*amax*1.01 {
						t.Fatalf("element %d: %v -> %v, error %.3g > %.3g", i, x[i], y[i], e, tc.maxRel*amax)
					}
				}
			}
		})
	}
}

func TestRowSizeErrors(t *testing.T) {
	tests := []struct {
		name   string
		typ    DType
		src    int // bytes
		n      int // elements
		errHas string
	}{
		{"short src", Q8_0, 33, 32, "needs 34 bytes"},
		{"long src", F32, 12, 2, "needs 8 bytes"},
		{"partial block", Q4_0, 18, 31, "not a whole number"},
		{"unknown type", DType(6), 22, 32, "unknown tensor type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := DequantizeRow(tc.typ, make([]byte, tc.src), make([]float32, tc.n))
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("DequantizeRow: %v, want error containing %q", err, tc.errHas)
			}
		})
	}
	if err := QuantizeRow(Q4_K, make([]float32, 256), make([]byte, 144)); err == nil {
		t.Error("QuantizeRow(Q4_K) succeeded; it has no reference quantizer")
	}
}
