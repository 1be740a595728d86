//go:build cgo

package cuda

import (
	"os"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/kernels"
)

// nvrtcOrSkip loads NVRTC (scripts/fetch-nvrtc.sh sets OMNIKV_NVRTC and OMNIKV_CUDA_INCLUDE); missing, the
// test skips, or fails under CI.
func nvrtcOrSkip(t *testing.T) (*NVRTC, []string) {
	t.Helper()
	n, err := OpenNVRTC()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	var inc []string
	if d := os.Getenv("OMNIKV_CUDA_INCLUDE"); d != "" {
		inc = append(inc, d)
	}
	return n, inc
}

func headers() []Header {
	var hs []Header
	for _, h := range kernels.Headers() {
		hs = append(hs, Header{Name: h.Name, Source: h.Text})
	}
	return hs
}

// Every kernel compiles with NVRTC, to CUBIN for the A100's and H100/H200's architectures and to PTX, on a
// machine without a GPU, and defines at least one kernel.
func TestEveryKernelCompiles(t *testing.T) {
	n, inc := nvrtcOrSkip(t)
	t.Logf("NVRTC %d.%d from %s", n.Major, n.Minor, n.Path)
	srcs := kernels.Sources()
	if len(srcs) < 5 {
		t.Fatalf("%d kernel sources", len(srcs))
	}
	for _, src := range srcs {
		if len(kernels.Kernels(src.Text)) == 0 {
			t.Errorf("%s defines no extern \"C\" __global__ kernel", src.Name)
		}
		for _, arch := range []string{"sm_80", "sm_90", "compute_90"} {
			out, err := n.Compile(src.Name, src.Text, CompileOptions{Arch: arch, Includes: inc, Headers: headers()})
			if err != nil {
				t.Errorf("%s for %s: %v", src.Name, arch, err)
				continue
			}
			if len(out) == 0 {
				t.Errorf("%s for %s: empty output", src.Name, arch)
			}
			if strings.HasPrefix(arch, "compute_") {
				for _, k := range kernels.Kernels(src.Text) {
					if !strings.Contains(string(out), ".entry "+k) {
						t.Errorf("%s: PTX has no entry %s", src.Name, k)
					}
				}
			}
		}
	}
}

// A kernel with an error fails with NVRTC's log naming the line.
func TestCompileErrorHasLog(t *testing.T) {
	n, inc := nvrtcOrSkip(t)
	_, err := n.Compile("broken.cu", "extern \"C\" __global__ void k(float *x) {\n  x[0] = undefined_name;\n}\n", CompileOptions{Arch: "sm_90", Includes: inc})
	if err == nil || !strings.Contains(err.Error(), "undefined_name") || !strings.Contains(err.Error(), "broken.cu(2)") {
		t.Fatalf("error %v, want NVRTC's log naming broken.cu(2) and undefined_name", err)
	}
}
