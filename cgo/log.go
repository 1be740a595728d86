package main

/*
#include <stdlib.h>
#include "triton.h"
*/
import "C"

import (
	"runtime"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/serve"
	"github.com/rs/zerolog"
)

// logAt writes msg to Triton's log at level, naming the Go caller skip frames up.
func logAt(level C.TRITONSERVER_LogLevel, skip int, msg string) {
	if !C.TRITONSERVER_LogIsEnabled(level) {
		return
	}
	_, file, line, ok := runtime.Caller(skip + 1)
	if !ok {
		file, line = "omnikv", 0
	}
	cfile := C.CString(file)
	defer C.free(unsafe.Pointer(cfile))
	cmsg := C.CString(msg)
	defer C.free(unsafe.Pointer(cmsg))
	if e := C.TRITONSERVER_LogMessage(level, cfile, C.int(line), cmsg); e != nil {
		C.TRITONSERVER_ErrorDelete(e)
	}
}

func logInfo(msg string)    { logAt(C.OMNIKV_LOG_INFO, 1, msg) }
func logWarn(msg string)    { logAt(C.OMNIKV_LOG_WARN, 1, msg) }
func logError(msg string)   { logAt(C.OMNIKV_LOG_ERROR, 1, msg) }
func logVerbose(msg string) { logAt(C.OMNIKV_LOG_VERBOSE, 1, msg) }

// tritonWriter is a zerolog.LevelWriter that forwards each event to Triton's log, rendered as
// "message key=value ..." with the event's caller as file:line when it has one.
type tritonWriter struct{}

func (tritonWriter) Write(p []byte) (int, error) {
	return tritonWriter{}.WriteLevel(zerolog.NoLevel, p)
}

func (tritonWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	var level C.TRITONSERVER_LogLevel
	switch {
	case l == zerolog.NoLevel || l == zerolog.InfoLevel:
		level = C.OMNIKV_LOG_INFO
	case l <= zerolog.DebugLevel:
		level = C.OMNIKV_LOG_VERBOSE
	case l == zerolog.WarnLevel:
		level = C.OMNIKV_LOG_WARN
	default:
		level = C.OMNIKV_LOG_ERROR
	}
	if !C.TRITONSERVER_LogIsEnabled(level) {
		return len(p), nil
	}
	ev := serve.ParseLogEvent(p)
	if ev.File == "" {
		ev.File = "omnikv"
	}
	cfile := C.CString(ev.File)
	defer C.free(unsafe.Pointer(cfile))
	cmsg := C.CString(ev.Message)
	defer C.free(unsafe.Pointer(cmsg))
	if e := C.TRITONSERVER_LogMessage(level, cfile, C.int(ev.Line), cmsg); e != nil {
		C.TRITONSERVER_ErrorDelete(e)
	}
	return len(p), nil
}

// newLogger returns the zerolog logger that models log through: Debug events only when Triton's
// verbose log is on.
func newLogger() zerolog.Logger {
	level := zerolog.InfoLevel
	if C.TRITONSERVER_LogIsEnabled(C.OMNIKV_LOG_VERBOSE) {
		level = zerolog.DebugLevel
	}
	return zerolog.New(tritonWriter{}).Level(level).With().Caller().Logger()
}
