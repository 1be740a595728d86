package weights

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// checkTensor validates that t's data has the size its type and shape require.
func checkTensor(t *Tensor) error {
	size, err := tensorBytes(t.Type, t.Shape)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if len(t.Data) != size {
		return fmt.Errorf("tensor %q: %v %v needs %d bytes, has %d", t.Name, t.Type, t.Shape, size, len(t.Data))
	}
	return nil
}

// writeFile creates path and runs fill over a buffered writer, closing and reporting errors.
func writeFile(path string, fill func(w *bufio.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w := bufio.NewWriter(f)
	if err := fill(w); err != nil {
		return err
	}
	return w.Flush()
}

// WriteSafetensors writes tensors (F32, F16 or BF16) in order to a safetensors file, with meta as its
// "__metadata__" (omitted when empty). The header is padded with spaces to a multiple of 8 bytes.
func WriteSafetensors(path string, tensors []*Tensor, meta map[string]string) error {
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var off int64
	for _, t := range tensors {
		if err := checkTensor(t); err != nil {
			return fmt.Errorf("weights: write %s: %w", path, err)
		}
		dt, ok := safetensorsName(t.Type)
		if !ok {
			return fmt.Errorf("weights: write %s: tensor %q: type %v cannot be stored in safetensors", path, t.Name, t.Type)
		}
		if _, dup := header[t.Name]; dup {
			return fmt.Errorf("weights: write %s: tensor %q: duplicate name", path, t.Name)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = map[string]any{"dtype": dt, "shape": shape, "data_offsets": []int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	hj, err := json.Marshal(header) // map keys come out sorted
	if err != nil {
		return fmt.Errorf("weights: write %s: header: %w", path, err)
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	err = writeFile(path, func(w *bufio.Writer) error {
		if err := binary.Write(w, binary.LittleEndian, uint64(len(hj))); err != nil {
			return err
		}
		w.Write(hj)
		for _, t := range tensors {
			w.Write(t.Data)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("weights: write %s: %w", path, err)
	}
	return nil
}

// WriteGGUF writes a GGUF v3 file with the given metadata (in order) and tensors (data in order, each
// aligned to general.alignment if kv sets it as a uint32, else 32). Metadata values take the Go types
// Metadata documents.
func WriteGGUF(path string, kv []KV, tensors []*Tensor) error {
	alignment := uint64(ggufDefaultAlignment)
	keys := map[string]bool{}
	for _, e := range kv {
		if keys[e.Key] {
			return fmt.Errorf("weights: write %s: metadata key %q: duplicate", path, e.Key)
		}
		keys[e.Key] = true
		if e.Key == "general.alignment" {
			a, ok := e.Value.(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return fmt.Errorf("weights: write %s: general.alignment must be a power-of-two uint32", path)
			}
			alignment = uint64(a)
		}
	}
	names := map[string]bool{}
	offsets := make([]uint64, len(tensors))
	var off uint64
	for i, t := range tensors {
		if err := checkTensor(t); err != nil {
			return fmt.Errorf("weights: write %s: %w", path, err)
		}
		if len(t.Shape) == 0 || len(t.Shape) > ggufMaxDims {
			return fmt.Errorf("weights: write %s: tensor %q: GGUF needs 1 to %d dims, got %v", path, t.Name, ggufMaxDims, t.Shape)
		}
		if names[t.Name] {
			return fmt.Errorf("weights: write %s: tensor %q: duplicate name", path, t.Name)
		}
		names[t.Name] = true
		offsets[i] = off
		off = (off + uint64(len(t.Data)) + alignment - 1) / alignment * alignment
	}
	err := writeFile(path, func(w *bufio.Writer) error {
		e := &ggufEncoder{w: w}
		e.raw([]byte(ggufMagic))
		e.u32(3)
		e.u64(uint64(len(tensors)))
		e.u64(uint64(len(kv)))
		for _, p := range kv {
			e.str(p.Key)
			if err := e.value(p.Value, true); err != nil {
				return fmt.Errorf("metadata key %q: %w", p.Key, err)
			}
		}
		for i, t := range tensors {
			e.str(t.Name)
			e.u32(uint32(len(t.Shape)))
			for j := len(t.Shape) - 1; j >= 0; j-- {
				e.u64(uint64(t.Shape[j]))
			}
			e.u32(uint32(t.Type))
			e.u64(offsets[i])
		}
		e.pad(alignment)
		e.n = 0 // tensor offsets count from the start of the data section
		for i, t := range tensors {
			e.raw(make([]byte, offsets[i]-e.n))
			e.raw(t.Data)
		}
		return e.err
	})
	if err != nil {
		return fmt.Errorf("weights: write %s: %w", path, err)
	}
	return nil
}

type ggufEncoder struct {
	w   *bufio.Writer
	n   uint64 // bytes written (reset at the data section)
	err error
}

func (e *ggufEncoder) raw(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
		e.n += uint64(len(p))
	}
}

func (e *ggufEncoder) u8(v uint8)   { e.raw([]byte{v}) }
func (e *ggufEncoder) u16(v uint16) { e.raw(binary.LittleEndian.AppendUint16(nil, v)) }
func (e *ggufEncoder) u32(v uint32) { e.raw(binary.LittleEndian.AppendUint32(nil, v)) }
func (e *ggufEncoder) u64(v uint64) { e.raw(binary.LittleEndian.AppendUint64(nil, v)) }
func (e *ggufEncoder) str(s string) { e.u64(uint64(len(s))); e.raw([]byte(s)) }

func (e *ggufEncoder) pad(alignment uint64) {
	if r := e.n % alignment; r != 0 {
		e.raw(make([]byte, alignment-r))
	}
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// writeArray writes an array of element type et: its header and each element.
func writeArray[T any](e *ggufEncoder, et uint32, s []T, put func(T) error) error {
	e.u32(et)
	e.u64(uint64(len(s)))
	for _, v := range s {
		if err := put(v); err != nil {
			return err
		}
	}
	return nil
}

// value writes v's type id (when withType) and its encoding.
func (e *ggufEncoder) value(v any, withType bool) error {
	typ := func(t uint32) {
		if withType {
			e.u32(t)
		}
	}
	switch x := v.(type) {
	case uint8:
		typ(ggufUint8)
		e.u8(x)
	case int8:
		typ(ggufInt8)
		e.u8(uint8(x))
	case uint16:
		typ(ggufUint16)
		e.u16(x)
	case int16:
		typ(ggufInt16)
		e.u16(uint16(x))
	case uint32:
		typ(ggufUint32)
		e.u32(x)
	case int32:
		typ(ggufInt32)
		e.u32(uint32(x))
	case float32:
		typ(ggufFloat32)
		e.u32(math.Float32bits(x))
	case bool:
		typ(ggufBool)
		e.u8(boolByte(x))
	case string:
		typ(ggufString)
		e.str(x)
	case uint64:
		typ(ggufUint64)
		e.u64(x)
	case int64:
		typ(ggufInt64)
		e.u64(uint64(x))
	case float64:
		typ(ggufFloat64)
		e.u64(math.Float64bits(x))
	case []uint8:
		typ(ggufArray)
		return writeArray(e, ggufUint8, x, func(v uint8) error { e.u8(v); return nil })
	case []int8:
		typ(ggufArray)
		return writeArray(e, ggufInt8, x, func(v int8) error { e.u8(uint8(v)); return nil })
	case []uint16:
		typ(ggufArray)
		return writeArray(e, ggufUint16, x, func(v uint16) error { e.u16(v); return nil })
	case []int16:
		typ(ggufArray)
		return writeArray(e, ggufInt16, x, func(v int16) error { e.u16(uint16(v)); return nil })
	case []uint32:
		typ(ggufArray)
		return writeArray(e, ggufUint32, x, func(v uint32) error { e.u32(v); return nil })
	case []int32:
		typ(ggufArray)
		return writeArray(e, ggufInt32, x, func(v int32) error { e.u32(uint32(v)); return nil })
	case []float32:
		typ(ggufArray)
		return writeArray(e, ggufFloat32, x, func(v float32) error { e.u32(math.Float32bits(v)); return nil })
	case []bool:
		typ(ggufArray)
		return writeArray(e, ggufBool, x, func(v bool) error { e.u8(boolByte(v)); return nil })
	case []string:
		typ(ggufArray)
		return writeArray(e, ggufString, x, func(v string) error { e.str(v); return nil })
	case []uint64:
		typ(ggufArray)
		return writeArray(e, ggufUint64, x, func(v uint64) error { e.u64(v); return nil })
	case []int64:
		typ(ggufArray)
		return writeArray(e, ggufInt64, x, func(v int64) error { e.u64(uint64(v)); return nil })
	case []float64:
		typ(ggufArray)
		return writeArray(e, ggufFloat64, x, func(v float64) error { e.u64(math.Float64bits(v)); return nil })
	case []any: // array of arrays: every element must be an array value
		typ(ggufArray)
		return writeArray(e, ggufArray, x, func(v any) error {
			if !isArray(v) {
				return fmt.Errorf("array of arrays holds a %T", v)
			}
			return e.value(v, false)
		})
	default:
		return fmt.Errorf("unsupported metadata value type %T", v)
	}
	return nil
}

func isArray(v any) bool {
	switch v.(type) {
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string, []uint64,
		[]int64, []float64, []any:
		return true
	}
	return false
}
