//go:build cgo

package cuda

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <stddef.h>

typedef int omni_CUresult;
typedef int omni_CUdevice;

static void *cuda_lib;
static omni_CUresult (*p_cuInit)(unsigned int);
static omni_CUresult (*p_cuDeviceGetCount)(int *);
static omni_CUresult (*p_cuDeviceGet)(omni_CUdevice *, int);
static omni_CUresult (*p_cuDeviceGetName)(char *, int, omni_CUdevice);
static omni_CUresult (*p_cuDeviceGetAttribute)(int *, int, omni_CUdevice);
static omni_CUresult (*p_cuDeviceTotalMem)(size_t *, omni_CUdevice);
static omni_CUresult (*p_cuDriverGetVersion)(int *);
static omni_CUresult (*p_cuGetErrorName)(omni_CUresult, const char **);
typedef void *omni_CUcontext;
typedef void *omni_CUmodule;
typedef void *omni_CUfunction;
typedef void *omni_CUstream;
typedef unsigned long long omni_CUdeviceptr;
static omni_CUresult (*p_cuDevicePrimaryCtxRetain)(omni_CUcontext *, omni_CUdevice);
static omni_CUresult (*p_cuCtxSetCurrent)(omni_CUcontext);
static omni_CUresult (*p_cuMemAlloc)(omni_CUdeviceptr *, size_t);
static omni_CUresult (*p_cuMemFree)(omni_CUdeviceptr);
static omni_CUresult (*p_cuMemcpyHtoD)(omni_CUdeviceptr, const void *, size_t);
static omni_CUresult (*p_cuMemcpyDtoH)(void *, omni_CUdeviceptr, size_t);
static omni_CUresult (*p_cuMemHostAlloc)(void **, size_t, unsigned int);
static omni_CUresult (*p_cuMemHostGetDevicePointer)(omni_CUdeviceptr *, void *, unsigned int);
static omni_CUresult (*p_cuMemFreeHost)(void *);
static omni_CUresult (*p_cuModuleLoadData)(omni_CUmodule *, const void *);
static omni_CUresult (*p_cuModuleUnload)(omni_CUmodule);
static omni_CUresult (*p_cuModuleGetFunction)(omni_CUfunction *, omni_CUmodule, const char *);
static omni_CUresult (*p_cuLaunchKernel)(omni_CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, omni_CUstream, void **, void **);
static omni_CUresult (*p_cuCtxSynchronize)(void);

// omni_cuda_open loads the driver library; returns NULL or what is missing.
static const char *omni_cuda_open(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) return dlerror();
#define SYM(dst, name) if (!(*(void **)(&dst) = dlsym(h, name))) { dlclose(h); return "symbol " name " missing"; }
	SYM(p_cuInit, "cuInit")
	SYM(p_cuDeviceGetCount, "cuDeviceGetCount")
	SYM(p_cuDeviceGet, "cuDeviceGet")
	SYM(p_cuDeviceGetName, "cuDeviceGetName")
	SYM(p_cuDeviceGetAttribute, "cuDeviceGetAttribute")
	SYM(p_cuDeviceTotalMem, "cuDeviceTotalMem_v2")
	SYM(p_cuDriverGetVersion, "cuDriverGetVersion")
	SYM(p_cuGetErrorName, "cuGetErrorName")
	SYM(p_cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")
	SYM(p_cuCtxSetCurrent, "cuCtxSetCurrent")
	SYM(p_cuMemAlloc, "cuMemAlloc_v2")
	SYM(p_cuMemFree, "cuMemFree_v2")
	SYM(p_cuMemcpyHtoD, "cuMemcpyHtoD_v2")
	SYM(p_cuMemcpyDtoH, "cuMemcpyDtoH_v2")
	SYM(p_cuMemHostAlloc, "cuMemHostAlloc")
	SYM(p_cuMemHostGetDevicePointer, "cuMemHostGetDevicePointer_v2")
	SYM(p_cuMemFreeHost, "cuMemFreeHost")
	SYM(p_cuModuleLoadData, "cuModuleLoadData")
	SYM(p_cuModuleUnload, "cuModuleUnload")
	SYM(p_cuModuleGetFunction, "cuModuleGetFunction")
	SYM(p_cuLaunchKernel, "cuLaunchKernel")
	SYM(p_cuCtxSynchronize, "cuCtxSynchronize")
#undef SYM
	cuda_lib = h;
	return NULL;
}

static omni_CUresult omni_cuInit(void) { return p_cuInit(0); }
static omni_CUresult omni_cuDeviceGetCount(int *n) { return p_cuDeviceGetCount(n); }
static omni_CUresult omni_cuDeviceGet(omni_CUdevice *d, int i) { return p_cuDeviceGet(d, i); }
static omni_CUresult omni_cuDeviceGetName(char *b, int n, omni_CUdevice d) { return p_cuDeviceGetName(b, n, d); }
static omni_CUresult omni_cuDeviceGetAttribute(int *v, int a, omni_CUdevice d) { return p_cuDeviceGetAttribute(v, a, d); }
static omni_CUresult omni_cuDeviceTotalMem(size_t *b, omni_CUdevice d) { return p_cuDeviceTotalMem(b, d); }
static omni_CUresult omni_cuDriverGetVersion(int *v) { return p_cuDriverGetVersion(v); }
static omni_CUresult omni_ctx(int ordinal) {
	omni_CUdevice d;
	omni_CUcontext c;
	omni_CUresult r = p_cuDeviceGet(&d, ordinal);
	if (r) return r;
	if ((r = p_cuDevicePrimaryCtxRetain(&c, d))) return r;
	return p_cuCtxSetCurrent(c);
}
static omni_CUresult omni_alloc(omni_CUdeviceptr *p, size_t n) { return p_cuMemAlloc(p, n); }
static omni_CUresult omni_free(omni_CUdeviceptr p) { return p_cuMemFree(p); }
static omni_CUresult omni_htod(omni_CUdeviceptr d, const void *h, size_t n) { return p_cuMemcpyHtoD(d, h, n); }
static omni_CUresult omni_dtoh(void *h, omni_CUdeviceptr d, size_t n) { return p_cuMemcpyDtoH(h, d, n); }
// Pinned host memory mapped into the device's address space (CU_MEMHOSTALLOC_PORTABLE|DEVICEMAP = 1|2).
static omni_CUresult omni_host_alloc(void **p, size_t n, omni_CUdeviceptr *dev) {
	omni_CUresult r = p_cuMemHostAlloc(p, n, 3);
	if (r) return r;
	return p_cuMemHostGetDevicePointer(dev, *p, 0);
}
static omni_CUresult omni_host_free(void *p) { return p_cuMemFreeHost(p); }
static omni_CUresult omni_module_load(omni_CUmodule *m, const void *image) { return p_cuModuleLoadData(m, image); }
static omni_CUresult omni_module_unload(omni_CUmodule m) { return p_cuModuleUnload(m); }
static omni_CUresult omni_function(omni_CUfunction *f, omni_CUmodule m, const char *name) { return p_cuModuleGetFunction(f, m, name); }
static omni_CUresult omni_launch(omni_CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, void **params) {
	return p_cuLaunchKernel(f, gx, gy, gz, bx, by, bz, 0, NULL, params, NULL);
}
static omni_CUresult omni_sync(void) { return p_cuCtxSynchronize(); }
static const char *omni_cuErrorName(omni_CUresult r) {
	const char *s = NULL;
	if (p_cuGetErrorName(r, &s) != 0 || s == NULL) return "unknown CUDA error";
	return s;
}
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"unsafe"
)

// CUDA attributes the probe reads (CUdevice_attribute values).
const (
	attrComputeCapabilityMajor = 75
	attrComputeCapabilityMinor = 76
	attrCanMapHostMemory       = 19
)

var (
	driverOnce sync.Once
	driverErr  error
	driverVer  int
)

// openDriver loads libcuda.so.1 ($OMNIKV_LIBCUDA overrides) and calls cuInit once per process. Without a
// driver, or without a GPU, the error says which.
func openDriver() error {
	driverOnce.Do(func() {
		path := os.Getenv("OMNIKV_LIBCUDA")
		if path == "" {
			path = "libcuda.so.1"
		}
		cp := C.CString(path)
		defer C.free(unsafe.Pointer(cp))
		if msg := C.omni_cuda_open(cp); msg != nil {
			driverErr = fmt.Errorf("cuda: no CUDA driver (%s: %s): a KIND_GPU instance needs the NVIDIA driver's libcuda.so.1", path, C.GoString(msg))
			return
		}
		if r := C.omni_cuInit(); r != 0 {
			driverErr = fmt.Errorf("cuda: cuInit: %s (driver %s loaded; no usable GPU?)", C.GoString(C.omni_cuErrorName(r)), path)
			return
		}
		var v C.int
		if C.omni_cuDriverGetVersion(&v) == 0 {
			driverVer = int(v)
		}
	})
	return driverErr
}

// check turns a CUresult into an error naming the call.
func check(r C.omni_CUresult, call string) error {
	if r == 0 {
		return nil
	}
	return fmt.Errorf("cuda: %s: %s", call, C.GoString(C.omni_cuErrorName(r)))
}

// Probe opens the driver and describes GPU ordinal; the error says what is missing (the driver, a GPU, the
// ordinal).
func Probe(ordinal int) (Info, error) {
	if err := openDriver(); err != nil {
		return Info{}, err
	}
	var n C.int
	if err := check(C.omni_cuDeviceGetCount(&n), "cuDeviceGetCount"); err != nil {
		return Info{}, err
	}
	if ordinal < 0 || ordinal >= int(n) {
		return Info{}, fmt.Errorf("cuda: GPU %d does not exist (%d visible)", ordinal, int(n))
	}
	var d C.omni_CUdevice
	if err := check(C.omni_cuDeviceGet(&d, C.int(ordinal)), "cuDeviceGet"); err != nil {
		return Info{}, err
	}
	var name [256]C.char
	if err := check(C.omni_cuDeviceGetName(&name[0], C.int(len(name)), d), "cuDeviceGetName"); err != nil {
		return Info{}, err
	}
	var major, minor, mapHost C.int
	for _, a := range []struct {
		dst  *C.int
		attr int
	}{{&major, attrComputeCapabilityMajor}, {&minor, attrComputeCapabilityMinor}, {&mapHost, attrCanMapHostMemory}} {
		if err := check(C.omni_cuDeviceGetAttribute(a.dst, C.int(a.attr), d), "cuDeviceGetAttribute"); err != nil {
			return Info{}, err
		}
	}
	var mem C.size_t
	if err := check(C.omni_cuDeviceTotalMem(&mem, d), "cuDeviceTotalMem"); err != nil {
		return Info{}, err
	}
	return Info{Ordinal: ordinal, Name: C.GoString(&name[0]), Major: int(major), Minor: int(minor), Memory: int64(mem),
		CanMapHost: mapHost != 0, Driver: driverVer}, nil
}

// The minimal driver calls the kernel tests use on a GPU (the device proper builds its streams, pools and
// fences on the same layer). Every call runs on the goroutine's locked OS thread with the GPU's primary
// context current.

// Context makes GPU ordinal's primary context current on this OS thread (call runtime.LockOSThread first).
func Context(ordinal int) error {
	if err := openDriver(); err != nil {
		return err
	}
	return check(C.omni_ctx(C.int(ordinal)), "cuDevicePrimaryCtxRetain")
}

// DevicePtr is device memory.
type DevicePtr uint64

// Alloc allocates n bytes of device memory.
func Alloc(n int) (DevicePtr, error) {
	var p C.omni_CUdeviceptr
	err := check(C.omni_alloc(&p, C.size_t(n)), "cuMemAlloc")
	return DevicePtr(p), err
}

// Free frees device memory.
func Free(p DevicePtr) error { return check(C.omni_free(C.omni_CUdeviceptr(p)), "cuMemFree") }

// CopyIn copies b to device memory at p.
func CopyIn(p DevicePtr, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return check(C.omni_htod(C.omni_CUdeviceptr(p), unsafe.Pointer(&b[0]), C.size_t(len(b))), "cuMemcpyHtoD")
}

// CopyOut copies device memory at p into b.
func CopyOut(b []byte, p DevicePtr) error {
	if len(b) == 0 {
		return nil
	}
	return check(C.omni_dtoh(unsafe.Pointer(&b[0]), C.omni_CUdeviceptr(p), C.size_t(len(b))), "cuMemcpyDtoH")
}

// Pinned is pinned host memory mapped into the device's address space: Host for the CPU, Dev for kernels.
type Pinned struct {
	Host []byte
	Dev  DevicePtr
}

// AllocPinned allocates n bytes of mapped pinned host memory.
func AllocPinned(n int) (Pinned, error) {
	var h unsafe.Pointer
	var d C.omni_CUdeviceptr
	if err := check(C.omni_host_alloc(&h, C.size_t(n), &d), "cuMemHostAlloc"); err != nil {
		return Pinned{}, err
	}
	return Pinned{Host: unsafe.Slice((*byte)(h), n), Dev: DevicePtr(d)}, nil
}

// FreePinned frees pinned host memory.
func FreePinned(p Pinned) error {
	return check(C.omni_host_free(unsafe.Pointer(unsafe.SliceData(p.Host))), "cuMemFreeHost")
}

// Module is loaded device code (a CUBIN or PTX image).
type Module struct{ m C.omni_CUmodule }

// LoadModule loads a CUBIN or PTX image.
func LoadModule(image []byte) (*Module, error) {
	img := C.CBytes(append(append([]byte(nil), image...), 0)) // PTX must be NUL-terminated
	defer C.free(img)
	var m C.omni_CUmodule
	if err := check(C.omni_module_load(&m, img), "cuModuleLoadData"); err != nil {
		return nil, err
	}
	return &Module{m: m}, nil
}

// Unload unloads the module.
func (m *Module) Unload() error { return check(C.omni_module_unload(m.m), "cuModuleUnload") }

// Function is a kernel of a module.
type Function struct {
	f    C.omni_CUfunction
	name string
}

// Function looks a kernel up by name.
func (m *Module) Function(name string) (*Function, error) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var f C.omni_CUfunction
	if err := check(C.omni_function(&f, m.m, cn), "cuModuleGetFunction "+name); err != nil {
		return nil, err
	}
	return &Function{f: f, name: name}, nil
}

// Dim3 is a launch dimension.
type Dim3 struct{ X, Y, Z int }

// Launch runs the kernel with args (each a DevicePtr, int32, int64 or float32, in the kernel's order) and
// waits for it.
func (f *Function) Launch(grid, block Dim3, args ...any) error {
	n := len(args)
	vals := C.malloc(C.size_t(8 * max(n, 1)))
	ptrs := C.malloc(C.size_t(8 * max(n, 1)))
	defer C.free(vals)
	defer C.free(ptrs)
	vs := unsafe.Slice((*uint64)(vals), max(n, 1))
	ps := unsafe.Slice((*unsafe.Pointer)(ptrs), max(n, 1))
	for i, a := range args {
		slot := unsafe.Pointer(&vs[i])
		switch v := a.(type) {
		case DevicePtr:
			*(*uint64)(slot) = uint64(v)
		case int32:
			*(*int32)(slot) = v
		case int64:
			*(*int64)(slot) = v
		case float32:
			*(*float32)(slot) = v
		default:
			return fmt.Errorf("cuda: launch %s: argument %d has type %T", f.name, i, a)
		}
		ps[i] = slot
	}
	one := func(v int) C.uint { return C.uint(max(v, 1)) }
	if err := check(C.omni_launch(f.f, one(grid.X), one(grid.Y), one(grid.Z), one(block.X), one(block.Y), one(block.Z), (*unsafe.Pointer)(ptrs)), "cuLaunchKernel "+f.name); err != nil {
		return err
	}
	return check(C.omni_sync(), "cuCtxSynchronize after "+f.name)
}
