package weights

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stFile builds safetensors bytes from a raw header string and n data bytes.
func stFile(header string, n int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, n)...)
}

func TestSafetensorsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	tensors := []*Tensor{
		randomTensor(t, "model.embed_tokens.weight", BF16, r, 10, 8),
		randomTensor(t, "model.norm.weight", F32, r, 8),
		randomTensor(t, "lm_head.weight", F16, r, 10, 8),
		{Name: "scalar", Type: F32, Shape: []int{}, Data: []byte{0, 0, 128, 63}},
		{Name: "empty", Type: F16, Shape: []int{0, 4}, Data: []byte{}},
	}
	meta := map[string]string{"format": "pt"}
	p := filepath.Join(t.TempDir(), "model.safetensors")
	if err := WriteSafetensors(p, tensors, meta); err != nil {
		t.Fatal(err)
	}
	for _, open := range []string{p, filepath.Dir(p)} {
		s, err := Open(open)
		if err != nil {
			t.Fatal(err)
		}
		if s.Format != "safetensors" || s.GGUF != nil || s.SafetensorsMeta["format"] != "pt" || len(s.Tensors) != len(tensors) {
			t.Fatalf("%s: format %q, meta %v, %d tensors", open, s.Format, s.SafetensorsMeta, len(s.Tensors))
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
		if s.Config != nil {
			t.Error("config.json absent but Config set")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteSafetensors(p, []*Tensor{randomTensor(t, "q", Q8_0, r, 32)}, nil); err == nil {
		t.Error("wrote a Q8_0 tensor to safetensors")
	}
}

// writeSharded writes a directory with two shards, an index, config.json and tokenizer files.
func writeSharded(t *testing.T) (dir string, tensors []*Tensor) {
	r := rand.New(rand.NewPCG(7, 8))
	dir = t.TempDir()
	a := []*Tensor{randomTensor(t, "a.weight", BF16, r, 4, 4), randomTensor(t, "b.weight", F32, r, 4)}
	b := []*Tensor{randomTensor(t, "c.weight", F16, r, 2, 4)}
	for name, ts := range map[string][]*Tensor{"model-00001-of-00002.safetensors": a, "model-00002-of-00002.safetensors": b} {
		if err := WriteSafetensors(filepath.Join(dir, name), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("model.safetensors.index.json", `{"metadata": {"total_size": 100}, "weight_map": {
		"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00001-of-00002.safetensors",
		"c.weight": "model-00002-of-00002.safetensors"}}`)
	write("config.json", `{"model_type": "llama", "hidden_size": 4}`)
	write("tokenizer.json", `{"model": {}}`)
	write("tokenizer_config.json", `{"add_bos_token": true}`)
	return dir, append(a, b...)
}

func TestSafetensorsSharded(t *testing.T) {
	dir, tensors := writeSharded(t)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Tensors) != 3 || !strings.Contains(string(s.Config), `"llama"`) ||
		!strings.Contains(string(s.TokenizerJSON), "model") || !strings.Contains(string(s.TokenizerConfigJSON), "add_bos") {
		t.Fatalf("%d tensors, config %q, tokenizer %q, %q", len(s.Tensors), s.Config, s.TokenizerJSON, s.TokenizerConfigJSON)
	}
	for _, want := range tensors {
		got, err := s.Tensor(want.Name, want.Shape...)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Data, want.Data) {
			t.Errorf("%s: data differs", want.Name)
		}
	}
	if _, err := s.Tensor("a.weight", 4, 5); err == nil || !strings.Contains(err.Error(), "has shape [4 4], want [4 5]") {
		t.Errorf("wrong shape: %v", err)
	}
	if _, err := s.Tensor("zz"); err == nil || !strings.Contains(err.Error(), `"zz" not found`) || !strings.Contains(err.Error(), dir) {
		t.Errorf("missing tensor: %v", err)
	}
}

func TestSafetensorsDirBad(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(dir string) error
		errHas string
	}{
		{"missing shard", func(dir string) error { return os.Remove(filepath.Join(dir, "model-00002-of-00002.safetensors")) },
			"model-00002-of-00002.safetensors"},
		{"tensor missing from shard", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"weight_map": {
				"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00001-of-00002.safetensors",
				"c.weight": "model-00002-of-00002.safetensors", "d.weight": "model-00002-of-00002.safetensors"}}`), 0o644)
		}, `tensor "d.weight" listed in`},
		{"tensor in wrong shard", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"weight_map": {
				"a.weight": "model-00002-of-00002.safetensors", "b.weight": "model-00001-of-00002.safetensors",
				"c.weight": "model-00002-of-00002.safetensors"}}`), 0o644)
		}, `tensor "a.weight" is not mapped to this shard`},
		{"bad index JSON", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"weight_map": [`), 0o644)
		}, "model.safetensors.index.json"},
		{"empty weight_map", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{}`), 0o644)
		}, "empty or missing weight_map"},
		{"shard outside dir", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"weight_map": {"a.weight": "../x.safetensors"}}`), 0o644)
		}, "not a plain file name"},
		{"no weights", func(dir string) error {
			for _, f := range []string{"model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
				if err := os.Remove(filepath.Join(dir, f)); err != nil {
					return err
				}
			}
			return nil
		}, "no model.safetensors or model.safetensors.index.json"},
		{"corrupt shard", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors"), stFile("{", 0), 0o644)
		}, "model-00002-of-00002.safetensors: header JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := writeSharded(t)
			if err := tc.break_(dir); err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir)
			if err == nil {
				s.Close()
				t.Fatalf("opened; want error containing %q", tc.errHas)
			}
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("error %q; want it to contain %q", err, tc.errHas)
			}
		})
	}
}

// TestSafetensorsBad feeds malformed single files: each must give an error naming the file and the
// tensor or field at fault.
func TestSafetensorsBad(t *testing.T) {
	ok := `{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`
	tests := []struct {
		name   string
		file   []byte
		errHas string
	}{
		{"valid", stFile(ok, 16), ""},
		{"valid with metadata and padding", stFile(`{"__metadata__":{"a":"b"},"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]}}    `, 6), ""},
		{"empty", nil, "truncated"},
		{"short", []byte{1, 2, 3}, "truncated"},
		{"header past EOF", stFile(ok, 16)[:30], "header length"},
		{"absurd header length", append(binary.LittleEndian.AppendUint64(nil, 1<<63), "{}"...), "header length 9223372036854775808"},
		{"bad JSON", stFile(`{"w":`, 0), "header JSON"},
		{"not an object", stFile(`[1,2]`, 0), "not an object"},
		{"trailing data", stFile(`{} {}`, 0), "trailing data"},
		{"duplicate key", stFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), `duplicate key "w"`},
		{"entry not object", stFile(`{"w":7}`, 0), `tensor "w": header entry`},
		{"unknown dtype", stFile(`{"w":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}}`, 1), `tensor "w": unknown dtype "Q9"`},
		{"unsupported dtype", stFile(`{"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, 8), `tensor "w": dtype I64 is not supported`},
		{"missing shape", stFile(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, 4), `tensor "w": missing shape`},
		{"negative dim", stFile(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), `tensor "w": bad dim -1`},
		{"fractional dim", stFile(`{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, 4), `tensor "w": header entry`},
		{"shape overflow", stFile(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, 4), `tensor "w": shape`},
		{"offsets out of range", stFile(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 8), `tensor "w": data_offsets [0, 16] out of range`},
		{"offsets reversed", stFile(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, 8), `tensor "w": data_offsets [4, 0]`},
		{"length mismatch", stFile(`{"w":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}}`, 16), `tensor "w": data_offsets span 16 bytes, but F16 [4] needs 8`},
		{"three offsets", stFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, 8), `tensor "w": data_offsets has 3 values`},
		{"overlap", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), `tensor "b": data_offsets overlap tensor "a"`},
		{"bad metadata", stFile(`{"__metadata__":{"a":1}}`, 0), `"__metadata__"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTemp(t, "bad.safetensors", tc.file)
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

func TestTensorRows(t *testing.T) {
	tests := []struct {
		typ              DType
		shape            []int
		rows, cols, elem int
		rowBytes         int
	}{
		{F32, []int{3, 5}, 3, 5, 15, 20},
		{Q8_0, []int{2, 3, 64}, 6, 64, 384, 68},
		{F16, []int{7}, 1, 7, 7, 14},
		{BF16, []int{}, 1, 1, 1, 2},
		{Q4_K, []int{0, 256}, 0, 256, 0, 144},
	}
	for _, tc := range tests {
		tt := &Tensor{Type: tc.typ, Shape: tc.shape, Data: make([]byte, tc.rows*tc.rowBytes)}
		if tt.Rows() != tc.rows || tt.Cols() != tc.cols || tt.NumElements() != tc.elem || tt.RowBytes() != tc.rowBytes {
			t.Errorf("%v %v: rows %d cols %d elements %d rowBytes %d", tc.typ, tc.shape, tt.Rows(), tt.Cols(), tt.NumElements(), tt.RowBytes())
		}
		if tc.rows > 0 && len(tt.Row(tc.rows-1)) != tc.rowBytes {
			t.Errorf("%v %v: last row has %d bytes", tc.typ, tc.shape, len(tt.Row(tc.rows-1)))
		}
		if tt.Row(tc.rows) != nil || tt.Row(-1) != nil {
			t.Errorf("%v %v: out-of-range row not nil", tc.typ, tc.shape)
		}
	}
}
