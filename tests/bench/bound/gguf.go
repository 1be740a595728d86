package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// ggufTensor is one entry of a GGUF file's tensor table.
type ggufTensor struct {
	Name string
	Dims []uint64 // (ne0, ne1, ...): ne0 is the row length, the fastest-varying dimension
	Type ggmlType
}

// Elements is the number of elements of the tensor.
func (t ggufTensor) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Bytes is the stored size of the tensor.
func (t ggufTensor) Bytes() (uint64, error) {
	if len(t.Dims) == 0 {
		return 0, fmt.Errorf("tensor %q has no dimensions", t.Name)
	}
	row, err := t.Type.RowBytes(int(t.Dims[0]))
	if err != nil {
		return 0, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return uint64(row) * (t.Elements() / t.Dims[0]), nil
}

// ggufHeader is what the bound needs from a GGUF file: its scalar metadata and its tensor table.
type ggufHeader struct {
	Version uint32
	Meta    map[string]any // scalars only (integers as uint64/int64, floats as float64, strings, bools)
	Tensors []ggufTensor
}

// GGUF metadata value types.
const (
	gtUint8 = iota
	gtInt8
	gtUint16
	gtInt16
	gtUint32
	gtInt32
	gtFloat32
	gtBool
	gtString
	gtArray
	gtUint64
	gtInt64
	gtFloat64
)

// maxStringLen caps key/value string lengths so that a corrupt length cannot allocate gigabytes.
const maxStringLen = 1 << 24

// readGGUFFile reads the header of the GGUF file at path.
func readGGUFFile(path string) (*ggufHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open gguf: %w", err)
	}
	defer f.Close()
	h, err := readGGUF(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	return h, nil
}

type ggufReader struct {
	r   io.Reader
	buf [8]byte
}

func (g *ggufReader) u32() (uint32, error) {
	if _, err := io.ReadFull(g.r, g.buf[:4]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(g.buf[:4]), nil
}

func (g *ggufReader) u64() (uint64, error) {
	if _, err := io.ReadFull(g.r, g.buf[:8]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(g.buf[:8]), nil
}

func (g *ggufReader) str() (string, error) {
	n, err := g.u64()
	if err != nil {
		return "", err
	}
	if n > maxStringLen {
		return "", fmt.Errorf("string length %d exceeds %d", n, maxStringLen)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(g.r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// value reads one metadata value of type typ. Arrays are skipped and returned as nil.
func (g *ggufReader) value(typ uint32) (any, error) {
	switch typ {
	case gtUint8, gtInt8, gtBool:
		if _, err := io.ReadFull(g.r, g.buf[:1]); err != nil {
			return nil, err
		}
		switch typ {
		case gtBool:
			return g.buf[0] != 0, nil
		case gtInt8:
			return int64(int8(g.buf[0])), nil
		}
		return uint64(g.buf[0]), nil
	case gtUint16, gtInt16:
		if _, err := io.ReadFull(g.r, g.buf[:2]); err != nil {
			return nil, err
		}
		v := binary.LittleEndian.Uint16(g.buf[:2])
		if typ == gtInt16 {
			return int64(int16(v)), nil
		}
		return uint64(v), nil
	case gtUint32, gtInt32, gtFloat32:
		v, err := g.u32()
		if err != nil {
			return nil, err
		}
		switch typ {
		case gtInt32:
			return int64(int32(v)), nil
		case gtFloat32:
			return float64(math.Float32frombits(v)), nil
		}
		return uint64(v), nil
	case gtUint64, gtInt64, gtFloat64:
		v, err := g.u64()
		if err != nil {
			return nil, err
		}
		switch typ {
		case gtInt64:
			return int64(v), nil
		case gtFloat64:
			return math.Float64frombits(v), nil
		}
		return v, nil
	case gtString:
		return g.str()
	case gtArray:
		et, err := g.u32()
		if err != nil {
			return nil, err
		}
		n, err := g.u64()
		if err != nil {
			return nil, err
		}
		if et == gtArray {
			return nil, errors.New("nested arrays are not supported")
		}
		for i := uint64(0); i < n; i++ {
			if _, err := g.value(et); err != nil {
				return nil, fmt.Errorf("array element %d of %d: %w", i, n, err)
			}
		}
		return nil, nil
	}
	return nil, fmt.Errorf("unknown metadata value type %d", typ)
}

// readGGUF parses a GGUF v2/v3 header (magic, counts, metadata, tensor table) from r.
func readGGUF(r io.Reader) (*ggufHeader, error) {
	g := &ggufReader{r: r}
	magic, err := g.u32()
	if err != nil {
		return nil, fmt.Errorf("magic: %w", err)
	}
	if magic != 0x46554747 { // "GGUF" little-endian
		return nil, fmt.Errorf("bad magic %#x, not a GGUF file", magic)
	}
	h := &ggufHeader{Meta: map[string]any{}}
	if h.Version, err = g.u32(); err != nil {
		return nil, fmt.Errorf("version: %w", err)
	}
	if h.Version < 2 || h.Version > 3 {
		return nil, fmt.Errorf("unsupported GGUF version %d", h.Version)
	}
	nTensors, err := g.u64()
	if err != nil {
		return nil, fmt.Errorf("tensor count: %w", err)
	}
	nKV, err := g.u64()
	if err != nil {
		return nil, fmt.Errorf("metadata count: %w", err)
	}
	if nTensors > 1<<20 || nKV > 1<<20 {
		return nil, fmt.Errorf("implausible counts: %d tensors, %d metadata entries", nTensors, nKV)
	}
	for i := uint64(0); i < nKV; i++ {
		key, err := g.str()
		if err != nil {
			return nil, fmt.Errorf("metadata %d key: %w", i, err)
		}
		typ, err := g.u32()
		if err != nil {
			return nil, fmt.Errorf("metadata %q type: %w", key, err)
		}
		v, err := g.value(typ)
		if err != nil {
			return nil, fmt.Errorf("metadata %q value: %w", key, err)
		}
		if v != nil {
			h.Meta[key] = v
		}
	}
	for i := uint64(0); i < nTensors; i++ {
		name, err := g.str()
		if err != nil {
			return nil, fmt.Errorf("tensor %d name: %w", i, err)
		}
		nd, err := g.u32()
		if err != nil {
			return nil, fmt.Errorf("tensor %q dims: %w", name, err)
		}
		if nd == 0 || nd > 4 {
			return nil, fmt.Errorf("tensor %q has %d dimensions", name, nd)
		}
		t := ggufTensor{Name: name, Dims: make([]uint64, nd)}
		for d := range t.Dims {
			if t.Dims[d], err = g.u64(); err != nil {
				return nil, fmt.Errorf("tensor %q dim %d: %w", name, d, err)
			}
		}
		typ, err := g.u32()
		if err != nil {
			return nil, fmt.Errorf("tensor %q type: %w", name, err)
		}
		t.Type = ggmlType(typ)
		if !t.Type.Known() {
			return nil, fmt.Errorf("tensor %q has unknown type %d", name, typ)
		}
		if _, err := g.u64(); err != nil { // data offset: not needed for the bound
			return nil, fmt.Errorf("tensor %q offset: %w", name, err)
		}
		h.Tensors = append(h.Tensors, t)
	}
	return h, nil
}

// metaInt returns the integer metadata value key, or an error naming the key.
func (h *ggufHeader) metaInt(key string) (int, error) {
	switch v := h.Meta[key].(type) {
	case uint64:
		return int(v), nil
	case int64:
		return int(v), nil
	case nil:
		return 0, fmt.Errorf("metadata %q missing", key)
	default:
		return 0, fmt.Errorf("metadata %q is %T, want an integer", key, v)
	}
}
