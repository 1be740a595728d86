package weights

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
)

const (
	ggufMagic            = "GGUF"
	ggufDefaultAlignment = 32
	ggufMaxDims          = 4  // GGML_MAX_DIMS
	ggufMaxDepth         = 16 // nesting limit for arrays of arrays
)

// cursor reads little-endian values from b, failing (never panicking) past its end.
type cursor struct {
	b   []byte
	off int
}

func (c *cursor) left() int { return len(c.b) - c.off }

func (c *cursor) take(n int, what string) ([]byte, error) {
	if n < 0 || n > c.left() {
		return nil, fmt.Errorf("%s: truncated: need %d bytes at offset %d, file has %d", what, n, c.off, len(c.b))
	}
	p := c.b[c.off : c.off+n]
	c.off += n
	return p, nil
}

func (c *cursor) u8(what string) (uint8, error) {
	p, err := c.take(1, what)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func (c *cursor) u16(what string) (uint16, error) {
	p, err := c.take(2, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(p), nil
}

func (c *cursor) u32(what string) (uint32, error) {
	p, err := c.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(p), nil
}

func (c *cursor) u64(what string) (uint64, error) {
	p, err := c.take(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(p), nil
}

// count reads a uint64 count of items of at least minSize bytes each and checks that they can fit in what
// is left of the file, so that a corrupt count cannot cause a huge allocation.
func (c *cursor) count(minSize int, what string) (int, error) {
	n, err := c.u64(what)
	if err != nil {
		return 0, err
	}
	if n > uint64(c.left()/minSize) {
		return 0, fmt.Errorf("%s: count %d cannot fit in the %d bytes left at offset %d", what, n, c.left(), c.off)
	}
	return int(n), nil
}

func (c *cursor) str(what string) (string, error) {
	n, err := c.count(1, what+" length")
	if err != nil {
		return "", err
	}
	p, err := c.take(n, what)
	return string(p), err
}

// ggufMinSize is the least number of bytes one value of a GGUF type occupies (0 for an unknown type).
func ggufMinSize(typ uint32) int {
	switch typ {
	case ggufUint8, ggufInt8, ggufBool:
		return 1
	case ggufUint16, ggufInt16:
		return 2
	case ggufUint32, ggufInt32, ggufFloat32:
		return 4
	case ggufUint64, ggufInt64, ggufFloat64, ggufString:
		return 8
	case ggufArray:
		return 12
	}
	return 0
}

// readValue reads one metadata value of type typ; what names the key for errors.
func (c *cursor) readValue(typ uint32, depth int, what string) (any, error) {
	switch typ {
	case ggufUint8:
		return c.u8(what)
	case ggufInt8:
		v, err := c.u8(what)
		return int8(v), err
	case ggufUint16:
		return c.u16(what)
	case ggufInt16:
		v, err := c.u16(what)
		return int16(v), err
	case ggufUint32:
		return c.u32(what)
	case ggufInt32:
		v, err := c.u32(what)
		return int32(v), err
	case ggufFloat32:
		v, err := c.u32(what)
		return math.Float32frombits(v), err
	case ggufBool:
		v, err := c.u8(what)
		if err == nil && v > 1 {
			return nil, fmt.Errorf("%s: bool byte is %d, want 0 or 1", what, v)
		}
		return v == 1, err
	case ggufString:
		return c.str(what)
	case ggufUint64:
		return c.u64(what)
	case ggufInt64:
		v, err := c.u64(what)
		return int64(v), err
	case ggufFloat64:
		v, err := c.u64(what)
		return math.Float64frombits(v), err
	case ggufArray:
		return c.readArray(depth, what)
	}
	return nil, fmt.Errorf("%s: unknown value type %d", what, typ)
}

// readArrayOf reads n values with read into a new []T.
func readArrayOf[T any](n int, what string, read func(what string) (T, error)) ([]T, error) {
	out := make([]T, n)
	for i := range out {
		v, err := read(what)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = v
	}
	return out, nil
}

func (c *cursor) readArray(depth int, what string) (any, error) {
	if depth >= ggufMaxDepth {
		return nil, fmt.Errorf("%s: arrays nested deeper than %d", what, ggufMaxDepth)
	}
	et, err := c.u32(what + " element type")
	if err != nil {
		return nil, err
	}
	size := ggufMinSize(et)
	if size == 0 {
		return nil, fmt.Errorf("%s: unknown array element type %d", what, et)
	}
	n, err := c.count(size, what+" array length")
	if err != nil {
		return nil, err
	}
	var v any
	switch et {
	case ggufUint8, ggufInt8, ggufBool:
		p, _ := c.take(n, what) // n <= left, checked by count
		switch et {
		case ggufUint8:
			v = append([]uint8(nil), p...)
		case ggufInt8:
			s := make([]int8, n)
			for i, b := range p {
				s[i] = int8(b)
			}
			v = s
		default:
			s := make([]bool, n)
			for i, b := range p {
				if b > 1 {
					return nil, fmt.Errorf("%s: element %d: bool byte is %d, want 0 or 1", what, i, b)
				}
				s[i] = b == 1
			}
			v = s
		}
	case ggufUint16:
		v, err = readArrayOf(n, what, c.u16)
	case ggufInt16:
		v, err = readArrayOf(n, what, func(w string) (int16, error) { x, e := c.u16(w); return int16(x), e })
	case ggufUint32:
		v, err = readArrayOf(n, what, c.u32)
	case ggufInt32:
		v, err = readArrayOf(n, what, func(w string) (int32, error) { x, e := c.u32(w); return int32(x), e })
	case ggufFloat32:
		v, err = readArrayOf(n, what, func(w string) (float32, error) {
			x, e := c.u32(w)
			return math.Float32frombits(x), e
		})
	case ggufUint64:
		v, err = readArrayOf(n, what, c.u64)
	case ggufInt64:
		v, err = readArrayOf(n, what, func(w string) (int64, error) { x, e := c.u64(w); return int64(x), e })
	case ggufFloat64:
		v, err = readArrayOf(n, what, func(w string) (float64, error) {
			x, e := c.u64(w)
			return math.Float64frombits(x), e
		})
	case ggufString:
		v, err = readArrayOf(n, what, c.str)
	case ggufArray:
		v, err = readArrayOf(n, what, func(w string) (any, error) { return c.readArray(depth+1, w) })
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

// parseGGUF parses a whole GGUF file held in data and returns its tensors, whose Data alias data.
func parseGGUF(data []byte) (map[string]*Tensor, *Metadata, error) {
	c := &cursor{b: data}
	magic, err := c.take(4, "magic")
	if err != nil {
		return nil, nil, err
	}
	if string(magic) != ggufMagic {
		return nil, nil, fmt.Errorf("bad magic %q, want %q", magic, ggufMagic)
	}
	version, err := c.u32("version")
	if err != nil {
		return nil, nil, err
	}
	if sw := version>>24 | version<<24 | version>>8&0xff00 | version<<8&0xff0000; sw == 2 || sw == 3 {
		return nil, nil, fmt.Errorf("big-endian GGUF (version %d) is not supported", sw)
	}
	if version != 2 && version != 3 {
		return nil, nil, fmt.Errorf("unsupported GGUF version %d (want 2 or 3)", version)
	}
	nTensors, err := c.count(24, "tensor count") // name length 8 + n_dims 4 + type 4 + offset 8
	if err != nil {
		return nil, nil, err
	}
	nKV, err := c.count(13, "metadata count") // key length 8 + type 4 + at least 1 byte of value
	if err != nil {
		return nil, nil, err
	}
	meta := &Metadata{Version: version, vals: make(map[string]any, nKV)}
	for i := range nKV {
		key, err := c.str(fmt.Sprintf("metadata key %d", i))
		if err != nil {
			return nil, nil, err
		}
		if _, dup := meta.vals[key]; dup {
			return nil, nil, fmt.Errorf("metadata key %q: duplicate", key)
		}
		what := fmt.Sprintf("metadata key %q", key)
		typ, err := c.u32(what + " type")
		if err != nil {
			return nil, nil, err
		}
		v, err := c.readValue(typ, 0, what)
		if err != nil {
			return nil, nil, err
		}
		meta.keys = append(meta.keys, key)
		meta.vals[key] = v
	}
	alignment := uint64(ggufDefaultAlignment)
	if v, ok := meta.vals["general.alignment"]; ok {
		a, ok := v.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 {
			return nil, nil, fmt.Errorf("metadata key \"general.alignment\": %v (%T) is not a power-of-two uint32", v, v)
		}
		alignment = uint64(a)
	}

	type info struct {
		t      *Tensor
		offset uint64
		size   int
	}
	infos := make([]info, 0, nTensors)
	tensors := make(map[string]*Tensor, nTensors)
	for i := range nTensors {
		name, err := c.str(fmt.Sprintf("tensor %d name", i))
		if err != nil {
			return nil, nil, err
		}
		what := fmt.Sprintf("tensor %q", name)
		if _, dup := tensors[name]; dup {
			return nil, nil, fmt.Errorf("%s: duplicate name", what)
		}
		nDims, err := c.u32(what + " n_dims")
		if err != nil {
			return nil, nil, err
		}
		if nDims == 0 || nDims > ggufMaxDims {
			return nil, nil, fmt.Errorf("%s: %d dims, want 1 to %d", what, nDims, ggufMaxDims)
		}
		shape := make([]int, nDims)
		for j := range shape {
			d, err := c.u64(what + " dim")
			if err != nil {
				return nil, nil, err
			}
			if d > maxElements {
				return nil, nil, fmt.Errorf("%s: dim %d is %d, too large", what, j, d)
			}
			shape[len(shape)-1-j] = int(d) // GGUF lists dims innermost first
		}
		typ, err := c.u32(what + " type")
		if err != nil {
			return nil, nil, err
		}
		offset, err := c.u64(what + " offset")
		if err != nil {
			return nil, nil, err
		}
		size, err := tensorBytes(DType(typ), shape)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", what, err)
		}
		if offset%alignment != 0 {
			return nil, nil, fmt.Errorf("%s: data offset %d is not a multiple of the alignment %d", what, offset, alignment)
		}
		t := &Tensor{Name: name, Type: DType(typ), Shape: shape}
		tensors[name] = t
		infos = append(infos, info{t, offset, size})
	}

	start := (uint64(c.off) + alignment - 1) / alignment * alignment
	if start > uint64(len(data)) {
		if len(infos) > 0 {
			return nil, nil, fmt.Errorf("tensor %q: data section would start at offset %d, past the end of the file (%d bytes)",
				infos[0].t.Name, start, len(data))
		}
		start = uint64(len(data)) // metadata only, unpadded: nothing to slice
	}
	dataLen := uint64(len(data)) - start
	sort.Slice(infos, func(a, b int) bool { return infos[a].offset < infos[b].offset })
	var prevEnd uint64
	var prev string
	for i, in := range infos {
		end := in.offset + uint64(in.size)
		if in.offset > dataLen || uint64(in.size) > dataLen-in.offset {
			return nil, nil, fmt.Errorf("tensor %q: data [%d, %d) runs past the end of the file (data section holds %d bytes)",
				in.t.Name, in.offset, end, dataLen)
		}
		if i > 0 && in.offset < prevEnd {
			return nil, nil, fmt.Errorf("tensor %q: data at offset %d overlaps tensor %q, which ends at %d",
				in.t.Name, in.offset, prev, prevEnd)
		}
		lo := int(start + in.offset)
		in.t.Data = data[lo : lo+in.size : lo+in.size]
		prevEnd, prev = end, in.t.Name
	}
	return tensors, meta, nil
}
