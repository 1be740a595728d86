//go:build cgo && cudaemu

package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/kernels"
)

// With the cudaemu tag the registry also knows "cudaemu:0": the CUDA device with its kernels emulated on
// the CPU ($OMNIKV_CUDAEMU_LIB, or built on first use), so that whole-model tests (llama's device
// comparison: OMNIKV_TEST_DEVICE=cudaemu:0 go test -tags cudaemu ./backend/llama -run TestDeviceCompare)
// run the CUDA device's code without a GPU.
func init() {
	compute.Register("cudaemu", func(ordinal int) (compute.Device, error) {
		if ordinal != 0 {
			return nil, fmt.Errorf("there is one emulated CUDA device (cudaemu:0), not %d", ordinal)
		}
		lib := os.Getenv("OMNIKV_CUDAEMU_LIB")
		if lib == "" {
			var err error
			if lib, err = BuildEmulator(); err != nil {
				return nil, err
			}
		}
		return OpenEmulated(lib)
	})
}

// emuWrappers returns, for a kernel source, C++ functions emu_call_<name>(void **args) that call each kernel
// with its arguments read from 8-byte slots, and their names.
func emuWrappers(src string) (string, []string, error) {
	var b strings.Builder
	var names []string
	re := regexp.MustCompile(`extern "C" __global__ void (?:__launch_bounds__\(\d+\) )?(\w+)\(`)
	for _, m := range re.FindAllStringSubmatchIndex(src, -1) {
		name := src[m[2]:m[3]]
		end := strings.IndexByte(src[m[1]:], ')')
		if end < 0 {
			return "", nil, fmt.Errorf("kernel %s: no end of parameters", name)
		}
		var call []string
		for i, p := range strings.Split(src[m[1]:m[1]+end], ",") {
			p = strings.Join(strings.Fields(strings.ReplaceAll(p, "__restrict__", "")), " ")
			id := regexp.MustCompile(`(\w+)$`).FindStringIndex(p)
			if id == nil {
				return "", nil, fmt.Errorf("kernel %s: parameter %q", name, p)
			}
			call = append(call, fmt.Sprintf("*(%s *)a[%d]", strings.TrimSpace(p[:id[0]]), i))
		}
		fmt.Fprintf(&b, "void emu_call_%s(void **a) { %s(%s); }\n", name, name, strings.Join(call, ", "))
		names = append(names, name)
	}
	return b.String(), names, nil
}

// BuildEmulator compiles kernels/*.cu with the emulator (emu/cudaemu.h, emu/emu.cpp) into a shared library
// with g++, cached in the temporary directory by a hash of the sources, and returns its path. The sources
// are found beside this file (a build from the repository).
func BuildEmulator() (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cuda emulator: cannot find the sources")
	}
	root := filepath.Join(filepath.Dir(self), "..", "..", "..")
	emuDir := filepath.Join(root, "backend/compute/cuda/emu")
	h := sha256.New()
	for _, s := range append(kernels.Sources(), kernels.Headers()...) {
		fmt.Fprintf(h, "%s\x00%s\x00", s.Name, s.Text)
	}
	for _, f := range []string{"cudaemu.h", "emu.cpp"} {
		b, err := os.ReadFile(filepath.Join(emuDir, f))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	dir := filepath.Join(os.TempDir(), "omnikv-cudaemu-"+hex.EncodeToString(h.Sum(nil))[:16])
	lib := filepath.Join(dir, "libcudaemu.so")
	if _, err := os.Stat(lib); err == nil {
		return lib, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	files := []string{filepath.Join(emuDir, "emu.cpp")}
	var reg strings.Builder
	reg.WriteString("#include \"cudaemu.h\"\n")
	var all []string
	for _, s := range kernels.Sources() {
		w, names, err := emuWrappers(s.Text)
		if err != nil {
			return "", err
		}
		f := filepath.Join(dir, strings.TrimSuffix(s.Name, ".cu")+".cpp")
		if err := os.WriteFile(f, []byte("#include \""+filepath.Join(root, "kernels", s.Name)+"\"\n"+w), 0o644); err != nil {
			return "", err
		}
		files = append(files, f)
		all = append(all, names...)
	}
	for _, n := range all {
		fmt.Fprintf(&reg, "void emu_call_%s(void **);\n", n)
	}
	reg.WriteString("const EmuKernel emu_kernels[] = {\n")
	for _, n := range all {
		fmt.Fprintf(&reg, "\t{\"%s\", emu_call_%s},\n", n, n)
	}
	reg.WriteString("\t{nullptr, nullptr},\n};\n")
	regFile := filepath.Join(dir, "registry.cpp")
	if err := os.WriteFile(regFile, []byte(reg.String()), 0o644); err != nil {
		return "", err
	}
	args := append([]string{"-std=c++17", "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-w", "-I", emuDir, "-I", filepath.Join(root, "kernels"),
		"-include", filepath.Join(emuDir, "cudaemu.h"), "-o", lib + ".tmp", regFile}, files...)
	out, err := exec.Command("g++", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("cuda emulator: g++: %v\n%s", err, out)
	}
	return lib, os.Rename(lib+".tmp", lib)
}
