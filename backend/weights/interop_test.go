package weights

import (
	"bytes"
	"math"
	"reflect"
	"testing"
)

// interopValue is gen_interop.py's value(n): sin(0.731 i) * (1 + i%7), computed in float64 and
// rounded to float32.
func interopValue(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(math.Sin(float64(i)*0.731) * float64(1+i%7))
	}
	return out
}

// interopPattern is gen_interop.py's pattern(n): byte i is (7i + 3) mod 256.
func interopPattern(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = byte((i*7 + 3) % 256)
	}
	return out
}

// interopBytes is what a tensor of typ and shape written by gen_interop.py must hold.
func interopBytes(t *testing.T, typ DType, shape []int) []byte {
	tt := &Tensor{Type: typ, Shape: shape}
	rb, err := typ.RowBytes(tt.Cols())
	if err != nil {
		t.Fatal(err)
	}
	if typ == Q4_K || typ == Q6_K {
		return interopPattern(tt.Rows() * rb)
	}
	x := interopValue(tt.NumElements())
	out := make([]byte, tt.Rows()*rb)
	for r := range tt.Rows() {
		if err := QuantizeRow(typ, x[r*tt.Cols():(r+1)*tt.Cols()], out[r*rb:(r+1)*rb]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestReadGGUFFromReferenceWriter reads a file written by gguf-py's GGUFWriter (64-byte alignment, every
// metadata type, nested arrays, every supported tensor type).
func TestReadGGUFFromReferenceWriter(t *testing.T) {
	s, err := Open("testdata/interop/pywritten_gguf.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Format != "gguf" {
		t.Fatalf("format %q", s.Format)
	}
	wantKV := map[string]any{
		"general.architecture": "llama", "general.alignment": uint32(64),
		"t.u8": uint8(200), "t.i8": int8(-100), "t.u16": uint16(60000), "t.i16": int16(-30000),
		"t.u32": uint32(4000000000), "t.i32": int32(-2000000000), "t.f32": float32(0.1), "t.bool": true,
		"t.str": "héllo wörld", "t.u64": uint64(1) << 60, "t.i64": int64(-1) << 60, "t.f64": 0.1,
		"t.arr_i32": []int32{1, -2, 3}, "t.arr_f32": []float32{0.5, -0.25}, "t.arr_str": []string{"a", "", "ccc"},
		"t.arr_bool": []bool{true, false}, "t.nested": []any{[]int32{1, 2}, []int32{3}},
	}
	for k, want := range wantKV {
		got, ok := s.GGUF.Get(k)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", k, got, want)
		}
	}
	for _, tc := range []struct {
		name  string
		typ   DType
		shape []int
	}{
		{"f32", F32, []int{3, 5}}, {"f16", F16, []int{2, 8}}, {"bf16", BF16, []int{4, 4}},
		{"q8_0", Q8_0, []int{2, 64}}, {"q4_0", Q4_0, []int{3, 32}}, {"q4_1", Q4_1, []int{32}},
		{"q4_k", Q4_K, []int{2, 256}}, {"q6_k", Q6_K, []int{256}},
	} {
		tt, err := s.Tensor(tc.name, tc.shape...)
		if err != nil {
			t.Error(err)
			continue
		}
		if tt.Type != tc.typ {
			t.Errorf("%s: type %v, want %v", tc.name, tt.Type, tc.typ)
		}
		if want := interopBytes(t, tc.typ, tc.shape); !bytes.Equal(tt.Data, want) {
			t.Errorf("%s: data differs from the expected %v encoding", tc.name, tc.typ)
		}
	}
}

// TestReadSafetensorsFromReferenceWriter reads a file written by safetensors.torch.save_file.
func TestReadSafetensorsFromReferenceWriter(t *testing.T) {
	s, err := Open("testdata/interop/pywritten_safetensors.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Format != "safetensors" || s.SafetensorsMeta["note"] != "reference writer" || s.SafetensorsMeta["format"] != "pt" {
		t.Fatalf("format %q, metadata %v", s.Format, s.SafetensorsMeta)
	}
	for _, tc := range []struct {
		name  string
		typ   DType
		shape []int
	}{
		{"a.f32", F32, []int{3, 5}}, {"b.f16", F16, []int{2, 8}}, {"c.bf16", BF16, []int{2, 3, 4}},
	} {
		tt, err := s.Tensor(tc.name, tc.shape...)
		if err != nil {
			t.Fatal(err)
		}
		// torch's float32 -> f16/bf16 casts round to nearest even, as QuantizeRow does.
		if tt.Type != tc.typ || !bytes.Equal(tt.Data, interopBytes(t, tc.typ, tc.shape)) {
			t.Errorf("%s: type %v, data differs", tc.name, tt.Type)
		}
	}
	sc, err := s.Tensor("d.scalar")
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, 1)
	if err := DequantizeRow(sc.Type, sc.Data, v); err != nil || len(sc.Shape) != 0 || v[0] != 1.5 {
		t.Errorf("scalar: shape %v, value %v, %v", sc.Shape, v, err)
	}
}
