package serve

import (
	"context"
	"errors"
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/engine"
)

// Code classifies an error for the client. The numeric values equal Triton's
// TRITONSERVER_Error_Code values; cgo/ still maps them explicitly.
type Code int

// Error codes.
const (
	CodeUnknown       Code = 0
	CodeInternal      Code = 1
	CodeNotFound      Code = 2
	CodeInvalidArg    Code = 3
	CodeUnavailable   Code = 4
	CodeUnsupported   Code = 5
	CodeAlreadyExists Code = 6
	CodeCancelled     Code = 7
)

var codeNames = map[Code]string{
	CodeUnknown: "UNKNOWN", CodeInternal: "INTERNAL", CodeNotFound: "NOT_FOUND",
	CodeInvalidArg: "INVALID_ARG", CodeUnavailable: "UNAVAILABLE", CodeUnsupported: "UNSUPPORTED",
	CodeAlreadyExists: "ALREADY_EXISTS", CodeCancelled: "CANCELLED",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("Code(%d)", int(c))
}

// Error is an error with a Code.
type Error struct {
	Code Code
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *Error) Unwrap() error { return e.Err }

// Errorf formats an error carrying code; %w wraps as in fmt.Errorf.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// CodeOf returns the code of the outermost *Error in err's chain; context cancellation maps to
// CodeCancelled, a nil error to CodeUnknown and any other error to CodeInternal.
func CodeOf(err error) Code {
	var e *Error
	switch {
	case err == nil:
		return CodeUnknown
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return CodeCancelled
	default:
		return CodeInternal
	}
}

// engineCodes maps engine error kinds to codes.
var engineCodes = map[engine.Kind]Code{
	engine.KindInternal: CodeInternal, engine.KindInvalid: CodeInvalidArg, engine.KindUnavailable: CodeUnavailable,
	engine.KindNotFound: CodeNotFound, engine.KindConflict: CodeAlreadyExists, engine.KindCancelled: CodeCancelled,
}

// engineError gives an engine error its code (nil stays nil).
func engineError(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: engineCodes[engine.KindOf(err)], Err: err}
}
