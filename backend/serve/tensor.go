package serve

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DataType is a tensor element type. The numeric values follow Triton's TRITONSERVER_DataType.
type DataType int

// Data types.
const (
	TypeInvalid DataType = iota
	TypeBool
	TypeUint8
	TypeUint16
	TypeUint32
	TypeUint64
	TypeInt8
	TypeInt16
	TypeInt32
	TypeInt64
	TypeFP16
	TypeFP32
	TypeFP64
	TypeBytes
	TypeBF16
)

var typeInfo = [...]struct {
	name string
	size int
}{
	{"INVALID", 0}, {"BOOL", 1}, {"UINT8", 1}, {"UINT16", 2}, {"UINT32", 4}, {"UINT64", 8},
	{"INT8", 1}, {"INT16", 2}, {"INT32", 4}, {"INT64", 8}, {"FP16", 2}, {"FP32", 4}, {"FP64", 8},
	{"BYTES", 0}, {"BF16", 2},
}

// String returns the KServe name of d ("INT32", "BYTES", ...).
func (d DataType) String() string {
	if d < 0 || int(d) >= len(typeInfo) {
		return fmt.Sprintf("DataType(%d)", int(d))
	}
	return typeInfo[d].name
}

// Size is the byte size of one element; 0 for BYTES (variable) and unknown types.
func (d DataType) Size() int {
	if d < 0 || int(d) >= len(typeInfo) {
		return 0
	}
	return typeInfo[d].size
}

// Tensor is a named tensor held in Go memory.
type Tensor struct {
	Name     string
	DataType DataType
	Shape    []int64 // as sent by the client, e.g. (1) for a single string
	// Data holds the elements row-major in little-endian; for BYTES each element is a 4-byte
	// little-endian length followed by that many bytes.
	Data []byte
}

// Elements is the product of the shape; it fails on negative dimensions and overflow.
func (t *Tensor) Elements() (int64, error) {
	n := int64(1)
	for i, d := range t.Shape {
		if d < 0 {
			return 0, fmt.Errorf("tensor %q: dimension %d is %d", t.Name, i, d)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("tensor %q: shape %v overflows", t.Name, t.Shape)
		}
		n *= d
	}
	return n, nil
}

// Validate checks that Data's length agrees with the shape and data type.
func (t *Tensor) Validate() error {
	n, err := t.Elements()
	if err != nil {
		return err
	}
	if t.DataType == TypeBytes {
		vals, err := DecodeBytes(t.Data)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if int64(len(vals)) != n {
			return fmt.Errorf("tensor %q: shape %v wants %d BYTES elements, data holds %d", t.Name, t.Shape, n, len(vals))
		}
		return nil
	}
	size := t.DataType.Size()
	if size == 0 {
		return fmt.Errorf("tensor %q: unsupported data type %v", t.Name, t.DataType)
	}
	if int64(len(t.Data)) != n*int64(size) {
		return fmt.Errorf("tensor %q: shape %v of %v wants %d bytes, got %d", t.Name, t.Shape, t.DataType, n*int64(size), len(t.Data))
	}
	return nil
}

// Strings decodes a BYTES tensor, checking the element count against the shape.
func (t *Tensor) Strings() ([][]byte, error) {
	if t.DataType != TypeBytes {
		return nil, fmt.Errorf("tensor %q: want BYTES, got %v", t.Name, t.DataType)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return DecodeBytes(t.Data)
}

// Int32s decodes an INT32 tensor.
func (t *Tensor) Int32s() ([]int32, error) {
	if t.DataType != TypeInt32 {
		return nil, fmt.Errorf("tensor %q: want INT32, got %v", t.Name, t.DataType)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	out := make([]int32, len(t.Data)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out, nil
}

// DecodeBytes splits Triton's BYTES serialization (repeated 4-byte little-endian length, then
// that many bytes) into its elements. The returned slices alias data.
func DecodeBytes(data []byte) ([][]byte, error) {
	var out [][]byte
	for off := 0; off < len(data); {
		if len(data)-off < 4 {
			return nil, fmt.Errorf("BYTES element %d: %d trailing bytes, need a 4-byte length", len(out), len(data)-off)
		}
		n := binary.LittleEndian.Uint32(data[off:])
		off += 4
		if uint64(n) > uint64(len(data)-off) {
			return nil, fmt.Errorf("BYTES element %d: length %d exceeds the %d bytes left", len(out), n, len(data)-off)
		}
		out = append(out, data[off:off+int(n)])
		off += int(n)
	}
	return out, nil
}

// EncodeBytes serializes elements in Triton's BYTES layout.
func EncodeBytes(vals ...[]byte) []byte {
	size := 0
	for _, v := range vals {
		size += 4 + len(v)
	}
	out := make([]byte, 0, size)
	for _, v := range vals {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(v)))
		out = append(out, v...)
	}
	return out
}

// StringTensor builds a BYTES tensor of shape (len(vals)).
func StringTensor(name string, vals ...string) Tensor {
	b := make([][]byte, len(vals))
	for i, v := range vals {
		b[i] = []byte(v)
	}
	return Tensor{Name: name, DataType: TypeBytes, Shape: []int64{int64(len(vals))}, Data: EncodeBytes(b...)}
}

// Int32Tensor builds an INT32 tensor of shape (len(vals)).
func Int32Tensor(name string, vals ...int32) Tensor {
	data := make([]byte, 0, 4*len(vals))
	for _, v := range vals {
		data = binary.LittleEndian.AppendUint32(data, uint32(v))
	}
	return Tensor{Name: name, DataType: TypeInt32, Shape: []int64{int64(len(vals))}, Data: data}
}
