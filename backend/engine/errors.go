package engine

import (
	"context"
	"errors"
	"fmt"
)

// Kind classifies an engine error for the caller (serve maps kinds to Triton error codes, in one place).
type Kind int

// Error kinds.
const (
	KindInternal    Kind = iota // a bug or a device failure
	KindInvalid                 // the request is wrong: fixing it is the caller's job
	KindUnavailable             // no room now (memory budget, session limit, queue) or the engine is closed
	KindNotFound                // the session does not exist (never started, ended or expired)
	KindConflict                // the session is running another turn
	KindCancelled               // the caller cancelled
)

// Error is an engine error of a kind.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func errorf(k Kind, format string, a ...any) error {
	return &Error{Kind: k, Err: fmt.Errorf(format, a...)}
}

// KindOf returns the kind of err: that of the outermost *Error in its chain; context cancellation is
// KindCancelled and any other error KindInternal.
func KindOf(err error) Kind {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Kind
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return KindCancelled
	}
	return KindInternal
}

// ErrClosed is returned by Submit and Generate after Close.
var ErrClosed = &Error{Kind: KindUnavailable, Err: errors.New("engine: closed")}

// ErrBusy is returned when the submission queue is full.
var ErrBusy = &Error{Kind: KindUnavailable, Err: errors.New("engine: queue full")}
