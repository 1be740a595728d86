package serve

import (
	"bytes"
	"strings"
	"testing"
)

func TestDecodeBytes(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		want    []string
		wantErr string
	}{
		{"empty", nil, nil, ""},
		{"one", []byte{3, 0, 0, 0, 'a', 'b', 'c'}, []string{"abc"}, ""},
		{"two with empty", []byte{0, 0, 0, 0, 1, 0, 0, 0, 'x'}, []string{"", "x"}, ""},
		{"short length", []byte{1, 0, 0}, nil, "need a 4-byte length"},
		{"length past end", []byte{5, 0, 0, 0, 'a'}, nil, "exceeds the 1 bytes left"},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff}, nil, "exceeds"},
		{"trailing garbage", []byte{1, 0, 0, 0, 'a', 9}, nil, "element 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeBytes(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d elements, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if string(got[i]) != tc.want[i] {
					t.Errorf("element %d = %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestEncodeBytesRoundTrip(t *testing.T) {
	vals := [][]byte{[]byte("hello"), {}, []byte("wörld"), bytes.Repeat([]byte{7}, 300)}
	enc := EncodeBytes(vals...)
	if want := 4*4 + 5 + 0 + 6 + 300; len(enc) != want {
		t.Fatalf("encoded %d bytes, want %d", len(enc), want)
	}
	dec, err := DecodeBytes(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		if !bytes.Equal(dec[i], vals[i]) {
			t.Errorf("element %d = %q, want %q", i, dec[i], vals[i])
		}
	}
}

func TestTensorValidate(t *testing.T) {
	tests := []struct {
		name    string
		t       Tensor
		wantErr string
	}{
		{"string ok", StringTensor("s", "a", "b"), ""},
		{"string count mismatch", Tensor{Name: "s", DataType: TypeBytes, Shape: []int64{2}, Data: EncodeBytes([]byte("a"))}, "wants 2 BYTES elements, data holds 1"},
		{"int32 ok", Int32Tensor("i", 1, -2, 3), ""},
		{"int32 short", Tensor{Name: "i", DataType: TypeInt32, Shape: []int64{2}, Data: make([]byte, 7)}, "wants 8 bytes, got 7"},
		{"fp16 2d", Tensor{Name: "h", DataType: TypeFP16, Shape: []int64{2, 3}, Data: make([]byte, 12)}, ""},
		{"negative dim", Tensor{Name: "n", DataType: TypeInt32, Shape: []int64{-1}}, "dimension 0 is -1"},
		{"overflow", Tensor{Name: "o", DataType: TypeInt8, Shape: []int64{1 << 40, 1 << 40}}, "overflows"},
		{"invalid type", Tensor{Name: "x", DataType: TypeInvalid, Shape: []int64{1}, Data: []byte{0}}, "unsupported data type INVALID"},
		{"zero elements", Tensor{Name: "z", DataType: TypeFP32, Shape: []int64{0, 5}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestTensorAccessors(t *testing.T) {
	it := Int32Tensor("ids", 5, -1, 1<<30)
	got, err := it.Int32s()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != 5 || got[1] != -1 || got[2] != 1<<30 {
		t.Errorf("Int32s = %v", got)
	}
	if _, err := it.Strings(); err == nil {
		t.Error("Strings on an INT32 tensor: want an error")
	}
	st := StringTensor("s", "x")
	if _, err := st.Int32s(); err == nil {
		t.Error("Int32s on a BYTES tensor: want an error")
	}
	if TypeBF16.String() != "BF16" || TypeBytes.Size() != 0 || TypeFP64.Size() != 8 || DataType(99).String() != "DataType(99)" {
		t.Error("DataType names or sizes wrong")
	}
}
