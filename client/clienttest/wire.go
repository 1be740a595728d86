package clienttest

import (
	"bytes"
	"encoding/binary"
	"fmt"

	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

// Out is one output tensor for a built response.
type Out struct {
	Name     string
	Datatype string
	Shape    []int64
	Raw      []byte
}

// Text returns a BYTES output of shape [len(values)].
func Text(name string, values ...string) Out {
	var b bytes.Buffer
	for _, v := range values {
		_ = binary.Write(&b, binary.LittleEndian, uint32(len(v)))
		b.WriteString(v)
	}
	return Out{Name: name, Datatype: "BYTES", Shape: []int64{int64(len(values))}, Raw: b.Bytes()}
}

// Int32 returns an INT32 output of shape [len(values)].
func Int32(name string, values ...int32) Out {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, values)
	return Out{Name: name, Datatype: "INT32", Shape: []int64{int64(len(values))}, Raw: b.Bytes()}
}

// Response builds a stream response as Triton's gRPC frontend does: outputs in
// raw_output_contents, and the triton_final_response parameter on every response of a decoupled
// model (true on the last).
func Response(id string, final bool, outs ...Out) *pb.ModelStreamInferResponse {
	r := &pb.ModelInferResponse{
		ModelName: "test",
		Id:        id,
		Parameters: map[string]*pb.InferParameter{
			"triton_final_response": {ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: final}},
		},
	}
	for _, o := range outs {
		r.Outputs = append(r.Outputs, &pb.ModelInferResponse_InferOutputTensor{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape})
		r.RawOutputContents = append(r.RawOutputContents, o.Raw)
	}
	return &pb.ModelStreamInferResponse{InferResponse: r}
}

// Error builds a stream response carrying only an error message.
func Error(id, msg string) *pb.ModelStreamInferResponse {
	return &pb.ModelStreamInferResponse{ErrorMessage: msg, InferResponse: &pb.ModelInferResponse{Id: id}}
}

// Input returns the input called name of req with its raw bytes, from raw_input_contents or, if
// the request has none, from typed BYTES/BOOL/INT32 contents.
func Input(req *pb.ModelInferRequest, name string) (Out, bool, error) {
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(req.GetInputs()) {
		return Out{}, false, fmt.Errorf("%d inputs but %d raw_input_contents", len(req.GetInputs()), len(raw))
	}
	for i, in := range req.GetInputs() {
		if in.GetName() != name {
			continue
		}
		o := Out{Name: name, Datatype: in.GetDatatype(), Shape: in.GetShape()}
		if len(raw) > 0 {
			o.Raw = raw[i]
			return o, true, nil
		}
		c := in.GetContents()
		switch o.Datatype {
		case "BYTES":
			s := make([]string, len(c.GetBytesContents()))
			for j, b := range c.GetBytesContents() {
				s[j] = string(b)
			}
			o.Raw = Text(name, s...).Raw
		case "INT32":
			o.Raw = Int32(name, c.GetIntContents()...).Raw
		case "BOOL":
			for _, v := range c.GetBoolContents() {
				if v {
					o.Raw = append(o.Raw, 1)
				} else {
					o.Raw = append(o.Raw, 0)
				}
			}
		default:
			return Out{}, false, fmt.Errorf("input %q: typed contents of %s not supported", name, o.Datatype)
		}
		return o, true, nil
	}
	return Out{}, false, nil
}

// InputString returns the single element of the BYTES input name.
func InputString(req *pb.ModelInferRequest, name string) (string, bool, error) {
	o, ok, err := Input(req, name)
	if err != nil || !ok {
		return "", ok, err
	}
	if o.Datatype != "BYTES" {
		return "", true, fmt.Errorf("input %q: datatype %s, want BYTES", name, o.Datatype)
	}
	r := bytes.NewReader(o.Raw)
	var n uint32
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return "", true, fmt.Errorf("input %q: no length prefix: %w", name, err)
	}
	if int(n) != r.Len() {
		return "", true, fmt.Errorf("input %q: element of %d bytes, %d follow the prefix (want exactly 1 element)", name, n, r.Len())
	}
	return string(o.Raw[4:]), true, nil
}

// InputBool returns the single element of the BOOL input name.
func InputBool(req *pb.ModelInferRequest, name string) (bool, bool, error) {
	o, ok, err := Input(req, name)
	if err != nil || !ok {
		return false, ok, err
	}
	if o.Datatype != "BOOL" || len(o.Raw) != 1 {
		return false, true, fmt.Errorf("input %q: %s of %d bytes, want one BOOL", name, o.Datatype, len(o.Raw))
	}
	return o.Raw[0] != 0, true, nil
}

// InputInt32 returns the single element of the INT32 input name.
func InputInt32(req *pb.ModelInferRequest, name string) (int32, bool, error) {
	o, ok, err := Input(req, name)
	if err != nil || !ok {
		return 0, ok, err
	}
	if o.Datatype != "INT32" || len(o.Raw) != 4 {
		return 0, true, fmt.Errorf("input %q: %s of %d bytes, want one INT32", name, o.Datatype, len(o.Raw))
	}
	var v int32
	_ = binary.Read(bytes.NewReader(o.Raw), binary.LittleEndian, &v)
	return v, true, nil
}
