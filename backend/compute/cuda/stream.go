//go:build cgo

package cuda

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

typedef int xr;                       // CUresult
typedef void *xctx, *xstream, *xevent, *xmod, *xfunc;
typedef unsigned long long xptr;      // CUdeviceptr

static xr (*x_cuDeviceGet)(int *, int);
static xr (*x_cuDevicePrimaryCtxRetain)(xctx *, int);
static xr (*x_cuDevicePrimaryCtxRelease)(int);
static xr (*x_cuCtxSetCurrent)(xctx);
static xr (*x_cuMemGetInfo)(size_t *, size_t *);
static xr (*x_cuMemAlloc)(xptr *, size_t);
static xr (*x_cuMemFree)(xptr);
static xr (*x_cuMemcpyHtoDAsync)(xptr, const void *, size_t, xstream);
static xr (*x_cuMemcpyDtoHAsync)(void *, xptr, size_t, xstream);
static xr (*x_cuMemcpyDtoDAsync)(xptr, xptr, size_t, xstream);
static xr (*x_cuMemsetD8Async)(xptr, unsigned char, size_t, xstream);
static xr (*x_cuMemHostAlloc)(void **, size_t, unsigned);
static xr (*x_cuMemFreeHost)(void *);
static xr (*x_cuMemHostGetDevicePointer)(xptr *, void *, unsigned);
static xr (*x_cuMemHostRegister)(void *, size_t, unsigned);
static xr (*x_cuMemHostUnregister)(void *);
static xr (*x_cuStreamCreate)(xstream *, unsigned);
static xr (*x_cuStreamDestroy)(xstream);
static xr (*x_cuStreamSynchronize)(xstream);
static xr (*x_cuStreamWaitEvent)(xstream, xevent, unsigned);
static xr (*x_cuEventCreate)(xevent *, unsigned);
static xr (*x_cuEventDestroy)(xevent);
static xr (*x_cuEventRecord)(xevent, xstream);
static xr (*x_cuEventSynchronize)(xevent);
static xr (*x_cuEventElapsedTime)(float *, xevent, xevent);
static xr (*x_cuModuleLoadData)(xmod *, const void *);
static xr (*x_cuModuleUnload)(xmod);
static xr (*x_cuModuleGetFunction)(xfunc *, xmod, const char *);
static xr (*x_cuLaunchKernel)(xfunc, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, xstream, void **, void **);
static xr (*x_cuGetErrorName)(xr, const char **);

// omni_dev_open loads the symbols of the device layer (a second handle on the same library as driver.go's);
// returns NULL or what is missing. cuEventElapsedTime is optional (CUDA 13 renamed it _v2).
static const char *omni_dev_open(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) return dlerror();
#define SYM(dst, name) if (!(*(void **)(&dst) = dlsym(h, name))) { return "symbol " name " missing"; }
	SYM(x_cuDeviceGet, "cuDeviceGet")
	SYM(x_cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")
	SYM(x_cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2")
	SYM(x_cuCtxSetCurrent, "cuCtxSetCurrent")
	SYM(x_cuMemGetInfo, "cuMemGetInfo_v2")
	SYM(x_cuMemAlloc, "cuMemAlloc_v2")
	SYM(x_cuMemFree, "cuMemFree_v2")
	SYM(x_cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2")
	SYM(x_cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2")
	SYM(x_cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2")
	SYM(x_cuMemsetD8Async, "cuMemsetD8Async")
	SYM(x_cuMemHostAlloc, "cuMemHostAlloc")
	SYM(x_cuMemFreeHost, "cuMemFreeHost")
	SYM(x_cuMemHostGetDevicePointer, "cuMemHostGetDevicePointer_v2")
	SYM(x_cuMemHostRegister, "cuMemHostRegister_v2")
	SYM(x_cuMemHostUnregister, "cuMemHostUnregister")
	SYM(x_cuStreamCreate, "cuStreamCreate")
	SYM(x_cuStreamDestroy, "cuStreamDestroy_v2")
	SYM(x_cuStreamSynchronize, "cuStreamSynchronize")
	SYM(x_cuStreamWaitEvent, "cuStreamWaitEvent")
	SYM(x_cuEventCreate, "cuEventCreate")
	SYM(x_cuEventDestroy, "cuEventDestroy_v2")
	SYM(x_cuEventRecord, "cuEventRecord")
	SYM(x_cuEventSynchronize, "cuEventSynchronize")
	SYM(x_cuModuleLoadData, "cuModuleLoadData")
	SYM(x_cuModuleUnload, "cuModuleUnload")
	SYM(x_cuModuleGetFunction, "cuModuleGetFunction")
	SYM(x_cuLaunchKernel, "cuLaunchKernel")
	SYM(x_cuGetErrorName, "cuGetErrorName")
#undef SYM
	if (!(*(void **)(&x_cuEventElapsedTime) = dlsym(h, "cuEventElapsedTime_v2")))
		*(void **)(&x_cuEventElapsedTime) = dlsym(h, "cuEventElapsedTime");
	return NULL;
}

static const char *omni_dev_errname(xr r) {
	const char *s = NULL;
	if (x_cuGetErrorName(r, &s) != 0 || s == NULL) return "unknown CUDA error";
	return s;
}

// Every call below makes the device's context current on the calling OS thread first, inside the same C
// call, so that a goroutine that moved between threads still talks to its own context.
#define CUR(c) { xr r_ = x_cuCtxSetCurrent(c); if (r_) return r_; }

static xr omni_dev_ctx(int ordinal, xctx *c) {
	int d;
	xr r = x_cuDeviceGet(&d, ordinal);
	if (r) return r;
	if ((r = x_cuDevicePrimaryCtxRetain(c, d))) return r;
	return x_cuCtxSetCurrent(*c);
}
static xr omni_dev_ctx_release(int ordinal) {
	int d;
	xr r = x_cuDeviceGet(&d, ordinal);
	if (r) return r;
	return x_cuDevicePrimaryCtxRelease(d);
}
static xr omni_dev_current(xctx c) { return x_cuCtxSetCurrent(c); }
static xr omni_dev_meminfo(xctx c, size_t *fr, size_t *tot) { CUR(c) return x_cuMemGetInfo(fr, tot); }
static xr omni_dev_alloc(xctx c, xptr *p, size_t n) { CUR(c) return x_cuMemAlloc(p, n); }
static xr omni_dev_free(xctx c, xptr p) { CUR(c) return x_cuMemFree(p); }
static xr omni_dev_htod(xctx c, xptr d, const void *h, size_t n, xstream s) { CUR(c) return x_cuMemcpyHtoDAsync(d, h, n, s); }
static xr omni_dev_dtoh(xctx c, void *h, xptr d, size_t n, xstream s) { CUR(c) return x_cuMemcpyDtoHAsync(h, d, n, s); }
static xr omni_dev_dtod(xctx c, xptr d, xptr src, size_t n, xstream s) { CUR(c) return x_cuMemcpyDtoDAsync(d, src, n, s); }
static xr omni_dev_memset(xctx c, xptr d, unsigned char v, size_t n, xstream s) { CUR(c) return x_cuMemsetD8Async(d, v, n, s); }
// Pinned host memory mapped into the device's address space (CU_MEMHOSTALLOC_PORTABLE|DEVICEMAP = 1|2).
static xr omni_dev_host_alloc(xctx c, void **p, size_t n, xptr *dev) {
	CUR(c)
	xr r = x_cuMemHostAlloc(p, n, 3);
	if (r) return r;
	return x_cuMemHostGetDevicePointer(dev, *p, 0);
}
static xr omni_dev_host_free(xctx c, void *p) { CUR(c) return x_cuMemFreeHost(p); }
// Registers (pins and maps) existing host memory, e.g. a mapped file (CU_MEMHOSTREGISTER_PORTABLE|DEVICEMAP).
static xr omni_dev_host_register(xctx c, void *p, size_t n, xptr *dev) {
	CUR(c)
	xr r = x_cuMemHostRegister(p, n, 3);
	if (r) return r;
	return x_cuMemHostGetDevicePointer(dev, p, 0);
}
static xr omni_dev_host_unregister(xctx c, void *p) { CUR(c) return x_cuMemHostUnregister(p); }
// CU_STREAM_NON_BLOCKING = 1: no implicit synchronization with the legacy default stream.
static xr omni_dev_stream(xctx c, xstream *s) { CUR(c) return x_cuStreamCreate(s, 1); }
static xr omni_dev_stream_destroy(xctx c, xstream s) { CUR(c) return x_cuStreamDestroy(s); }
static xr omni_dev_stream_sync(xctx c, xstream s) { CUR(c) return x_cuStreamSynchronize(s); }
static xr omni_dev_wait(xctx c, xstream s, xevent e) { CUR(c) return x_cuStreamWaitEvent(s, e, 0); }
// timed: CU_EVENT_DEFAULT (0); else CU_EVENT_DISABLE_TIMING (2).
static xr omni_dev_event(xctx c, xevent *e, int timed) { CUR(c) return x_cuEventCreate(e, timed ? 0 : 2); }
static xr omni_dev_event_destroy(xctx c, xevent e) { CUR(c) return x_cuEventDestroy(e); }
static xr omni_dev_record(xctx c, xevent e, xstream s) { CUR(c) return x_cuEventRecord(e, s); }
static xr omni_dev_event_sync(xctx c, xevent e) { CUR(c) return x_cuEventSynchronize(e); }
static xr omni_dev_elapsed(xctx c, float *ms, xevent a, xevent b) {
	CUR(c)
	if (!x_cuEventElapsedTime) { *ms = 0; return 0; }
	return x_cuEventElapsedTime(ms, a, b);
}
static xr omni_dev_module(xctx c, xmod *m, const void *image) { CUR(c) return x_cuModuleLoadData(m, image); }
static xr omni_dev_module_unload(xctx c, xmod m) { CUR(c) return x_cuModuleUnload(m); }
static xr omni_dev_function(xctx c, xfunc *f, xmod m, const char *name) { CUR(c) return x_cuModuleGetFunction(f, m, name); }
// params: n slots of 8 bytes each (values), pointers: n pointers into params.
static xr omni_dev_launch(xctx c, xfunc f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                          unsigned shmem, xstream s, unsigned long long *params, void **ptrs, int n) {
	CUR(c)
	for (int i = 0; i < n; i++) ptrs[i] = &params[i];
	return x_cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shmem, s, ptrs, NULL);
}
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"unsafe"
)

// The device layer's driver calls. Threading: a device does not pin a goroutine to an OS thread; instead
// every C wrapper above makes the device's (primary) context current on the calling thread inside the same C
// call (cuCtxSetCurrent is a thread-local store, cheap), so a goroutine may move between threads between
// calls, and several devices in one process never see each other's context. One goroutine at a time uses a
// Device (the engine's scheduler), as the compute seam requires.

var (
	devOnce sync.Once
	devErr  error
)

// openDevLayer loads the device layer's symbols once (after openDriver succeeded).
func openDevLayer() error {
	if err := openDriver(); err != nil {
		return err
	}
	devOnce.Do(func() {
		path := os.Getenv("OMNIKV_LIBCUDA")
		if path == "" {
			path = "libcuda.so.1"
		}
		cp := C.CString(path)
		defer C.free(unsafe.Pointer(cp))
		if msg := C.omni_dev_open(cp); msg != nil {
			devErr = fmt.Errorf("cuda: driver %s lacks what the device needs: %s (driver too old?)", path, C.GoString(msg))
		}
	})
	return devErr
}

// cerr turns a CUresult into an error naming the call and what it was for (the op).
func cerr(r C.xr, call, op string) error {
	if r == 0 {
		return nil
	}
	return fmt.Errorf("cuda: %s (%s): %s", call, op, C.GoString(C.omni_dev_errname(r)))
}

// dptr is device memory (or the device address of mapped host memory).
type dptr uint64

// stream and event are driver handles (CUstream, CUevent), opaque.
type (
	stream struct{ p C.xstream }
	event  struct{ p C.xevent }
)

// drv is one device's context and launch scratch; its methods are the driver calls the device makes.
type drv struct {
	ordinal int
	ctx     C.xctx
	params  *C.ulonglong    // (maxArgs) launch parameter values, C memory reused by every launch
	ptrs    *unsafe.Pointer // (maxArgs) pointers to them
}

const maxArgs = 32

func newDrv(ordinal int) (*drv, error) {
	if err := openDevLayer(); err != nil {
		return nil, err
	}
	d := &drv{ordinal: ordinal}
	if r := C.omni_dev_ctx(C.int(ordinal), &d.ctx); r != 0 {
		return nil, cerr(r, "cuDevicePrimaryCtxRetain", fmt.Sprintf("open GPU %d", ordinal))
	}
	d.params = (*C.ulonglong)(C.malloc(8 * maxArgs))
	d.ptrs = (*unsafe.Pointer)(C.malloc(C.size_t(unsafe.Sizeof(uintptr(0))) * maxArgs))
	return d, nil
}

func (d *drv) close() {
	C.free(unsafe.Pointer(d.params))
	C.free(unsafe.Pointer(d.ptrs))
	C.omni_dev_ctx_release(C.int(d.ordinal))
}

// current makes the context current on this OS thread, for libraries that use the current context (cuBLASLt):
// the caller locks its goroutine to the thread around this and the library's calls.
func (d *drv) current(op string) error { return cerr(C.omni_dev_current(d.ctx), "cuCtxSetCurrent", op) }

func (d *drv) memInfo() (free, total int64, err error) {
	var f, t C.size_t
	err = cerr(C.omni_dev_meminfo(d.ctx, &f, &t), "cuMemGetInfo", "memory")
	return int64(f), int64(t), err
}

func (d *drv) alloc(n int, op string) (dptr, error) {
	var p C.xptr
	err := cerr(C.omni_dev_alloc(d.ctx, &p, C.size_t(max(n, 1))), "cuMemAlloc", fmt.Sprintf("%s: %d bytes", op, n))
	return dptr(p), err
}

func (d *drv) free(p dptr, op string) error {
	return cerr(C.omni_dev_free(d.ctx, C.xptr(p)), "cuMemFree", op)
}

// htod queues a copy of host bytes to the device on s. From pageable (Go) memory the driver stages the
// bytes before returning, so b may be reused at once.
func (d *drv) htod(p dptr, b []byte, s stream, op string) error {
	if len(b) == 0 {
		return nil
	}
	return cerr(C.omni_dev_htod(d.ctx, C.xptr(p), unsafe.Pointer(&b[0]), C.size_t(len(b)), s.p), "cuMemcpyHtoDAsync", op)
}

// dtoh queues a copy to host memory; into pageable memory it returns when the copy is done.
func (d *drv) dtoh(b []byte, p dptr, s stream, op string) error {
	if len(b) == 0 {
		return nil
	}
	return cerr(C.omni_dev_dtoh(d.ctx, unsafe.Pointer(&b[0]), C.xptr(p), C.size_t(len(b)), s.p), "cuMemcpyDtoHAsync", op)
}

func (d *drv) dtod(dst, src dptr, n int, s stream, op string) error {
	if n == 0 {
		return nil
	}
	return cerr(C.omni_dev_dtod(d.ctx, C.xptr(dst), C.xptr(src), C.size_t(n), s.p), "cuMemcpyDtoDAsync", op)
}

func (d *drv) memset0(p dptr, n int, s stream, op string) error { return d.memset(p, 0, n, s, op) }

// memset queues setting n bytes at p to v.
func (d *drv) memset(p dptr, v byte, n int, s stream, op string) error {
	if n == 0 {
		return nil
	}
	return cerr(C.omni_dev_memset(d.ctx, C.xptr(p), C.uchar(v), C.size_t(n), s.p), "cuMemsetD8Async", op)
}

// hostAlloc allocates n bytes of pinned host memory mapped into the device: host view and device address.
func (d *drv) hostAlloc(n int, op string) ([]byte, dptr, error) {
	var h unsafe.Pointer
	var p C.xptr
	if err := cerr(C.omni_dev_host_alloc(d.ctx, &h, C.size_t(n), &p), "cuMemHostAlloc", op); err != nil {
		return nil, 0, err
	}
	return unsafe.Slice((*byte)(h), n), dptr(p), nil
}

func (d *drv) hostFree(b []byte, op string) error {
	return cerr(C.omni_dev_host_free(d.ctx, unsafe.Pointer(unsafe.SliceData(b))), "cuMemFreeHost", op)
}

// hostRegister pins and maps memory the process already has (a mapped file's chunk): its device address.
func (d *drv) hostRegister(b []byte, op string) (dptr, error) {
	var p C.xptr
	err := cerr(C.omni_dev_host_register(d.ctx, unsafe.Pointer(unsafe.SliceData(b)), C.size_t(len(b)), &p), "cuMemHostRegister", op)
	return dptr(p), err
}

func (d *drv) hostUnregister(b []byte, op string) error {
	return cerr(C.omni_dev_host_unregister(d.ctx, unsafe.Pointer(unsafe.SliceData(b))), "cuMemHostUnregister", op)
}

func (d *drv) newStream(op string) (stream, error) {
	var s C.xstream
	err := cerr(C.omni_dev_stream(d.ctx, &s), "cuStreamCreate", op)
	return stream{s}, err
}

func (d *drv) destroyStream(s stream) {
	C.omni_dev_stream_destroy(d.ctx, s.p)
}

func (d *drv) syncStream(s stream, op string) error {
	return cerr(C.omni_dev_stream_sync(d.ctx, s.p), "cuStreamSynchronize", op)
}

// newEvent creates an event; timed events can be measured with elapsed.
func (d *drv) newEvent(timed bool, op string) (event, error) {
	var e C.xevent
	t := C.int(0)
	if timed {
		t = 1
	}
	err := cerr(C.omni_dev_event(d.ctx, &e, t), "cuEventCreate", op)
	return event{e}, err
}

func (d *drv) destroyEvent(e event) { C.omni_dev_event_destroy(d.ctx, e.p) }

func (d *drv) record(e event, s stream, op string) error {
	return cerr(C.omni_dev_record(d.ctx, e.p, s.p), "cuEventRecord", op)
}

// wait makes the work queued on s after this call wait for e.
func (d *drv) wait(s stream, e event, op string) error {
	return cerr(C.omni_dev_wait(d.ctx, s.p, e.p), "cuStreamWaitEvent", op)
}

func (d *drv) syncEvent(e event, op string) error {
	return cerr(C.omni_dev_event_sync(d.ctx, e.p), "cuEventSynchronize", op)
}

// elapsed returns the milliseconds between two completed timed events (0 when the driver lacks the call).
func (d *drv) elapsed(a, b event, op string) (float32, error) {
	var ms C.float
	err := cerr(C.omni_dev_elapsed(d.ctx, &ms, a.p, b.p), "cuEventElapsedTime", op)
	return float32(ms), err
}

// module is a loaded image; fn a kernel of it.
type (
	module struct{ p C.xmod }
	fn     struct {
		f    C.xfunc
		name string
	}
)

func (d *drv) loadModule(image []byte, op string) (module, error) {
	img := C.CBytes(append(append([]byte(nil), image...), 0)) // PTX must be NUL-terminated
	defer C.free(img)
	var m C.xmod
	err := cerr(C.omni_dev_module(d.ctx, &m, img), "cuModuleLoadData", op)
	return module{m}, err
}

func (d *drv) unloadModule(m module) { C.omni_dev_module_unload(d.ctx, m.p) }

func (d *drv) function(m module, name string) (*fn, error) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var f C.xfunc
	if err := cerr(C.omni_dev_function(d.ctx, &f, m.p, cn), "cuModuleGetFunction", name); err != nil {
		return nil, err
	}
	return &fn{f: f, name: name}, nil
}

// launch queues kernel f on s. args are dptr, int32, int64, float32 or uint64 (8-byte slots; the driver
// reads each at the size of the kernel's parameter). op names the seam op for errors.
func (d *drv) launch(f *fn, grid, block [3]int, shmem int, s stream, op string, args ...any) error {
	if len(args) > maxArgs {
		return fmt.Errorf("cuda: launch %s (%s): %d arguments, at most %d", f.name, op, len(args), maxArgs)
	}
	if err := packArgs(unsafe.Slice((*uint64)(unsafe.Pointer(d.params)), maxArgs), args); err != nil {
		return fmt.Errorf("cuda: launch %s (%s): %w", f.name, op, err)
	}
	for _, g := range grid {
		if g <= 0 {
			return nil // nothing to do
		}
	}
	one := func(v int) C.uint { return C.uint(max(v, 1)) }
	return cerr(C.omni_dev_launch(d.ctx, f.f, one(grid[0]), one(grid[1]), one(grid[2]), one(block[0]), one(block[1]), one(block[2]),
		C.uint(shmem), s.p, d.params, d.ptrs, C.int(len(args))), "cuLaunchKernel "+f.name, op)
}

// packArgs writes kernel arguments into 8-byte slots: dptr, int32, int (as int32), int64, uint64 or float32
// (the driver reads each slot at the size of the kernel's parameter).
func packArgs(vs []uint64, args []any) error {
	if len(args) > len(vs) {
		return fmt.Errorf("%d arguments, at most %d", len(args), len(vs))
	}
	for i, a := range args {
		vs[i] = 0
		slot := unsafe.Pointer(&vs[i])
		switch v := a.(type) {
		case dptr:
			*(*uint64)(slot) = uint64(v)
		case int32:
			*(*int32)(slot) = v
		case int:
			*(*int32)(slot) = int32(v)
		case int64:
			*(*int64)(slot) = v
		case uint64:
			*(*uint64)(slot) = v
		case float32:
			*(*float32)(slot) = v
		default:
			return fmt.Errorf("argument %d has type %T", i, a)
		}
	}
	return nil
}
