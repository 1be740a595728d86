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
