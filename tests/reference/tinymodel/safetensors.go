package tinymodel

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
)

// stTensor is one tensor to be written to a safetensors file.
type stTensor struct {
	name  string
	dtype string // safetensors dtype: "F32" or "BF16"
	shape []int
	data  []byte // little-endian, row-major
}

// encodeSafetensors lays out a safetensors file: an 8-byte little-endian header length, a JSON header
// ("__metadata__" first, then tensors sorted by name, data_offsets relative to the end of the header) padded
// with spaces to a multiple of 8 bytes, then the tensor bytes in the same order.
func encodeSafetensors(ts []stTensor, meta map[string]string) ([]byte, error) {
	sorted := append([]stTensor(nil), ts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })

	var hdr bytes.Buffer
	hdr.WriteByte('{')
	if len(meta) > 0 {
		mb, err := json.Marshal(meta) // map keys are sorted by encoding/json
		if err != nil {
			return nil, fmt.Errorf("safetensors metadata: %w", err)
		}
		hdr.WriteString(`"__metadata__":`)
		hdr.Write(mb)
	}
	var off int64
	for i, t := range sorted {
		n := int64(len(t.data))
		want := int64(2)
		if t.dtype == "F32" {
			want = 4
		} else if t.dtype != "BF16" {
			return nil, fmt.Errorf("safetensors tensor %q: dtype %q not F32 or BF16", t.name, t.dtype)
		}
		for _, d := range t.shape {
			want *= int64(d)
		}
		if want != n {
			return nil, fmt.Errorf("safetensors tensor %q: %d bytes for shape %v %s (want %d)", t.name, n, t.shape,
				t.dtype, want)
		}
		if i > 0 && sorted[i-1].name == t.name {
			return nil, fmt.Errorf("safetensors tensor %q: duplicate name", t.name)
		}
		if hdr.Len() > 1 {
			hdr.WriteByte(',')
		}
		name, err := json.Marshal(t.name)
		if err != nil {
			return nil, fmt.Errorf("safetensors tensor %q: %w", t.name, err)
		}
		hdr.Write(name)
		hdr.WriteString(`:{"dtype":"` + t.dtype + `","shape":[`)
		for k, d := range t.shape {
			if k > 0 {
				hdr.WriteByte(',')
			}
			hdr.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&hdr, `],"data_offsets":[%d,%d]}`, off, off+n)
		off += n
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}

	out := make([]byte, 8, 8+hdr.Len()+int(off))
	binary.LittleEndian.PutUint64(out, uint64(hdr.Len()))
	out = append(out, hdr.Bytes()...)
	for _, t := range sorted {
		out = append(out, t.data...)
	}
	return out, nil
}

// f32Bytes encodes values as little-endian float32.
func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// bf16Bytes encodes values as little-endian bfloat16, rounding to nearest, ties to even.
func bf16Bytes(v []float32) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], toBF16(x))
	}
	return b
}

// toBF16 rounds a float32 to bfloat16 (round to nearest, ties to even; NaN stays a quiet NaN).
func toBF16(x float32) uint16 {
	u := math.Float32bits(x)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x0040
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}
