package main

/*
#include <stdlib.h>
#include "triton.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
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
