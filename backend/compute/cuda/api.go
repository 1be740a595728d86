//go:build cgo

package cuda

// gpuAPI is what Device asks of the GPU: the driver (realAPI, through stream.go) or, for the emulated
// conformance run, a host emulation of the kernels (emu.go, build tag cudaemu).
type gpuAPI interface {
	alloc(n int, op string) (dptr, error)
	free(p dptr, op string) error
	htod(p dptr, b []byte, s stream, op string) error
	dtoh(b []byte, p dptr, s stream, op string) error
	memset(p dptr, v byte, n int, s stream, op string) error
	hostAlloc(n int, op string) ([]byte, dptr, error)
	hostFree(b []byte, op string) error
	hostRegister(b []byte, op string) (dptr, error)
	hostUnregister(b []byte, op string) error
	newStream(op string) (stream, error)
	destroyStream(s stream)
	syncStream(s stream, op string) error
	newEvent(timed bool, op string) (event, error)
	destroyEvent(e event)
	record(e event, s stream, op string) error
	wait(s stream, e event, op string) error
	elapsed(a, b event, op string) (float32, error)
	// run queues kernel name (kernels/*.cu) on s.
	run(name string, grid, block [3]int, s stream, op string, args ...any) error
	close()
}

// realAPI is the driver with the kernels compiled for the GPU.
type realAPI struct {
	*drv
	ks *kernelSet
}

func (r *realAPI) run(name string, grid, block [3]int, s stream, op string, args ...any) error {
	return r.drv.launch(r.ks.get(name), grid, block, 0, s, op, args...)
}

func (r *realAPI) close() {
	if r.ks != nil {
		r.ks.unload(r.drv)
	}
	r.drv.close()
}
