package client

import (
	"encoding/binary"
	"fmt"
	"math"

	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

// Tensor is one input tensor in the raw wire form: the bytes travel in
// ModelInferRequest.raw_input_contents, in the order of the inputs.
type Tensor struct {
	Name     string
	Datatype string  // KServe type name: "BYTES", "BOOL", "INT32", "INT64", "FP32", ...
	Shape    []int64 // e.g. [1]
	// Raw holds the elements row-major, little-endian; for BYTES each element is a 4-byte
	// little-endian length followed by that many bytes.
	Raw []byte
}

// StringTensor returns a BYTES tensor of shape [len(values)].
func StringTensor(name string, values ...string) Tensor {
	elems := make([][]byte, len(values))
	for i, v := range values {
		elems[i] = []byte(v)
	}
	return Tensor{Name: name, Datatype: "BYTES", Shape: []int64{int64(len(values))}, Raw: EncodeBytes(elems)}
}

// BoolTensor returns a BOOL tensor (one byte per element, 0 or 1) of shape [len(values)].
func BoolTensor(name string, values ...bool) Tensor {
	raw := make([]byte, len(values))
	for i, v := range values {
		if v {
			raw[i] = 1
		}
	}
	return Tensor{Name: name, Datatype: "BOOL", Shape: []int64{int64(len(values))}, Raw: raw}
}

// Int32Tensor returns an INT32 tensor of shape [len(values)].
func Int32Tensor(name string, values ...int32) Tensor {
	raw := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(v))
	}
	return Tensor{Name: name, Datatype: "INT32", Shape: []int64{int64(len(values))}, Raw: raw}
}

// EncodeBytes serializes BYTES elements: for each, a 4-byte little-endian length, then the bytes.
func EncodeBytes(elems [][]byte) []byte {
	n := 0
	for _, e := range elems {
		n += 4 + len(e)
	}
	out := make([]byte, 0, n)
	for _, e := range elems {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(e)))
		out = append(out, e...)
	}
	return out
}

// DecodeBytes splits a BYTES serialization into its elements. The elements alias raw.
func DecodeBytes(raw []byte) ([][]byte, error) {
	var out [][]byte
	for off := 0; off < len(raw); {
		if len(raw)-off < 4 {
			return nil, fmt.Errorf("BYTES element %d: %d trailing bytes, need a 4-byte length", len(out), len(raw)-off)
		}
		n := int(binary.LittleEndian.Uint32(raw[off:]))
		off += 4
		if n > len(raw)-off {
			return nil, fmt.Errorf("BYTES element %d: length %d runs past the end (%d bytes left)", len(out), n, len(raw)-off)
		}
		out = append(out, raw[off:off+n])
		off += n
	}
	return out, nil
}

// elemSize is the byte size of one element of a fixed-size KServe datatype; 0 for BYTES and for
// names this package does not know.
func elemSize(datatype string) int {
	switch datatype {
	case "BOOL", "INT8", "UINT8":
		return 1
	case "INT16", "UINT16", "FP16", "BF16":
		return 2
	case "INT32", "UINT32", "FP32":
		return 4
	case "INT64", "UINT64", "FP64":
		return 8
	}
	return 0
}

// elemCount is the product of shape, or -1 when a dimension is negative (variable) or the
// product overflows.
func elemCount(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 || (d > 0 && n > math.MaxInt64/d) {
			return -1
		}
		n *= d
	}
	return n
}

// check verifies that t's bytes hold exactly the elements its shape promises.
func (t Tensor) check() error {
	n := elemCount(t.Shape)
	if n < 0 {
		return fmt.Errorf("tensor %q: shape %v is not a concrete shape", t.Name, t.Shape)
	}
	if t.Datatype == "BYTES" {
		elems, err := DecodeBytes(t.Raw)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if int64(len(elems)) != n {
			return fmt.Errorf("tensor %q: shape %v wants %d BYTES elements, data holds %d", t.Name, t.Shape, n, len(elems))
		}
		return nil
	}
	size := elemSize(t.Datatype)
	if size == 0 {
		return fmt.Errorf("tensor %q: unknown datatype %q", t.Name, t.Datatype)
	}
	if int64(len(t.Raw)) != n*int64(size) {
		return fmt.Errorf("tensor %q: shape %v of %s wants %d bytes, data holds %d", t.Name, t.Shape, t.Datatype, n*int64(size), len(t.Raw))
	}
	return nil
}

// Output is one output tensor of a response, in raw form whichever form the server used.
type Output struct {
	Name     string
	Datatype string
	Shape    []int64
	Raw      []byte // as Tensor.Raw
}

// Strings decodes a BYTES output.
func (o Output) Strings() ([]string, error) {
	if o.Datatype != "BYTES" {
		return nil, fmt.Errorf("output %q: want BYTES, got %s", o.Name, o.Datatype)
	}
	elems, err := DecodeBytes(o.Raw)
	if err != nil {
		return nil, fmt.Errorf("output %q: %w", o.Name, err)
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		out[i] = string(e)
	}
	return out, nil
}

// Int32s decodes an INT32 output.
func (o Output) Int32s() ([]int32, error) {
	if o.Datatype != "INT32" {
		return nil, fmt.Errorf("output %q: want INT32, got %s", o.Name, o.Datatype)
	}
	if len(o.Raw)%4 != 0 {
		return nil, fmt.Errorf("output %q: %d bytes is not a whole number of INT32", o.Name, len(o.Raw))
	}
	out := make([]int32, len(o.Raw)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(o.Raw[4*i:]))
	}
	return out, nil
}

// DecodeOutputs returns the outputs of resp in raw form: from raw_output_contents when the server
// sent it (Triton does), else re-encoded from each output's typed contents. It checks that the
// element count matches each output's shape.
func DecodeOutputs(resp *pb.ModelInferResponse) ([]Output, error) {
	outs := resp.GetOutputs()
	raw := resp.GetRawOutputContents()
	if len(raw) > 0 && len(raw) != len(outs) {
		return nil, fmt.Errorf("response %q: %d outputs but %d raw_output_contents", resp.GetId(), len(outs), len(raw))
	}
	res := make([]Output, len(outs))
	for i, o := range outs {
		out := Output{Name: o.GetName(), Datatype: o.GetDatatype(), Shape: o.GetShape()}
		if len(raw) > 0 {
			out.Raw = raw[i]
		} else {
			b, err := contentsToRaw(o.GetDatatype(), o.GetContents())
			if err != nil {
				return nil, fmt.Errorf("output %q: %w", o.GetName(), err)
			}
			out.Raw = b
		}
		// Outputs of a datatype this package does not know pass through unchecked.
		if out.Datatype == "BYTES" || elemSize(out.Datatype) > 0 {
			t := Tensor(out)
			if err := t.check(); err != nil {
				return nil, fmt.Errorf("response %q: output %w", resp.GetId(), err)
			}
		}
		res[i] = out
	}
	return res, nil
}

// contentsToRaw re-encodes typed tensor contents into the raw form, for the datatypes the omnikv
// models return (BYTES, BOOL, INT32, INT64, FP32).
func contentsToRaw(datatype string, c *pb.InferTensorContents) ([]byte, error) {
	switch datatype {
	case "BYTES":
		return EncodeBytes(c.GetBytesContents()), nil
	case "BOOL":
		return BoolTensor("", c.GetBoolContents()...).Raw, nil
	case "INT32":
		return Int32Tensor("", c.GetIntContents()...).Raw, nil
	case "INT64":
		var out []byte
		for _, v := range c.GetInt64Contents() {
			out = binary.LittleEndian.AppendUint64(out, uint64(v))
		}
		return out, nil
	case "FP32":
		var out []byte
		for _, v := range c.GetFp32Contents() {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
		return out, nil
	}
	return nil, fmt.Errorf("typed contents of %s are not supported; ask the server for raw contents", datatype)
}

// toParams converts request parameter values to the wire form. Values may be bool, int, int64,
// string, float64 or uint64 (Triton reserves the last two for its own keys).
func toParams(m map[string]any) (map[string]*pb.InferParameter, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]*pb.InferParameter, len(m))
	for k, v := range m {
		p := &pb.InferParameter{}
		switch v := v.(type) {
		case bool:
			p.ParameterChoice = &pb.InferParameter_BoolParam{BoolParam: v}
		case int:
			p.ParameterChoice = &pb.InferParameter_Int64Param{Int64Param: int64(v)}
		case int64:
			p.ParameterChoice = &pb.InferParameter_Int64Param{Int64Param: v}
		case string:
			p.ParameterChoice = &pb.InferParameter_StringParam{StringParam: v}
		case float64:
			p.ParameterChoice = &pb.InferParameter_DoubleParam{DoubleParam: v}
		case uint64:
			p.ParameterChoice = &pb.InferParameter_Uint64Param{Uint64Param: v}
		default:
			return nil, fmt.Errorf("parameter %q: unsupported type %T (want bool, int, int64, string, float64 or uint64)", k, v)
		}
		out[k] = p
	}
	return out, nil
}
