package client

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

func TestBytesCodec(t *testing.T) {
	tests := []struct {
		name  string
		elems []string
		raw   []byte
	}{
		{"one", []string{"hi"}, []byte{2, 0, 0, 0, 'h', 'i'}},
		{"empty element", []string{""}, []byte{0, 0, 0, 0}},
		{"two", []string{"a", "bc"}, []byte{1, 0, 0, 0, 'a', 2, 0, 0, 0, 'b', 'c'}},
		{"none", nil, []byte{}},
		{"utf8", []string{"é"}, []byte{2, 0, 0, 0, 0xc3, 0xa9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := make([][]byte, len(tt.elems))
			for i, e := range tt.elems {
				in[i] = []byte(e)
			}
			raw := EncodeBytes(in)
			if !bytes.Equal(raw, tt.raw) {
				t.Fatalf("EncodeBytes(%q) = %v, want %v", tt.elems, raw, tt.raw)
			}
			got, err := DecodeBytes(tt.raw)
			if err != nil {
				t.Fatalf("DecodeBytes: %v", err)
			}
			if len(got) != len(tt.elems) {
				t.Fatalf("DecodeBytes: %d elements, want %d", len(got), len(tt.elems))
			}
			for i := range got {
				if string(got[i]) != tt.elems[i] {
					t.Errorf("element %d = %q, want %q", i, got[i], tt.elems[i])
				}
			}
		})
	}
}

func TestDecodeBytesMalformed(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{"short length", []byte{1, 0}, "need a 4-byte length"},
		{"length past end", []byte{5, 0, 0, 0, 'a'}, "runs past the end"},
		{"second element short", []byte{1, 0, 0, 0, 'a', 9}, "BYTES element 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBytes(tt.raw)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeBytes(%v) = %v, want error containing %q", tt.raw, err, tt.want)
			}
		})
	}
}

func TestTensorConstructors(t *testing.T) {
	tests := []struct {
		name string
		t    Tensor
		want Tensor
	}{
		{"string", StringTensor("s", "ab"), Tensor{"s", "BYTES", []int64{1}, []byte{2, 0, 0, 0, 'a', 'b'}}},
		{"bool", BoolTensor("b", true, false), Tensor{"b", "BOOL", []int64{2}, []byte{1, 0}}},
		{"int32", Int32Tensor("i", 1, -2), Tensor{"i", "INT32", []int64{2}, []byte{1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.t.Name != tt.want.Name || tt.t.Datatype != tt.want.Datatype || !slices.Equal(tt.t.Shape, tt.want.Shape) || !bytes.Equal(tt.t.Raw, tt.want.Raw) {
				t.Fatalf("got %+v, want %+v", tt.t, tt.want)
			}
			if err := tt.t.check(); err != nil {
				t.Fatalf("check: %v", err)
			}
		})
	}
}

func TestTensorCheck(t *testing.T) {
	tests := []struct {
		name string
		t    Tensor
		want string // "" for no error
	}{
		{"ok int32 2x2", Tensor{"x", "INT32", []int64{2, 2}, make([]byte, 16)}, ""},
		{"short int32", Tensor{"x", "INT32", []int64{2}, make([]byte, 7)}, "wants 8 bytes"},
		{"bytes count", Tensor{"x", "BYTES", []int64{2}, EncodeBytes([][]byte{[]byte("a")})}, "wants 2 BYTES elements"},
		{"variable dim", Tensor{"x", "INT32", []int64{-1}, nil}, "not a concrete shape"},
		{"unknown type", Tensor{"x", "INT3", []int64{1}, make([]byte, 4)}, "unknown datatype"},
		{"empty tensor", Tensor{"x", "FP32", []int64{0, 3}, nil}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.t.check()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("check() = %v, want %q", err, tt.want)
			}
		})
	}
}

func rawOut(name, dt string, shape []int64) *pb.ModelInferResponse_InferOutputTensor {
	return &pb.ModelInferResponse_InferOutputTensor{Name: name, Datatype: dt, Shape: shape}
}

func TestDecodeOutputs(t *testing.T) {
	text := EncodeBytes([][]byte{[]byte("hello")})
	tests := []struct {
		name    string
		resp    *pb.ModelInferResponse
		wantErr string
		check   func(t *testing.T, outs []Output)
	}{
		{
			name: "raw",
			resp: &pb.ModelInferResponse{
				Outputs:           []*pb.ModelInferResponse_InferOutputTensor{rawOut("t", "BYTES", []int64{1}), rawOut("ids", "INT32", []int64{2})},
				RawOutputContents: [][]byte{text, {7, 0, 0, 0, 9, 0, 0, 0}},
			},
			check: func(t *testing.T, outs []Output) {
				s, err := outs[0].Strings()
				if err != nil || len(s) != 1 || s[0] != "hello" {
					t.Errorf("text = %q, %v", s, err)
				}
				ids, err := outs[1].Int32s()
				if err != nil || !slices.Equal(ids, []int32{7, 9}) {
					t.Errorf("ids = %v, %v", ids, err)
				}
			},
		},
		{
			name: "typed contents",
			resp: &pb.ModelInferResponse{Outputs: []*pb.ModelInferResponse_InferOutputTensor{
				{Name: "t", Datatype: "BYTES", Shape: []int64{2}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{[]byte("a"), []byte("b")}}},
				{Name: "ids", Datatype: "INT32", Shape: []int64{1}, Contents: &pb.InferTensorContents{IntContents: []int32{-5}}},
			}},
			check: func(t *testing.T, outs []Output) {
				s, err := outs[0].Strings()
				if err != nil || strings.Join(s, ",") != "a,b" {
					t.Errorf("text = %q, %v", s, err)
				}
				ids, err := outs[1].Int32s()
				if err != nil || !slices.Equal(ids, []int32{-5}) {
					t.Errorf("ids = %v, %v", ids, err)
				}
			},
		},
		{
			name: "raw count mismatch",
			resp: &pb.ModelInferResponse{
				Outputs:           []*pb.ModelInferResponse_InferOutputTensor{rawOut("a", "INT32", []int64{1}), rawOut("b", "INT32", []int64{1})},
				RawOutputContents: [][]byte{{1, 0, 0, 0}},
			},
			wantErr: "2 outputs but 1 raw_output_contents",
		},
		{
			name: "shape mismatch",
			resp: &pb.ModelInferResponse{
				Outputs:           []*pb.ModelInferResponse_InferOutputTensor{rawOut("ids", "INT32", []int64{3})},
				RawOutputContents: [][]byte{{1, 0, 0, 0}},
			},
			wantErr: `"ids": shape [3] of INT32 wants 12 bytes`,
		},
		{
			name: "malformed bytes",
			resp: &pb.ModelInferResponse{
				Outputs:           []*pb.ModelInferResponse_InferOutputTensor{rawOut("t", "BYTES", []int64{1})},
				RawOutputContents: [][]byte{{9, 0, 0, 0, 'x'}},
			},
			wantErr: "runs past the end",
		},
		{
			name: "unknown datatype passes unchecked",
			resp: &pb.ModelInferResponse{
				Outputs:           []*pb.ModelInferResponse_InferOutputTensor{rawOut("z", "FP8", []int64{2})},
				RawOutputContents: [][]byte{{1}},
			},
			check: func(t *testing.T, outs []Output) {
				if len(outs) != 1 || outs[0].Datatype != "FP8" {
					t.Errorf("outs = %+v", outs)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outs, err := DecodeOutputs(tt.resp)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DecodeOutputs() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeOutputs: %v", err)
			}
			tt.check(t, outs)
		})
	}
}

func TestOutputTypeErrors(t *testing.T) {
	if _, err := (Output{Name: "x", Datatype: "INT32"}).Strings(); err == nil || !strings.Contains(err.Error(), `"x": want BYTES`) {
		t.Errorf("Strings on INT32: %v", err)
	}
	if _, err := (Output{Name: "y", Datatype: "BYTES"}).Int32s(); err == nil || !strings.Contains(err.Error(), `"y": want INT32`) {
		t.Errorf("Int32s on BYTES: %v", err)
	}
	if _, err := (Output{Name: "z", Datatype: "INT32", Raw: []byte{1, 2, 3}}).Int32s(); err == nil {
		t.Errorf("Int32s on 3 bytes: no error")
	}
}

func TestToParams(t *testing.T) {
	got, err := toParams(map[string]any{"b": true, "i": 7, "i64": int64(-3), "s": "x", "d": 0.5, "u": uint64(9)})
	if err != nil {
		t.Fatal(err)
	}
	if !got["b"].GetBoolParam() || got["i"].GetInt64Param() != 7 || got["i64"].GetInt64Param() != -3 ||
		got["s"].GetStringParam() != "x" || got["d"].GetDoubleParam() != 0.5 || got["u"].GetUint64Param() != 9 {
		t.Errorf("toParams = %v", got)
	}
	if _, err := toParams(map[string]any{"f": float32(1)}); err == nil || !strings.Contains(err.Error(), `parameter "f": unsupported type float32`) {
		t.Errorf("float32 param: %v", err)
	}
}
