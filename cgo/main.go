package main

// main is never called: Triton loads this package as a c-shared library and calls the
// TRITONBACKEND_* exports. Built without cgo (CGO_ENABLED=0), the package is this empty program.
func main() {}
