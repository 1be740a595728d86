//go:build cgo && cudaemu

package cuda

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <stddef.h>

typedef const char *(*emu_launch_f)(const char *, int, int, int, int, int, int, unsigned long long *, int);
typedef void *(*emu_alloc_f)(size_t);
typedef void (*emu_free_f)(unsigned long long);
typedef void (*emu_copy_f)(unsigned long long, unsigned long long, size_t);
typedef void (*emu_set_f)(unsigned long long, int, size_t);
static emu_launch_f e_launch;
static emu_alloc_f e_alloc;
static emu_free_f e_free;
static emu_copy_f e_copy;
static emu_set_f e_set;

static const char *emu_open(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) return dlerror();
	e_launch = (emu_launch_f)dlsym(h, "emu_launch");
	e_alloc = (emu_alloc_f)dlsym(h, "emu_alloc");
	e_free = (emu_free_f)dlsym(h, "emu_free");
	e_copy = (emu_copy_f)dlsym(h, "emu_copy");
	e_set = (emu_set_f)dlsym(h, "emu_set");
	if (!e_launch || !e_alloc || !e_free || !e_copy || !e_set) return "emulator symbols missing";
	return NULL;
}
static const char *emu_run(const char *name, int gx, int gy, int gz, int bx, int by, int bz, unsigned long long *v, int n) {
	return e_launch(name, gx, gy, gz, bx, by, bz, v, n);
}
static void *emu_alloc_c(size_t n) { return e_alloc(n); }
static void emu_free_c(unsigned long long p) { e_free(p); }
static void emu_copy_c(unsigned long long d, unsigned long long s, size_t n) { e_copy(d, s, n); }
static void emu_set_c(unsigned long long d, int v, size_t n) { e_set(d, v, n); }
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// emuAPI runs the kernels on the CPU through a library built from kernels/*.cu with
// backend/compute/cuda/emu (host C++; each GPU thread a fiber). Every call completes before it returns, so
// streams and events are no-ops. Only for tests (build tag cudaemu): it checks the device's Go code and
// the kernels' arithmetic and indexing, not GPU timing or concurrency.
type emuAPI struct {
	vals []uint64
}

// OpenEmulated opens a Device whose kernels run on the CPU from the emulator library at lib.
func OpenEmulated(lib string) (*Device, error) {
	cp := C.CString(lib)
	defer C.free(unsafe.Pointer(cp))
	if msg := C.emu_open(cp); msg != nil {
		return nil, fmt.Errorf("cuda emulator %s: %s", lib, C.GoString(msg))
	}
	d := &Device{api: &emuAPI{vals: make([]uint64, maxArgs)}, info: Info{Name: "emulated on the CPU", Major: 9}, blas: "emulated: no cuBLASLt"}
	if err := d.init(); err != nil {
		return nil, err
	}
	return d, nil
}

func addr(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

func (e *emuAPI) alloc(n int, op string) (dptr, error) {
	p := C.emu_alloc_c(C.size_t(max(n, 1)))
	if p == nil {
		return 0, fmt.Errorf("emu alloc (%s): %d bytes", op, n)
	}
	return dptr(uintptr(p)), nil
}
func (e *emuAPI) free(p dptr, op string) error { C.emu_free_c(C.ulonglong(p)); return nil }
func (e *emuAPI) htod(p dptr, b []byte, s stream, op string) error {
	if len(b) > 0 {
		C.emu_copy_c(C.ulonglong(p), C.ulonglong(addr(b)), C.size_t(len(b)))
	}
	return nil
}
func (e *emuAPI) dtoh(b []byte, p dptr, s stream, op string) error {
	if len(b) > 0 {
		C.emu_copy_c(C.ulonglong(addr(b)), C.ulonglong(p), C.size_t(len(b)))
	}
	return nil
}
func (e *emuAPI) memset(p dptr, v byte, n int, s stream, op string) error {
	C.emu_set_c(C.ulonglong(p), C.int(v), C.size_t(n))
	return nil
}
func (e *emuAPI) hostAlloc(n int, op string) ([]byte, dptr, error) {
	p := C.emu_alloc_c(C.size_t(max(n, 1)))
	if p == nil {
		return nil, 0, fmt.Errorf("emu host alloc (%s): %d bytes", op, n)
	}
	return unsafe.Slice((*byte)(p), n), dptr(uintptr(p)), nil
}
func (e *emuAPI) hostFree(b []byte, op string) error             { C.emu_free_c(C.ulonglong(addr(b))); return nil }
func (e *emuAPI) hostRegister(b []byte, op string) (dptr, error) { return dptr(addr(b)), nil }
func (e *emuAPI) hostUnregister(b []byte, op string) error       { return nil }
func (e *emuAPI) newStream(op string) (stream, error)            { return stream{}, nil }
func (e *emuAPI) destroyStream(s stream)                         {}
func (e *emuAPI) syncStream(s stream, op string) error           { return nil }
func (e *emuAPI) newEvent(timed bool, op string) (event, error) {
	return event{}, nil
}
func (e *emuAPI) destroyEvent(ev event)                          {}
func (e *emuAPI) record(ev event, s stream, op string) error     { return nil }
func (e *emuAPI) wait(s stream, ev event, op string) error       { return nil }
func (e *emuAPI) elapsed(a, b event, op string) (float32, error) { return 0, nil }
func (e *emuAPI) close()                                         {}

func (e *emuAPI) run(name string, grid, block [3]int, s stream, op string, args ...any) error {
	if err := packArgs(e.vals, args); err != nil {
		return fmt.Errorf("emu launch %s (%s): %w", name, op, err)
	}
	for _, g := range grid {
		if g <= 0 {
			return nil
		}
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	one := func(v int) C.int { return C.int(max(v, 1)) }
	vals := (*C.ulonglong)(C.malloc(C.size_t(8*len(args) + 8)))
	defer C.free(unsafe.Pointer(vals))
	copy(unsafe.Slice((*uint64)(unsafe.Pointer(vals)), len(args)), e.vals[:len(args)])
	if msg := C.emu_run(cn, one(grid[0]), one(grid[1]), one(grid[2]), one(block[0]), one(block[1]), one(block[2]), vals, C.int(len(args))); msg != nil {
		return errors.New("emu launch " + name + " (" + op + "): " + C.GoString(msg))
	}
	return nil
}
