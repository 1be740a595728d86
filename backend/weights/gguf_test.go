package weights

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// rawGGUF assembles GGUF bytes field by field, so that tests can write files the writer refuses to.
type rawGGUF struct{ bytes.Buffer }

func (r *rawGGUF) u32(v uint32) *rawGGUF { binary.Write(r, binary.LittleEndian, v); return r }
func (r *rawGGUF) u64(v uint64) *rawGGUF { binary.Write(r, binary.LittleEndian, v); return r }
func (r *rawGGUF) str(s string) *rawGGUF { r.u64(uint64(len(s))); r.WriteString(s); return r }

// header writes magic, version and counts.
func (r *rawGGUF) header(version uint32, nTensors, nKV uint64) *rawGGUF {
	r.WriteString("GGUF")
	return r.u32(version).u64(nTensors).u64(nKV)
}

// tensor writes one tensor info; dims are GGUF order (innermost first).
func (r *rawGGUF) tensor(name string, typ uint32, offset uint64, dims ...uint64) *rawGGUF {
	r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	return r.u32(typ).u64(offset)
}

// data pads to 32 and appends n zero bytes.
func (r *rawGGUF) data(n int) []byte {
	for r.Len()%32 != 0 {
		r.WriteByte(0)
	}
	r.Write(make([]byte, n))
	return r.Bytes()
}

func allMetadata() []KV {
	return []KV{
		{"general.architecture", "llama"},
		{"u8", uint8(200)}, {"i8", int8(-100)}, {"u16", uint16(60000)}, {"i16", int16(-30000)},
		{"u32", uint32(4000000000)}, {"i32", int32(-2000000000)}, {"f32", float32(1.5)},
		{"b", true}, {"s", "héllo"}, {"u64", uint64(1) << 60}, {"i64", int64(-1) << 60}, {"f64", 2.25},
		{"au8", []uint8{1, 2}}, {"ai8", []int8{-1, 2}}, {"au16", []uint16{3}}, {"ai16", []int16{-4}},
		{"au32", []uint32{5, 6}}, {"ai32", []int32{-7, 8}}, {"af32", []float32{0.5, -0.25}},
		{"ab", []bool{true, false}}, {"as", []string{"a", "", "ccc"}}, {"au64", []uint64{9}},
		{"ai64", []int64{-10}}, {"af64", []float64{1e300}}, {"empty", []string{}},
		{"nested", []any{[]int32{1, 2}, []string{"x"}, []any{[]uint8{3}}}},
		{"general.alignment", uint32(64)},
	}
}

func TestGGUFRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tensors := []*Tensor{
		randomTensor(t, "f32", F32, r, 3, 5),
		randomTensor(t, "f16", F16, r, 7),
		randomTensor(t, "bf16", BF16, r, 2, 3, 4),
		randomTensor(t, "q4_0", Q4_0, r, 3, 64),
		randomTensor(t, "q4_1", Q4_1, r, 2, 2, 32),
		randomTensor(t, "q8_0", Q8_0, r, 1, 1, 2, 96),
		randomTensor(t, "q4_k", Q4_K, r, 2, 256),
		randomTensor(t, "q6_k", Q6_K, r, 512),
	}
	kv := allMetadata()
	p := writeTemp(t, "x.gguf", nil)
	if err := WriteGGUF(p, kv, tensors); err != nil {
		t.Fatal(err)
	}
	s, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Format != "gguf" || s.GGUF == nil || s.GGUF.Version != 3 || len(s.Tensors) != len(tensors) {
		t.Fatalf("format %q, metadata %v, %d tensors", s.Format, s.GGUF != nil, len(s.Tensors))
	}
	for _, want := range tensors {
		got, err := s.Tensor(want.Name, want.Shape...)
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != want.Type || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("%s: type %v, data equal %v", want.Name, got.Type, bytes.Equal(got.Data, want.Data))
		}
	}
	keys := s.GGUF.Keys()
	for i, e := range kv {
		v, ok := s.GGUF.Get(e.Key)
		if !ok || !reflect.DeepEqual(v, e.Value) {
			t.Errorf("key %q: got %#v, want %#v", e.Key, v, e.Value)
		}
		if keys[i] != e.Key {
			t.Errorf("key %d is %q, want %q", i, keys[i], e.Key)
		}
	}
}

func TestMetadataAccessors(t *testing.T) {
	p := writeTemp(t, "m.gguf", nil)
	if err := WriteGGUF(p, allMetadata(), nil); err != nil {
		t.Fatal(err)
	}
	s, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := s.GGUF
	tests := []struct {
		name   string
		get    func() (any, error)
		want   any
		errHas string
	}{
		{"uint from u8", func() (any, error) { return m.Uint("u8") }, uint64(200), ""},
		{"uint from i16 negative", func() (any, error) { return m.Uint("i16") }, nil, "negative"},
		{"uint from u64", func() (any, error) { return m.Uint("u64") }, uint64(1) << 60, ""},
		{"uint from string", func() (any, error) { return m.Uint("s") }, nil, "want an integer"},
		{"uint missing", func() (any, error) { return m.Uint("nope") }, nil, `"nope" not found`},
		{"float f32", func() (any, error) { return m.Float("f32") }, 1.5, ""},
		{"float f64", func() (any, error) { return m.Float("f64") }, 2.25, ""},
		{"float from int", func() (any, error) { return m.Float("u8") }, nil, "want a float"},
		{"bool", func() (any, error) { return m.Bool("b") }, true, ""},
		{"string", func() (any, error) { return m.String("s") }, "héllo", ""},
		{"strings", func() (any, error) { return m.Strings("as") }, []string{"a", "", "ccc"}, ""},
		{"strings wrong", func() (any, error) { return m.Strings("ai32") }, nil, "want []string"},
		{"int32s", func() (any, error) { return m.Int32s("ai32") }, []int32{-7, 8}, ""},
		{"int32s from u16", func() (any, error) { return m.Int32s("au16") }, []int32{3}, ""},
		{"int32s overflow", func() (any, error) { return m.Int32s("au64") }, []int32{9}, ""},
		{"float32s", func() (any, error) { return m.Float32s("af32") }, []float32{0.5, -0.25}, ""},
		{"float32s from f64", func() (any, error) { return m.Float32s("af64") }, []float32{float32(math.Inf(1))}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.get()
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tc.errHas)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
	if !m.Has("u8") || m.Has("nope") {
		t.Error("Has is wrong")
	}
}

// TestGGUFBad feeds malformed files: each must give an error naming the file and the field at fault.
func TestGGUFBad(t *testing.T) {
	valid := func() *rawGGUF { // one Q8_0 tensor of 32 elements = 34 bytes
		r := &rawGGUF{}
		r.header(3, 1, 1).str("general.architecture").u32(ggufString).str("llama")
		r.tensor("w", uint32(Q8_0), 0, 32)
		return r
	}
	oneTensor := func(name string, typ uint32, off uint64, n int, dims ...uint64) []byte {
		r := &rawGGUF{}
		r.header(3, 1, 0).tensor(name, typ, off, dims...)
		return r.data(n)
	}
	big := uint64(1) << 62
	tests := []struct {
		name   string
		file   []byte
		errHas string
	}{
		{"valid", valid().data(34), ""},
		{"version 2", func() []byte { b := valid().data(34); b[4] = 2; return b }(), ""},
		{"empty", nil, "magic: truncated"},
		{"bad magic", []byte("GGMLxxxxxxxxxxxxxxxxxxxxxxxx"), "bad magic"},
		{"version 1", new(rawGGUF).header(1, 0, 0).Bytes(), "unsupported GGUF version 1"},
		{"big-endian", []byte("GGUF\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00"), "big-endian GGUF (version 3)"},
		{"version 4", new(rawGGUF).header(4, 0, 0).Bytes(), "unsupported GGUF version 4"},
		{"truncated counts", []byte("GGUF\x03\x00\x00\x00\x00"), "tensor count: truncated"},
		{"absurd tensor count", new(rawGGUF).header(3, 1<<40, 0).Bytes(), "tensor count: count 1099511627776"},
		{"absurd kv count", new(rawGGUF).header(3, 0, math.MaxUint64).Bytes(), "metadata count: count"},
		{"absurd key length", new(rawGGUF).header(3, 0, 1).u64(1 << 50).u32(0).u32(0).Bytes(), "metadata key 0 length"},
		{"truncated value", new(rawGGUF).header(3, 0, 1).str("k").u32(ggufUint64).u32(0).Bytes(), `"k": truncated`},
		{"unknown value type", new(rawGGUF).header(3, 0, 1).str("k").u32(13).u32(0).Bytes(), `"k": unknown value type 13`},
		{"bool byte", func() []byte {
			r := new(rawGGUF).header(3, 0, 1).str("k").u32(ggufBool)
			r.Write([]byte{2})
			return r.Bytes()
		}(), `"k": bool byte is 2`},
		{"unknown element type", new(rawGGUF).header(3, 0, 1).str("k").u32(ggufArray).u32(77).u64(0).Bytes(), "unknown array element type 77"},
		{"absurd array length", new(rawGGUF).header(3, 0, 1).str("k").u32(ggufArray).u32(ggufUint32).u64(1 << 61).Bytes(), `"k" array length`},
		{"absurd string array", new(rawGGUF).header(3, 0, 1).str("tok").u32(ggufArray).u32(ggufString).u64(1000).u64(1).Bytes(), `"tok" array length`},
		{"string in array too long", new(rawGGUF).header(3, 0, 1).str("tok").u32(ggufArray).u32(ggufString).u64(1).u64(1 << 40).Bytes(), "element 0"},
		{"deep nesting", func() []byte {
			r := new(rawGGUF).header(3, 0, 1).str("deep").u32(ggufArray)
			for range 40 {
				r.u32(ggufArray).u64(1)
			}
			return r.u32(ggufUint8).u64(0).Bytes()
		}(), "nested deeper"},
		{"duplicate key", new(rawGGUF).header(3, 0, 2).str("k").u32(ggufUint32).u32(0).str("k").u32(ggufUint32).u32(0).Bytes(), `"k": duplicate`},
		{"alignment zero", new(rawGGUF).header(3, 0, 1).str("general.alignment").u32(ggufUint32).u32(0).Bytes(), "general.alignment"},
		{"alignment not pow2", new(rawGGUF).header(3, 0, 1).str("general.alignment").u32(ggufUint32).u32(48).Bytes(), "not a power-of-two"},
		{"alignment wrong type", new(rawGGUF).header(3, 0, 1).str("general.alignment").u32(ggufUint64).u64(32).Bytes(), "general.alignment"},
		{"zero dims", oneTensor("w", 0, 0, 4), `tensor "w": 0 dims`},
		{"five dims", oneTensor("w", 0, 0, 4, 1, 1, 1, 1, 1), `tensor "w": 5 dims`},
		{"huge dim", oneTensor("w", 0, 0, 4, big), `tensor "w": dim 0`},
		{"product overflow", oneTensor("w", 0, 0, 4, 1<<31, 1<<31, 1<<31), `tensor "w": shape`},
		{"unknown type", oneTensor("w", 99, 0, 4, 1), `tensor "w": unknown tensor type 99`},
		{"unsupported ggml type q5_0", oneTensor("w", 6, 0, 22, 32), `tensor "w": unknown tensor type 6`},
		{"partial block", oneTensor("w", uint32(Q4_0), 0, 36, 33), `tensor "w": row of 33 elements`},
		{"data past EOF", oneTensor("w", uint32(F32), 0, 12, 4), `tensor "w": data [0, 16) runs past`},
		{"offset past EOF", oneTensor("w", uint32(F32), 1<<40, 16, 4), `tensor "w": data [1099511627776`},
		{"offset near max", oneTensor("w", uint32(F32), math.MaxUint64-31, 16, 4), `tensor "w": data`},
		{"data section past EOF", new(rawGGUF).header(3, 1, 0).tensor("z", uint32(F32), 0, 0).Bytes(), `tensor "z": data section would start at offset 64`},
		{"misaligned", oneTensor("w", uint32(F32), 4, 32, 4), `tensor "w": data offset 4 is not a multiple`},
		{"overlap", func() []byte {
			r := new(rawGGUF).header(3, 2, 0).tensor("a", uint32(F32), 0, 16).tensor("b", uint32(F32), 32, 4)
			return r.data(64)
		}(), `tensor "b": data at offset 32 overlaps tensor "a"`},
		{"duplicate tensor", func() []byte {
			r := new(rawGGUF).header(3, 2, 0).tensor("a", uint32(F32), 0, 4).tensor("a", uint32(F32), 32, 4)
			return r.data(64)
		}(), `tensor "a": duplicate name`},
		{"truncated tensor info", func() []byte { b := valid().Bytes(); return b[:len(b)-5] }(), `tensor "w" offset: truncated`},
		{"truncated tensor name", new(rawGGUF).header(3, 1, 0).u64(1000).u64(0).u64(0).Bytes(), "tensor 0 name length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTemp(t, "bad.gguf", tc.file)
			s, err := Open(p)
			if tc.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("opened; want error containing %q", tc.errHas)
			}
			if !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q; want it to contain %q and the path", err, tc.errHas)
			}
		})
	}
}

func TestWriteGGUFRejects(t *testing.T) {
	good := &Tensor{Name: "w", Type: F32, Shape: []int{2}, Data: make([]byte, 8)}
	tests := []struct {
		name    string
		kv      []KV
		tensors []*Tensor
		errHas  string
	}{
		{"short data", nil, []*Tensor{{Name: "w", Type: F32, Shape: []int{3}, Data: make([]byte, 8)}}, "needs 12 bytes"},
		{"duplicate tensor", nil, []*Tensor{good, good}, "duplicate name"},
		{"scalar", nil, []*Tensor{{Name: "s", Type: F32, Shape: nil, Data: make([]byte, 4)}}, "1 to 4 dims"},
		{"bad value", []KV{{"k", struct{}{}}}, nil, "unsupported metadata value type"},
		{"bad nested", []KV{{"k", []any{1}}}, nil, "array of arrays holds a int"},
		{"duplicate key", []KV{{"k", 1.0}, {"k", 2.0}}, nil, `"k": duplicate`},
		{"bad alignment", []KV{{"general.alignment", uint32(3)}}, nil, "power-of-two"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteGGUF(writeTemp(t, "w.gguf", nil), tc.kv, tc.tensors)
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("got %v, want error containing %q", err, tc.errHas)
			}
		})
	}
}

// TestDropPages: a mapped tensor's data reads the same after its pages were dropped (they come back from
// the file), across tensors larger than a page and ones that start and end inside pages.
func TestDropPages(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	tensors := []*Tensor{
		randomTensor(t, "small", Q8_0, r, 3, 32),
		randomTensor(t, "big", Q4_1, r, 1000, 64),
		randomTensor(t, "after", F16, r, 5000),
	}
	p := writeTemp(t, "x.gguf", nil)
	if err := WriteGGUF(p, allMetadata(), tensors); err != nil {
		t.Fatal(err)
	}
	s, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, want := range tensors {
		got, err := s.Tensor(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.mapped != fileMapped {
			t.Errorf("%s: mapped %v, want %v", want.Name, got.mapped, fileMapped)
		}
		got.DropPages()
		if !bytes.Equal(got.Data, want.Data) {
			t.Errorf("%s: data changed after DropPages", want.Name)
		}
	}
	(&Tensor{Data: []byte{1, 2, 3}}).DropPages() // not mapped: a no-op
}
