//go:build cgo

package cuda

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <stdint.h>
#include <stddef.h>

typedef int lt_status;
typedef void *lt_handle, *lt_desc, *lt_layout;

static lt_status (*lt_create)(lt_handle *);
static lt_status (*lt_destroy)(lt_handle);
static lt_status (*lt_desc_create)(lt_desc *, int, int);
static lt_status (*lt_desc_set)(lt_desc, int, const void *, size_t);
static lt_status (*lt_desc_destroy)(lt_desc);
static lt_status (*lt_layout_create)(lt_layout *, int, uint64_t, uint64_t, int64_t);
static lt_status (*lt_layout_destroy)(lt_layout);
static lt_status (*lt_matmul)(lt_handle, lt_desc, const void *, const void *, lt_layout, const void *, lt_layout,
                              const void *, const void *, lt_layout, void *, lt_layout, const void *, void *, size_t, void *);

// omni_lt_open loads cuBLASLt from path; NULL or what is missing.
static const char *omni_lt_open(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) return dlerror();
#define SYM(dst, name) if (!(*(void **)(&dst) = dlsym(h, name))) { dlclose(h); return "symbol " name " missing"; }
	SYM(lt_create, "cublasLtCreate")
	SYM(lt_destroy, "cublasLtDestroy")
	SYM(lt_desc_create, "cublasLtMatmulDescCreate")
	SYM(lt_desc_set, "cublasLtMatmulDescSetAttribute")
	SYM(lt_desc_destroy, "cublasLtMatmulDescDestroy")
	SYM(lt_layout_create, "cublasLtMatrixLayoutCreate")
	SYM(lt_layout_destroy, "cublasLtMatrixLayoutDestroy")
	SYM(lt_matmul, "cublasLtMatmul")
#undef SYM
	return NULL;
}

static lt_status omni_lt_handle(lt_handle *h) { return lt_create(h); }
static void omni_lt_close(lt_handle h) { lt_destroy(h); }

// omni_lt_gemm: D (rows, n) column-major = A^T B with A (cols, rows) column-major (= the weight, row-major
// (rows, cols)) and B (cols, n) column-major (= x, row-major (n, cols)), A and B of type ab (CUDA_R_16F 2,
// CUDA_R_16BF 14), D float32 (CUDA_R_32F 0), computed in float32 (CUBLAS_COMPUTE_32F 68). Returns the first
// failing status; *where names the call.
static lt_status omni_lt_gemm(lt_handle h, int ab, uint64_t rows, uint64_t cols, uint64_t n, uint64_t a, uint64_t b,
                              uint64_t d, uint64_t ws, size_t wsSize, void *stream, const char **where) {
	lt_desc desc = NULL;
	lt_layout la = NULL, lb = NULL, ld = NULL;
	lt_status r;
	const int opT = 1, opN = 0; // CUBLAS_OP_T, CUBLAS_OP_N
	const float alpha = 1.0f, beta = 0.0f;
	*where = "cublasLtMatmulDescCreate";
	if ((r = lt_desc_create(&desc, 68, 0))) goto out;
	*where = "cublasLtMatmulDescSetAttribute";
	if ((r = lt_desc_set(desc, 3, &opT, sizeof opT))) goto out; // CUBLASLT_MATMUL_DESC_TRANSA
	if ((r = lt_desc_set(desc, 4, &opN, sizeof opN))) goto out; // CUBLASLT_MATMUL_DESC_TRANSB
	*where = "cublasLtMatrixLayoutCreate";
	if ((r = lt_layout_create(&la, ab, cols, rows, (int64_t)cols))) goto out;
	if ((r = lt_layout_create(&lb, ab, cols, n, (int64_t)cols))) goto out;
	if ((r = lt_layout_create(&ld, 0, rows, n, (int64_t)rows))) goto out;
	*where = "cublasLtMatmul";
	r = lt_matmul(h, desc, &alpha, (const void *)a, la, (const void *)b, lb, &beta, (const void *)d, ld, (void *)d, ld, NULL, (void *)ws, wsSize, stream);
out:
	if (la) lt_layout_destroy(la);
	if (lb) lt_layout_destroy(lb);
	if (ld) lt_layout_destroy(ld);
	if (desc) lt_desc_destroy(desc);
	return r;
}
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// ltMinTokens is the fewest tokens for which an f16/bf16 MatMul goes to cuBLASLt: below it (decode, small
// batches) matmul_any is used, which reads x in float32 and keeps a token's result independent of the batch.
// cuBLASLt rounds x to the weight's type (as GPU engines do) and picks algorithms by shape, so its results
// vary with n: prefill only.
const ltMinTokens = 64

// lt is cuBLASLt, loaded with dlopen (optional).
type lt struct {
	h    C.lt_handle
	path string
	ws   scratch // workspace
	xh   scratch // x converted to f16/bf16
}

// openLt loads cuBLASLt ($OMNIKV_CUBLASLT, libcublasLt.so.13, .12, then CUDA's default install); absent, it says why and f16/bf16
// prefill matmuls use matmul_any.
func openLt(d *drv) (*lt, string) {
	runtime.LockOSThread() // cublasLtCreate binds to the current context
	defer runtime.UnlockOSThread()
	if err := d.current("cuBLASLt"); err != nil {
		return nil, "cuBLASLt not used: " + err.Error()
	}
	var cands []string
	if p := os.Getenv("OMNIKV_CUBLASLT"); p != "" {
		cands = append(cands, p)
	}
	cands = append(cands, "libcublasLt.so.13", "libcublasLt.so.12", "/usr/local/cuda/lib64/libcublasLt.so.13", "/usr/local/cuda/lib64/libcublasLt.so.12")
	var why []string
	for _, p := range cands {
		cp := C.CString(p)
		msg := C.omni_lt_open(cp)
		C.free(unsafe.Pointer(cp))
		if msg != nil {
			why = append(why, C.GoString(msg))
			continue
		}
		l := &lt{path: p}
		if r := C.omni_lt_handle(&l.h); r != 0 {
			why = append(why, fmt.Sprintf("%s: cublasLtCreate status %d", p, int(r)))
			continue
		}
		return l, "cuBLASLt from " + p + " (f16/bf16 MatMul of >= 64 tokens)"
	}
	return nil, "cuBLASLt not found (" + strings.Join(why, "; ") + "): f16/bf16 weights use the matmul_any kernel for every token count; set OMNIKV_CUBLASLT to libcublasLt.so.12 or .13 for prefill"
}

func (l *lt) close(d *Device) {
	C.omni_lt_close(l.h)
	d.pool.put(l.ws.p)
	d.pool.put(l.xh.p)
}

// ltWorkspace is cuBLASLt's workspace.
const ltWorkspace = 32 << 20

// matmulLt runs out (n, w.Rows) = x (n, w.Cols) . w^T for an f16/bf16 weight on cuBLASLt; false when it
// does not apply (the caller uses matmul_any).
func (d *Device) matmulLt(out, x *compute.Tensor, w *compute.Weight, n int) bool {
	if d.lt == nil || n < ltMinTokens || (w.Type != weights.F16 && w.Type != weights.BF16) {
		return false
	}
	op := "MatMul " + w.Name + " (cuBLASLt)"
	l := d.lt
	if !d.grow(&l.ws, ltWorkspace, op) || !d.grow(&l.xh, 2*n*w.Cols, op) {
		return true
	}
	ab, cvt := C.int(2), "cvt_f32_f16"
	if w.Type == weights.BF16 {
		ab, cvt = 14, "cvt_f32_bf16"
	}
	d.launch(cvt, elems(n*w.Cols), [3]int{256, 1, 1}, op, tmem(x), l.xh.p, int64(n*w.Cols))
	if !d.ok() {
		return true
	}
	// cuBLASLt works in the thread's current context: make it ours, on this thread, for the call.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.current(op); err != nil {
		d.fail(err)
		return true
	}
	var where *C.char
	r := C.omni_lt_gemm(l.h, ab, C.uint64_t(w.Rows), C.uint64_t(w.Cols), C.uint64_t(n), C.uint64_t(wmem(w).p),
		C.uint64_t(l.xh.p), C.uint64_t(tmem(out)), C.uint64_t(l.ws.p), C.size_t(l.ws.size),
		unsafe.Pointer(d.compute.p), &where)
	if r != 0 {
		d.fail(fmt.Errorf("cuda: %s (%s): cuBLAS status %d", C.GoString(where), op, int(r)))
	}
	return true
}
