package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// maxSafetensorsHeader bounds the JSON header (the format's own reference reader allows 100 MB).
const maxSafetensorsHeader = 100 << 20

// safetensorsDTypes maps the dtypes this project computes with; the others are named for clear errors.
var safetensorsDTypes = map[string]DType{"F32": F32, "F16": F16, "BF16": BF16}

var safetensorsOther = map[string]bool{
	"BOOL": true, "U8": true, "I8": true, "U16": true, "I16": true, "U32": true, "I32": true, "U64": true,
	"I64": true, "F64": true, "F8_E4M3": true, "F8_E5M2": true, "F8_E8M0": true, "F4": true, "F6_E2M3": true,
	"F6_E3M2": true, "C64": true,
}

func safetensorsName(t DType) (string, bool) {
	for n, d := range safetensorsDTypes {
		if d == t {
			return n, true
		}
	}
	return "", false
}

// headerObject splits a JSON object into its members, rejecting duplicate keys (which a map decode would
// silently merge) and anything but padding after the object.
func headerObject(header []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not an object")
	}
	raw := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key is %v, not a string", tok)
		}
		if _, dup := raw[key]; dup {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("value of %q: %w", key, err)
		}
		raw[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	// Anything after the object must be padding (the format pads with spaces).
	if rest := bytes.TrimRight(header[dec.InputOffset():], " \t\r\n\x00"); len(rest) > 0 {
		return nil, fmt.Errorf("trailing data after the object")
	}
	return raw, nil
}

type stEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// parseSafetensors parses one safetensors file held in data, adds its tensors (Data aliasing data) to
// into, and returns its "__metadata__".
func parseSafetensors(data []byte, into map[string]*Tensor) (map[string]string, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("truncated: %d bytes, need at least 8 for the header length", len(data))
	}
	hlen := binary.LittleEndian.Uint64(data)
	if hlen > maxSafetensorsHeader || hlen > uint64(len(data)-8) {
		return nil, fmt.Errorf("header length %d exceeds the file (%d bytes) or the %d-byte limit", hlen, len(data), maxSafetensorsHeader)
	}
	header := data[8 : 8+hlen]
	body := data[8+hlen:]
	raw, err := headerObject(header)
	if err != nil {
		return nil, fmt.Errorf("header JSON: %w", err)
	}
	var meta map[string]string
	if m, ok := raw["__metadata__"]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return nil, fmt.Errorf("header \"__metadata__\": %w", err)
		}
		delete(raw, "__metadata__")
	}

	type span struct {
		name       string
		begin, end int
	}
	spans := make([]span, 0, len(raw))
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic error messages
	for _, name := range names {
		what := fmt.Sprintf("tensor %q", name)
		if _, dup := into[name]; dup {
			return nil, fmt.Errorf("%s: duplicate name", what)
		}
		var e stEntry
		if err := json.Unmarshal(raw[name], &e); err != nil {
			return nil, fmt.Errorf("%s: header entry: %w", what, err)
		}
		typ, ok := safetensorsDTypes[e.DType]
		if !ok {
			if safetensorsOther[e.DType] {
				return nil, fmt.Errorf("%s: dtype %s is not supported (only F32, F16, BF16)", what, e.DType)
			}
			return nil, fmt.Errorf("%s: unknown dtype %q", what, e.DType)
		}
		if e.Shape == nil {
			return nil, fmt.Errorf("%s: missing shape", what)
		}
		shape := make([]int, len(e.Shape))
		for i, d := range e.Shape {
			if d < 0 || d > maxElements {
				return nil, fmt.Errorf("%s: bad dim %d in shape %v", what, d, e.Shape)
			}
			shape[i] = int(d)
		}
		size, err := tensorBytes(typ, shape)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("%s: data_offsets has %d values, want 2", what, len(e.DataOffsets))
		}
		b, en := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || en < b || en > int64(len(body)) {
			return nil, fmt.Errorf("%s: data_offsets [%d, %d] out of range (data holds %d bytes)", what, b, en, len(body))
		}
		if en-b != int64(size) {
			return nil, fmt.Errorf("%s: data_offsets span %d bytes, but %s %v needs %d", what, en-b, e.DType, shape, size)
		}
		into[name] = &Tensor{Name: name, Type: typ, Shape: shape, Data: body[b:en:en]}
		spans = append(spans, span{name, int(b), int(en)})
	}
	sort.Slice(spans, func(a, b int) bool { return spans[a].begin < spans[b].begin })
	for i := 1; i < len(spans); i++ {
		if spans[i].begin < spans[i-1].end {
			return nil, fmt.Errorf("tensor %q: data_offsets overlap tensor %q", spans[i].name, spans[i-1].name)
		}
	}
	return meta, nil
}

// openDir opens a Hugging Face model directory: model.safetensors.index.json with its shards, or a single
// model.safetensors; plus config.json, tokenizer.json and tokenizer_config.json when present.
func openDir(dir string) (*Set, error) {
	s := &Set{Path: dir, Format: "safetensors", Tensors: map[string]*Tensor{}}
	if err := s.loadDir(dir); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Set) loadDir(dir string) (err error) {
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{"config.json", &s.Config}, {"tokenizer.json", &s.TokenizerJSON}, {"tokenizer_config.json", &s.TokenizerConfigJSON}} {
		if *f.dst, err = readOptional(dir, f.name); err != nil {
			return fmt.Errorf("weights: %s: %w", filepath.Join(dir, f.name), err)
		}
	}

	shards := []string{"model.safetensors"}
	var weightMap map[string]string
	indexPath := filepath.Join(dir, "model.safetensors.index.json")
	idx, err := os.ReadFile(indexPath)
	switch {
	case err == nil:
		var index struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(idx, &index); err != nil {
			return fmt.Errorf("weights: %s: %w", indexPath, err)
		}
		if len(index.WeightMap) == 0 {
			return fmt.Errorf("weights: %s: empty or missing weight_map", indexPath)
		}
		weightMap = index.WeightMap
		seen := map[string]bool{}
		shards = shards[:0]
		for _, f := range weightMap {
			if f != filepath.Base(f) || f == "." || f == ".." {
				return fmt.Errorf("weights: %s: shard name %q is not a plain file name", indexPath, f)
			}
			if !seen[f] {
				seen[f] = true
				shards = append(shards, f)
			}
		}
		sort.Strings(shards)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("weights: %s: %w", indexPath, err)
	}

	if weightMap == nil {
		if _, err := os.Stat(filepath.Join(dir, shards[0])); err != nil {
			return fmt.Errorf("weights: %s: no model.safetensors or model.safetensors.index.json: %w", dir, err)
		}
	}
	s.SafetensorsMeta = map[string]string{}
	for _, shard := range shards {
		path := filepath.Join(dir, shard)
		data, release, err := mapFile(path)
		if err != nil {
			return fmt.Errorf("weights: safetensors %s: %w", path, err)
		}
		s.unmap = append(s.unmap, release)
		found := map[string]*Tensor{}
		meta, err := parseSafetensors(data, found)
		if err != nil {
			return fmt.Errorf("weights: safetensors %s: %w", path, err)
		}
		for k, v := range meta {
			s.SafetensorsMeta[k] = v
		}
		for _, t := range found {
			t.mapped = fileMapped
		}
		for name, t := range found {
			if _, dup := s.Tensors[name]; dup {
				return fmt.Errorf("weights: safetensors %s: tensor %q: duplicate (also in another shard)", path, name)
			}
			if weightMap != nil && weightMap[name] != shard {
				return fmt.Errorf("weights: safetensors %s: tensor %q is not mapped to this shard in %s", path, name, indexPath)
			}
			s.Tensors[name] = t
		}
	}
	for name, shard := range weightMap {
		if _, ok := s.Tensors[name]; !ok {
			return fmt.Errorf("weights: safetensors %s: tensor %q listed in %s is missing", filepath.Join(dir, shard), name, indexPath)
		}
	}
	return nil
}
