package main

/*
#include <stdlib.h>
#include "triton.h"
*/
import "C"

import (
	"fmt"
	"runtime/debug"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/serve"
)

// tritonCode maps a serve.Code to Triton's error code: the one place where the two meet.
func tritonCode(c serve.Code) C.TRITONSERVER_Error_Code {
	switch c {
	case serve.CodeInternal:
		return C.OMNIKV_ERR_INTERNAL
	case serve.CodeNotFound:
		return C.OMNIKV_ERR_NOT_FOUND
	case serve.CodeInvalidArg:
		return C.OMNIKV_ERR_INVALID_ARG
	case serve.CodeUnavailable:
		return C.OMNIKV_ERR_UNAVAILABLE
	case serve.CodeUnsupported:
		return C.OMNIKV_ERR_UNSUPPORTED
	case serve.CodeAlreadyExists:
		return C.OMNIKV_ERR_ALREADY_EXISTS
	case serve.CodeCancelled:
		return C.OMNIKV_ERR_CANCELLED
	default:
		return C.OMNIKV_ERR_UNKNOWN
	}
}

// serveCode maps Triton's error code back to a serve.Code.
func serveCode(c C.TRITONSERVER_Error_Code) serve.Code {
	switch c {
	case C.OMNIKV_ERR_INTERNAL:
		return serve.CodeInternal
	case C.OMNIKV_ERR_NOT_FOUND:
		return serve.CodeNotFound
	case C.OMNIKV_ERR_INVALID_ARG:
		return serve.CodeInvalidArg
	case C.OMNIKV_ERR_UNAVAILABLE:
		return serve.CodeUnavailable
	case C.OMNIKV_ERR_UNSUPPORTED:
		return serve.CodeUnsupported
	case C.OMNIKV_ERR_ALREADY_EXISTS:
		return serve.CodeAlreadyExists
	case C.OMNIKV_ERR_CANCELLED:
		return serve.CodeCancelled
	default:
		return serve.CodeUnknown
	}
}

// newError makes a Triton error; the caller (or Triton, when it is returned from an export)
// owns it.
func newError(code serve.Code, msg string) *C.TRITONSERVER_Error {
	cmsg := C.CString(msg)
	defer C.free(unsafe.Pointer(cmsg))
	return C.TRITONSERVER_ErrorNew(tritonCode(code), cmsg)
}

// toTriton converts a Go error to a Triton error (nil stays nil).
func toTriton(err error) *C.TRITONSERVER_Error {
	if err == nil {
		return nil
	}
	return newError(serve.CodeOf(err), err.Error())
}

// check converts a Triton error returned by call to a Go error and deletes it.
func check(e *C.TRITONSERVER_Error, call string) error {
	if e == nil {
		return nil
	}
	defer C.TRITONSERVER_ErrorDelete(e)
	return serve.Errorf(serveCode(C.TRITONSERVER_ErrorCode(e)), "%s: %s", call, C.GoString(C.TRITONSERVER_ErrorMessage(e)))
}

// recovered logs a recovered panic with its stack and returns an INTERNAL error, naming where it
// happened, for the client (without the stack).
func recovered(where string, p any) error {
	err := serve.Errorf(serve.CodeInternal, "%s: internal error: panic: %v", where, p)
	logAt(C.OMNIKV_LOG_ERROR, 2, fmt.Sprintf("%v\n%s", err, debug.Stack()))
	return err
}

// guarded runs fn and converts its error, or a panic inside it, into a Triton error.
func guarded(where string, fn func() error) (cerr *C.TRITONSERVER_Error) {
	defer func() {
		if p := recover(); p != nil {
			cerr = toTriton(recovered(where, p))
		}
	}()
	if err := fn(); err != nil {
		return toTriton(fmt.Errorf("%s: %w", where, err))
	}
	return nil
}
