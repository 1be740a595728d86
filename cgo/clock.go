package main

/*
#include <time.h>
*/
import "C"

// nowNS reads CLOCK_MONOTONIC in nanoseconds: the steady clock that Triton stamps requests with,
// so that the statistics we report line up with its queue timestamps.
func nowNS() uint64 {
	var ts C.struct_timespec
	C.clock_gettime(C.CLOCK_MONOTONIC, &ts)
	return uint64(ts.tv_sec)*1_000_000_000 + uint64(ts.tv_nsec)
}
