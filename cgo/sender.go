package main

/*
#include <stdlib.h>
#include "triton.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/serve"
)

// sender implements serve.Sender over a Triton response factory (decoupled responses). It owns
// the factory; close deletes it. mu orders close against Cancelled, which a watcher goroutine
// may call concurrently: no call touches the factory after close.
type sender struct {
	mu    sync.Mutex
	f     *C.TRITONBACKEND_ResponseFactory // nil once closed
	reqID string                           // for error messages
}

// errClosed is returned by a send after close.
var errClosed = serve.Errorf(serve.CodeInternal, "response factory already deleted")

func newSender(r *C.TRITONBACKEND_Request, reqID string) (*sender, error) {
	s := &sender{reqID: reqID}
	if err := check(C.TRITONBACKEND_ResponseFactoryNew(&s.f, r), "TRITONBACKEND_ResponseFactoryNew"); err != nil {
		return nil, fmt.Errorf("request %q: %w", reqID, err)
	}
	return s, nil
}

func (s *sender) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return
	}
	if err := check(C.TRITONBACKEND_ResponseFactoryDelete(s.f), "TRITONBACKEND_ResponseFactoryDelete"); err != nil {
		logError(fmt.Sprintf("request %q: %v", s.reqID, err))
	}
	s.f = nil
}

// newResponse starts a response; the caller holds s.mu.
func (s *sender) newResponse() (*C.TRITONBACKEND_Response, error) {
	if s.f == nil {
		return nil, fmt.Errorf("request %q: %w", s.reqID, errClosed)
	}
	var resp *C.TRITONBACKEND_Response
	if err := check(C.TRITONBACKEND_ResponseNewFromFactory(&resp, s.f), "TRITONBACKEND_ResponseNewFromFactory"); err != nil {
		return nil, fmt.Errorf("request %q: %w", s.reqID, err)
	}
	return resp, nil
}

// Send builds one response with r's outputs and parameters and sends it.
func (s *sender) Send(r serve.Response) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp, err := s.newResponse()
	if err != nil {
		return err
	}
	if err := fillResponse(resp, r); err != nil {
		C.TRITONBACKEND_ResponseDelete(resp)
		return fmt.Errorf("request %q: %w", s.reqID, err)
	}
	var flags C.uint32_t
	if r.Final {
		flags = C.OMNIKV_RESPONSE_COMPLETE_FINAL
	}
	if err := check(C.TRITONBACKEND_ResponseSend(resp, flags, nil), "TRITONBACKEND_ResponseSend"); err != nil {
		return fmt.Errorf("request %q: %w", s.reqID, err)
	}
	return nil
}

// SendError sends err as the final response.
func (s *sender) SendError(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp, rerr := s.newResponse()
	if rerr != nil {
		return rerr
	}
	terr := toTriton(err)
	defer C.TRITONSERVER_ErrorDelete(terr) // ResponseSend leaves the error to the caller
	if e := check(C.TRITONBACKEND_ResponseSend(resp, C.OMNIKV_RESPONSE_COMPLETE_FINAL, terr), "TRITONBACKEND_ResponseSend"); e != nil {
		return fmt.Errorf("request %q: %w", s.reqID, e)
	}
	return nil
}

// Finish sends the final flag without a response.
func (s *sender) Finish() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("request %q: %w", s.reqID, errClosed)
	}
	if err := check(C.TRITONBACKEND_ResponseFactorySendFlags(s.f, C.OMNIKV_RESPONSE_COMPLETE_FINAL), "TRITONBACKEND_ResponseFactorySendFlags"); err != nil {
		return fmt.Errorf("request %q: %w", s.reqID, err)
	}
	return nil
}

// Cancelled asks Triton whether the client cancelled the request.
func (s *sender) Cancelled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return true // closed: nobody is listening any more
	}
	var b C.bool
	if err := check(C.TRITONBACKEND_ResponseFactoryIsCancelled(s.f, &b), "TRITONBACKEND_ResponseFactoryIsCancelled"); err != nil {
		logWarn(fmt.Sprintf("request %q: %v", s.reqID, err))
		return false
	}
	return bool(b)
}

// fillResponse adds r's outputs and parameters to resp.
func fillResponse(resp *C.TRITONBACKEND_Response, r serve.Response) error {
	for i := range r.Outputs {
		if err := addOutput(resp, &r.Outputs[i]); err != nil {
			return err
		}
	}
	for k, p := range r.Params {
		if err := setParam(resp, k, p); err != nil {
			return err
		}
	}
	return nil
}

// addOutput copies tensor t into a new output of resp.
func addOutput(resp *C.TRITONBACKEND_Response, t *serve.Tensor) error {
	if err := t.Validate(); err != nil {
		return serve.Errorf(serve.CodeInternal, "output: %w", err)
	}
	name := C.CString(t.Name)
	defer C.free(unsafe.Pointer(name))
	var shape *C.int64_t // (dims)
	if len(t.Shape) > 0 {
		cs := C.malloc(C.size_t(8 * len(t.Shape)))
		defer C.free(cs)
		dims := unsafe.Slice((*C.int64_t)(cs), len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = C.int64_t(d)
		}
		shape = (*C.int64_t)(cs)
	}
	var out *C.TRITONBACKEND_Output
	if err := check(C.TRITONBACKEND_ResponseOutput(resp, &out, name, C.TRITONSERVER_DataType(t.DataType), shape, C.uint32_t(len(t.Shape))), "TRITONBACKEND_ResponseOutput"); err != nil {
		return fmt.Errorf("output %q: %w", t.Name, err)
	}
	var (
		buf   unsafe.Pointer
		mem   C.TRITONSERVER_MemoryType = C.OMNIKV_MEM_CPU
		memID C.int64_t
	)
	if err := check(C.TRITONBACKEND_OutputBuffer(out, &buf, C.uint64_t(len(t.Data)), &mem, &memID), "TRITONBACKEND_OutputBuffer"); err != nil {
		return fmt.Errorf("output %q: %w", t.Name, err)
	}
	if mem == C.OMNIKV_MEM_GPU {
		return serve.Errorf(serve.CodeUnsupported, "output %q: Triton gave a GPU buffer", t.Name)
	}
	if len(t.Data) > 0 {
		copy(unsafe.Slice((*byte)(buf), len(t.Data)), t.Data)
	}
	return nil
}

// setParam sets one response parameter.
func setParam(resp *C.TRITONBACKEND_Response, key string, p serve.Param) error {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var e *C.TRITONSERVER_Error
	switch p.Kind {
	case serve.ParamString:
		cv := C.CString(p.Str)
		defer C.free(unsafe.Pointer(cv))
		e = C.TRITONBACKEND_ResponseSetStringParameter(resp, ck, cv)
	case serve.ParamInt:
		e = C.TRITONBACKEND_ResponseSetIntParameter(resp, ck, C.int64_t(p.Int))
	case serve.ParamBool:
		e = C.TRITONBACKEND_ResponseSetBoolParameter(resp, ck, C.bool(p.Bool))
	default:
		return serve.Errorf(serve.CodeInternal, "response parameter %q: kind %d not supported", key, int(p.Kind))
	}
	if err := check(e, "TRITONBACKEND_ResponseSet*Parameter"); err != nil {
		return fmt.Errorf("response parameter %q: %w", key, err)
	}
	return nil
}
