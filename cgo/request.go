package main

/*
#include "triton.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/serve"
)

// maxInputBytes bounds one input tensor copied out of a request (1 GiB).
const maxInputBytes = 1 << 30

// readRequest copies a Triton request's id, correlation id, flags, inputs and parameters into Go
// memory. It only reads: the request stays Triton's.
func readRequest(r *C.TRITONBACKEND_Request) (*serve.Request, error) {
	req := &serve.Request{Params: map[string]serve.Param{}}
	var id *C.char
	if err := check(C.TRITONBACKEND_RequestId(r, &id), "TRITONBACKEND_RequestId"); err != nil {
		return nil, err
	}
	req.ID = C.GoString(id)
	var corr C.uint64_t
	if e := C.TRITONBACKEND_RequestCorrelationId(r, &corr); e == nil {
		req.CorrelationID = uint64(corr)
	} else {
		// The id is a string: the numeric accessor fails by design.
		C.TRITONSERVER_ErrorDelete(e)
		var s *C.char
		if err := check(C.TRITONBACKEND_RequestCorrelationIdString(r, &s), "TRITONBACKEND_RequestCorrelationIdString"); err != nil {
			return nil, fmt.Errorf("request %q: %w", req.ID, err)
		}
		req.CorrelationIDString = C.GoString(s)
	}
	var flags C.uint32_t
	if err := check(C.TRITONBACKEND_RequestFlags(r, &flags), "TRITONBACKEND_RequestFlags"); err != nil {
		return nil, fmt.Errorf("request %q: %w", req.ID, err)
	}
	req.SequenceStart = flags&C.OMNIKV_REQUEST_SEQUENCE_START != 0
	req.SequenceEnd = flags&C.OMNIKV_REQUEST_SEQUENCE_END != 0

	var n C.uint32_t
	if err := check(C.TRITONBACKEND_RequestInputCount(r, &n), "TRITONBACKEND_RequestInputCount"); err != nil {
		return nil, fmt.Errorf("request %q: %w", req.ID, err)
	}
	for i := C.uint32_t(0); i < n; i++ {
		t, err := readInput(r, i)
		if err != nil {
			return nil, fmt.Errorf("request %q: %w", req.ID, err)
		}
		req.Inputs = append(req.Inputs, t)
	}
	if err := readParams(r, req); err != nil {
		return nil, fmt.Errorf("request %q: %w", req.ID, err)
	}
	return req, nil
}

// readInput copies input i of r, gathering its buffers, and checks size against shape.
func readInput(r *C.TRITONBACKEND_Request, i C.uint32_t) (serve.Tensor, error) {
	var in *C.TRITONBACKEND_Input
	if err := check(C.TRITONBACKEND_RequestInputByIndex(r, i, &in), "TRITONBACKEND_RequestInputByIndex"); err != nil {
		return serve.Tensor{}, fmt.Errorf("input %d: %w", i, err)
	}
	var (
		name     *C.char
		dtype    C.TRITONSERVER_DataType
		shape    *C.int64_t
		dims     C.uint32_t
		byteSize C.uint64_t
		nbuf     C.uint32_t
	)
	if err := check(C.TRITONBACKEND_InputProperties(in, &name, &dtype, &shape, &dims, &byteSize, &nbuf), "TRITONBACKEND_InputProperties"); err != nil {
		return serve.Tensor{}, fmt.Errorf("input %d: %w", i, err)
	}
	t := serve.Tensor{Name: C.GoString(name), DataType: serve.DataType(dtype)}
	if dims > 0 {
		for _, d := range unsafe.Slice(shape, int(dims)) {
			t.Shape = append(t.Shape, int64(d))
		}
	}
	if byteSize > maxInputBytes {
		return t, serve.Errorf(serve.CodeInvalidArg, "input %q: %d bytes exceed the limit of %d", t.Name, uint64(byteSize), maxInputBytes)
	}
	t.Data = make([]byte, 0, int(byteSize))
	for b := C.uint32_t(0); b < nbuf; b++ {
		var (
			ptr   unsafe.Pointer
			size  C.uint64_t
			mem   C.TRITONSERVER_MemoryType = C.OMNIKV_MEM_CPU
			memID C.int64_t
		)
		if err := check(C.TRITONBACKEND_InputBuffer(in, b, &ptr, &size, &mem, &memID), "TRITONBACKEND_InputBuffer"); err != nil {
			return t, fmt.Errorf("input %q buffer %d: %w", t.Name, b, err)
		}
		if mem == C.OMNIKV_MEM_GPU {
			return t, serve.Errorf(serve.CodeUnsupported, "input %q buffer %d is in GPU memory", t.Name, b)
		}
		if uint64(len(t.Data))+uint64(size) > uint64(byteSize) {
			return t, serve.Errorf(serve.CodeInvalidArg, "input %q: buffers exceed the declared %d bytes", t.Name, uint64(byteSize))
		}
		if size > 0 {
			t.Data = append(t.Data, unsafe.Slice((*byte)(ptr), int(size))...)
		}
	}
	if uint64(len(t.Data)) != uint64(byteSize) {
		return t, serve.Errorf(serve.CodeInvalidArg, "input %q: buffers hold %d bytes, declared %d", t.Name, len(t.Data), uint64(byteSize))
	}
	if err := t.Validate(); err != nil {
		return t, serve.Errorf(serve.CodeInvalidArg, "%w", err)
	}
	return t, nil
}

// readParams copies r's parameters into req.Params.
func readParams(r *C.TRITONBACKEND_Request, req *serve.Request) error {
	var n C.uint32_t
	if err := check(C.TRITONBACKEND_RequestParameterCount(r, &n), "TRITONBACKEND_RequestParameterCount"); err != nil {
		return err
	}
	for i := C.uint32_t(0); i < n; i++ {
		var (
			key *C.char
			typ C.TRITONSERVER_ParameterType
			vv  unsafe.Pointer
		)
		if err := check(C.TRITONBACKEND_RequestParameter(r, i, &key, &typ, &vv), "TRITONBACKEND_RequestParameter"); err != nil {
			return fmt.Errorf("parameter %d: %w", i, err)
		}
		k := C.GoString(key)
		if vv == nil {
			return serve.Errorf(serve.CodeInvalidArg, "parameter %q has no value", k)
		}
		var p serve.Param
		switch typ {
		case C.OMNIKV_PARAM_STRING:
			p = serve.Param{Kind: serve.ParamString, Str: C.GoString((*C.char)(vv))}
		case C.OMNIKV_PARAM_INT:
			p = serve.Param{Kind: serve.ParamInt, Int: int64(*(*C.int64_t)(vv))}
		case C.OMNIKV_PARAM_BOOL:
			p = serve.Param{Kind: serve.ParamBool, Bool: bool(*(*C.bool)(vv))}
		case C.OMNIKV_PARAM_DOUBLE:
			p = serve.Param{Kind: serve.ParamDouble, Double: float64(*(*C.double)(vv))}
		default:
			return serve.Errorf(serve.CodeInvalidArg, "parameter %q: type %d is not supported", k, int(typ))
		}
		req.Params[k] = p
	}
	return nil
}
