// Command cgo is libtriton_omnikv.so, the omnikv Triton backend, and the project's only link to
// the Triton C API. It owns: the project's own declarations of that API (triton.h), the
// //export TRITONBACKEND_* entry points (exports.go: lifecycle; execute.go: the request
// ownership rule), adapters between Triton handles and the plain-Go types of backend/serve
// (request.go reads a request into a serve.Request, sender.go sends serve.Responses through a
// response factory), error conversion in both directions in one place (errors.go), the Triton
// log sink for zerolog (log.go), Triton's steady clock for statistics (clock.go), the engine's
// metrics as Triton custom metrics on the metrics port (metrics.go), and the linker export map
// (exports.map).
//
// Build (needs cgo; the Triton symbols stay undefined and resolve from the server process):
//
//	go build -buildmode=c-shared -o libtriton_omnikv.so \
//	    -ldflags "-extldflags -Wl,--version-script=$PWD/cgo/exports.map" ./cgo
//
// Only one Go runtime may live in a process, so everything Go that the backend runs is linked
// into this one library.
package main
