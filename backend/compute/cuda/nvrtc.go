//go:build cgo

package cuda

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <stddef.h>

typedef int omni_nvrtcResult;
typedef struct omni_nvrtcProgram_ *omni_nvrtcProgram;

static void *nvrtc_lib;
static omni_nvrtcResult (*p_create)(omni_nvrtcProgram *, const char *, const char *, int, const char *const *, const char *const *);
static omni_nvrtcResult (*p_compile)(omni_nvrtcProgram, int, const char *const *);
static omni_nvrtcResult (*p_logsize)(omni_nvrtcProgram, size_t *);
static omni_nvrtcResult (*p_log)(omni_nvrtcProgram, char *);
static omni_nvrtcResult (*p_ptxsize)(omni_nvrtcProgram, size_t *);
static omni_nvrtcResult (*p_ptx)(omni_nvrtcProgram, char *);
static omni_nvrtcResult (*p_cubinsize)(omni_nvrtcProgram, size_t *);
static omni_nvrtcResult (*p_cubin)(omni_nvrtcProgram, char *);
static omni_nvrtcResult (*p_destroy)(omni_nvrtcProgram *);
static const char *(*p_errstr)(omni_nvrtcResult);
static omni_nvrtcResult (*p_version)(int *, int *);

// omni_nvrtc_open loads NVRTC from path; returns NULL or what is missing.
static const char *omni_nvrtc_open(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) return dlerror();
#define SYM(dst, name) if (!(*(void **)(&dst) = dlsym(h, name))) { dlclose(h); return "symbol " name " missing"; }
	SYM(p_create, "nvrtcCreateProgram")
	SYM(p_compile, "nvrtcCompileProgram")
	SYM(p_logsize, "nvrtcGetProgramLogSize")
	SYM(p_log, "nvrtcGetProgramLog")
	SYM(p_ptxsize, "nvrtcGetPTXSize")
	SYM(p_ptx, "nvrtcGetPTX")
	SYM(p_cubinsize, "nvrtcGetCUBINSize")
	SYM(p_cubin, "nvrtcGetCUBIN")
	SYM(p_destroy, "nvrtcDestroyProgram")
	SYM(p_errstr, "nvrtcGetErrorString")
	SYM(p_version, "nvrtcVersion")
#undef SYM
	nvrtc_lib = h;
	return NULL;
}

static omni_nvrtcResult omni_nvrtc_version(int *major, int *minor) { return p_version(major, minor); }
static const char *omni_nvrtc_errstr(omni_nvrtcResult r) { return p_errstr(r); }
static omni_nvrtcResult omni_nvrtc_create(omni_nvrtcProgram *p, const char *src, const char *name, int n, const char *const *hdrs, const char *const *names) {
	return p_create(p, src, name, n, hdrs, names);
}
static omni_nvrtcResult omni_nvrtc_compile(omni_nvrtcProgram p, int n, const char *const *opts) { return p_compile(p, n, opts); }
static omni_nvrtcResult omni_nvrtc_logsize(omni_nvrtcProgram p, size_t *n) { return p_logsize(p, n); }
static omni_nvrtcResult omni_nvrtc_log(omni_nvrtcProgram p, char *b) { return p_log(p, b); }
static omni_nvrtcResult omni_nvrtc_outsize(omni_nvrtcProgram p, int cubin, size_t *n) { return cubin ? p_cubinsize(p, n) : p_ptxsize(p, n); }
static omni_nvrtcResult omni_nvrtc_out(omni_nvrtcProgram p, int cubin, char *b) { return cubin ? p_cubin(p, b) : p_ptx(p, b); }
static omni_nvrtcResult omni_nvrtc_destroy(omni_nvrtcProgram *p) { return p_destroy(p); }
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"
)

// NVRTC compiles CUDA C++ to PTX or CUBIN at run time. One library is loaded per process.
type NVRTC struct {
	Path         string // the library loaded
	Major, Minor int    // its version
}

var (
	nvrtcOnce sync.Once
	nvrtcLib  *NVRTC
	nvrtcErr  error
)

// nvrtcCandidates are tried in order when no path is given: $OMNIKV_NVRTC, then the sonames of CUDA 13 and 12
// (the container's own NVRTC, matching its CUDA, comes first on its library path).
func nvrtcCandidates() []string {
	var c []string
	if p := os.Getenv("OMNIKV_NVRTC"); p != "" {
		c = append(c, p)
	}
	return append(c, "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so")
}

// OpenNVRTC loads NVRTC (once per process): from $OMNIKV_NVRTC, or the first of libnvrtc.so.13/.12 the
// dynamic linker finds. The error lists every library tried and why it failed.
func OpenNVRTC() (*NVRTC, error) {
	nvrtcOnce.Do(func() {
		var why []string
		for _, p := range nvrtcCandidates() {
			cp := C.CString(p)
			msg := C.omni_nvrtc_open(cp)
			C.free(unsafe.Pointer(cp))
			if msg != nil {
				why = append(why, C.GoString(msg))
				continue
			}
			var major, minor C.int
			if r := C.omni_nvrtc_version(&major, &minor); r != 0 {
				why = append(why, fmt.Sprintf("%s: nvrtcVersion failed (%d)", p, int(r)))
				continue
			}
			nvrtcLib = &NVRTC{Path: p, Major: int(major), Minor: int(minor)}
			return
		}
		nvrtcErr = fmt.Errorf("cuda: NVRTC (CUDA's run-time compiler) not found; set OMNIKV_NVRTC to libnvrtc.so.12 or .13 (scripts/fetch-nvrtc.sh installs one): %s", strings.Join(why, "; "))
	})
	return nvrtcLib, nvrtcErr
}

// Header is a source file a kernel may #include by Name.
type Header struct{ Name, Source string }

// CompileOptions say what to build.
type CompileOptions struct {
	Arch     string   // e.g. "sm_90" (CUBIN) or "compute_90" (PTX)
	Includes []string // -I directories (cuda_fp16.h, cuda_bf16.h for NVRTC before 13.3)
	Headers  []Header // in-memory headers
	Extra    []string // more options, e.g. "-DBLOCK=256"
}

// Compile compiles one translation unit; with an sm_ architecture it returns CUBIN, with compute_ PTX. A
// compile error returns NVRTC's log.
func (n *NVRTC) Compile(name, src string, o CompileOptions) ([]byte, error) {
	cubin := strings.HasPrefix(o.Arch, "sm_")
	opts := []string{"--gpu-architecture=" + o.Arch, "--std=c++17", "-default-device"}
	for _, d := range o.Includes {
		opts = append(opts, "-I"+d)
	}
	opts = append(opts, o.Extra...)
	cstrs := func(ss []string) (**C.char, func()) {
		if len(ss) == 0 {
			return nil, func() {}
		}
		arr := C.malloc(C.size_t(len(ss)) * C.size_t(unsafe.Sizeof(uintptr(0))))
		view := unsafe.Slice((**C.char)(arr), len(ss))
		for i, s := range ss {
			view[i] = C.CString(s)
		}
		return (**C.char)(arr), func() {
			for i := range ss {
				C.free(unsafe.Pointer(view[i]))
			}
			C.free(arr)
		}
	}
	hsrc := make([]string, len(o.Headers))
	hname := make([]string, len(o.Headers))
	for i, h := range o.Headers {
		hsrc[i], hname[i] = h.Source, h.Name
	}
	csrc, cname := C.CString(src), C.CString(name)
	defer C.free(unsafe.Pointer(csrc))
	defer C.free(unsafe.Pointer(cname))
	ch, freeH := cstrs(hsrc)
	defer freeH()
	cn, freeN := cstrs(hname)
	defer freeN()
	var prog C.omni_nvrtcProgram
	if r := C.omni_nvrtc_create(&prog, csrc, cname, C.int(len(o.Headers)), ch, cn); r != 0 {
		return nil, fmt.Errorf("cuda: nvrtc create %s: %s", name, C.GoString(C.omni_nvrtc_errstr(r)))
	}
	defer C.omni_nvrtc_destroy(&prog)
	co, freeO := cstrs(opts)
	defer freeO()
	if r := C.omni_nvrtc_compile(prog, C.int(len(opts)), co); r != 0 {
		return nil, fmt.Errorf("cuda: nvrtc compile %s for %s: %s\n%s", name, o.Arch, C.GoString(C.omni_nvrtc_errstr(r)), n.log(prog))
	}
	var size C.size_t
	flag := C.int(0)
	if cubin {
		flag = 1
	}
	if r := C.omni_nvrtc_outsize(prog, flag, &size); r != 0 {
		return nil, fmt.Errorf("cuda: nvrtc output size %s: %s", name, C.GoString(C.omni_nvrtc_errstr(r)))
	}
	out := make([]byte, int(size))
	if size > 0 {
		if r := C.omni_nvrtc_out(prog, flag, (*C.char)(unsafe.Pointer(&out[0]))); r != 0 {
			return nil, fmt.Errorf("cuda: nvrtc output %s: %s", name, C.GoString(C.omni_nvrtc_errstr(r)))
		}
	}
	return out, nil
}

func (n *NVRTC) log(prog C.omni_nvrtcProgram) string {
	var size C.size_t
	if C.omni_nvrtc_logsize(prog, &size) != 0 || size <= 1 {
		return ""
	}
	b := make([]byte, int(size))
	if C.omni_nvrtc_log(prog, (*C.char)(unsafe.Pointer(&b[0]))) != 0 {
		return ""
	}
	return strings.TrimRight(string(b), "\x00\n")
}
