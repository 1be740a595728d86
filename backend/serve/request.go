package serve

import (
	"fmt"
	"strconv"
)

// ParamKind is the type of a request or response parameter.
type ParamKind int

// Parameter kinds (values follow TRITONSERVER_ParameterType).
const (
	ParamString ParamKind = 0
	ParamInt    ParamKind = 1
	ParamBool   ParamKind = 2
	ParamDouble ParamKind = 3
)

// Param is one typed request parameter, e.g. "max_tokens" or "sequence_id".
type Param struct {
	Kind   ParamKind
	Str    string
	Int    int64
	Bool   bool
	Double float64
}

func (p Param) String() string {
	switch p.Kind {
	case ParamString:
		return strconv.Quote(p.Str)
	case ParamInt:
		return strconv.FormatInt(p.Int, 10)
	case ParamBool:
		return strconv.FormatBool(p.Bool)
	case ParamDouble:
		return strconv.FormatFloat(p.Double, 'g', -1, 64)
	}
	return fmt.Sprintf("Param(kind %d)", int(p.Kind))
}

// Request is one inference request copied out of Triton: it stays valid after Triton released
// the original.
type Request struct {
	ID string // client's request id, "" if none
	// CorrelationID is the sequence id: numeric (CorrelationID, 0 = none) or a string
	// (CorrelationIDString, "" = none), never both.
	CorrelationID       uint64
	CorrelationIDString string
	SequenceStart       bool
	SequenceEnd         bool
	Inputs              []Tensor
	Params              map[string]Param
}

// Input returns the input tensor called name.
func (r *Request) Input(name string) (*Tensor, bool) {
	for i := range r.Inputs {
		if r.Inputs[i].Name == name {
			return &r.Inputs[i], true
		}
	}
	return nil, false
}

// InputString returns the single element of the BYTES input name (shape (1) or (1,1)).
// A missing or malformed input is a CodeInvalidArg error.
func (r *Request) InputString(name string) (string, error) {
	t, ok := r.Input(name)
	if !ok {
		return "", Errorf(CodeInvalidArg, "input %q is missing", name)
	}
	vals, err := t.Strings()
	if err != nil {
		return "", Errorf(CodeInvalidArg, "input %q: %w", name, err)
	}
	if len(vals) != 1 {
		return "", Errorf(CodeInvalidArg, "input %q: want 1 string, got %d (shape %v)", name, len(vals), t.Shape)
	}
	return string(vals[0]), nil
}
