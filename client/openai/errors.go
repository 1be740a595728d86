package openai

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/omnikv-triton/omnikv-triton/client"
)

// Error is a failure as the OpenAI API reports it: an HTTP status and the body
// {"error": {"message", "type", "param", "code"}}.
type Error struct {
	Status  int    // HTTP status
	Message string // for a person: what is wrong and, where it helps, what is accepted
	Type    string // invalid_request_error, authentication_error, server_error, ...
	Param   string // the request field at fault; "" for none (JSON null)
	Code    string // a machine-readable code, e.g. model_not_found; "" for none (JSON null)
}

func (e *Error) Error() string {
	if e.Param != "" {
		return fmt.Sprintf("%d %s (param %s): %s", e.Status, e.Type, e.Param, e.Message)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Type, e.Message)
}

// body is the JSON of e.
func (e *Error) body() errorBody {
	b := errorBody{}
	b.Error.Message, b.Error.Type = e.Message, e.Type
	if e.Param != "" {
		b.Error.Param = &e.Param
	}
	if e.Code != "" {
		b.Error.Code = &e.Code
	}
	return b
}

type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// invalid is a 400 invalid_request_error about param.
func invalid(param, format string, a ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Message: fmt.Sprintf(format, a...)}
}

// unsupported is a 400 for a field this gateway understands but the backend cannot honour.
func unsupported(param, format string, a ...any) *Error {
	e := invalid(param, format, a...)
	e.Code = "unsupported_parameter"
	return e
}

// modelNotFound is the 404 for a model this gateway does not serve.
func modelNotFound(model string, served []string) *Error {
	return &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Param: "model", Code: "model_not_found",
		Message: fmt.Sprintf("The model %q does not exist on this server (served: %s)", model, strings.Join(served, ", "))}
}

// unavailableHints are texts of the omnikv backend's and Triton's errors that mean "no room now, try
// later" (the backend's UNAVAILABLE code does not survive Triton's gRPC stream, only its message).
// Triton's "has no available versions" is a model it knows but has not loaded (loading, unloading,
// or failed to load).
var unavailableHints = []string{"no KV memory", "session limit reached", "queue full", "engine: closed", "has no available versions"}

// notFoundHints mark Triton's answer for a model it does not have ("Request for unknown model: 'x'
// is not found").
var notFoundHints = []string{"is not found"}

// fromTriton maps an error of a Triton call to an *Error. It is the one place where Triton's
// failures get HTTP statuses: an error message of the model (a *client.ServerError) is the
// client's fault (400) unless its text says the server is out of room (503) or the model is
// unknown (404); a gRPC status maps by code; a cancelled context is 499 (the client went away).
func fromTriton(err error) *Error {
	var oe *Error
	if errors.As(err, &oe) {
		return oe
	}
	var se *client.ServerError
	if errors.As(err, &se) {
		msg := "Triton: " + se.Message
		for _, h := range unavailableHints {
			if strings.Contains(se.Message, h) {
				return &Error{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "server_overloaded", Message: msg}
			}
		}
		for _, h := range notFoundHints {
			if strings.Contains(se.Message, h) {
				return &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Param: "model", Code: "model_not_found", Message: msg}
			}
		}
		if strings.Contains(strings.ToLower(se.Message), "internal") {
			return &Error{Status: http.StatusInternalServerError, Type: "server_error", Message: msg}
		}
		return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: msg}
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Status: 499, Type: "invalid_request_error", Code: "client_closed_request", Message: "the client closed the request"}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: http.StatusGatewayTimeout, Type: "server_error", Code: "timeout", Message: fmt.Sprintf("Triton did not answer in time: %v", err)}
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		e := &Error{Type: "server_error", Message: fmt.Sprintf("Triton gRPC call failed: %v", err)}
		switch st.Code() {
		case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
			e.Status, e.Type = http.StatusBadRequest, "invalid_request_error"
		case codes.NotFound:
			e.Status, e.Type, e.Code = http.StatusNotFound, "invalid_request_error", "model_not_found"
		case codes.ResourceExhausted:
			e.Status, e.Type, e.Code = http.StatusTooManyRequests, "rate_limit_error", "server_overloaded"
		case codes.Unavailable:
			e.Status, e.Code = http.StatusServiceUnavailable, "triton_unavailable"
		case codes.DeadlineExceeded:
			e.Status, e.Code = http.StatusGatewayTimeout, "timeout"
		case codes.Unimplemented:
			e.Status = http.StatusNotImplemented
		case codes.Canceled:
			e.Status, e.Code = 499, "client_closed_request"
		default:
			e.Status = http.StatusInternalServerError
		}
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Type: "server_error", Message: err.Error()}
}
