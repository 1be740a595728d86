//go:build cgo && cudaemu

package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute/computetest"
	"github.com/omnikv-triton/omnikv-triton/kernels"
)

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

// buildEmu compiles kernels/*.cu with the emulator into a shared library (cached by a hash of the sources).
func buildEmu(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	emuDir := filepath.Join(root, "backend/compute/cuda/emu")
	h := sha256.New()
	for _, s := range append(kernels.Sources(), kernels.Headers()...) {
		fmt.Fprintf(h, "%s\x00%s\x00", s.Name, s.Text)
	}
	for _, f := range []string{"cudaemu.h", "emu.cpp"} {
		b, err := os.ReadFile(filepath.Join(emuDir, f))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	dir := filepath.Join(os.TempDir(), "omnikv-cudaemu-"+hex.EncodeToString(h.Sum(nil))[:16])
	lib := filepath.Join(dir, "libcudaemu.so")
	if _, err := os.Stat(lib); err == nil {
		return lib
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(emuDir, "emu.cpp")}
	var reg strings.Builder
	reg.WriteString("#include \"cudaemu.h\"\n")
	var all []string
	for _, s := range kernels.Sources() {
		w, names, err := emuWrappers(s.Text)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, strings.TrimSuffix(s.Name, ".cu")+".cpp")
		if err := os.WriteFile(f, []byte("#include \""+filepath.Join(root, "kernels", s.Name)+"\"\n"+w), 0o644); err != nil {
			t.Fatal(err)
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
		t.Fatal(err)
	}
	args := append([]string{"-std=c++17", "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-w", "-I", emuDir, "-I", filepath.Join(root, "kernels"),
		"-include", filepath.Join(emuDir, "cudaemu.h"), "-o", lib + ".tmp", regFile}, files...)
	out, err := exec.Command("g++", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("g++: %v\n%s", err, out)
	}
	if err := os.Rename(lib+".tmp", lib); err != nil {
		t.Fatal(err)
	}
	return lib
}

// The CUDA device's Go code and its kernels, run on the CPU through the emulator, pass the conformance
// suite (go test -tags cudaemu ./backend/compute/cuda -run Emulated).
func TestConformanceEmulated(t *testing.T) {
	d, err := OpenEmulated(buildEmu(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	computetest.Run(t, d)
}

// Sampling on the device, emulated.
func TestSampleEmulated(t *testing.T) {
	d, err := OpenEmulated(buildEmu(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	testSample(t, d)
}

// f16/bf16 MatMul of prefill size, emulated (no cuBLASLt there: matmul_any).
func TestMatMulPrefillEmulated(t *testing.T) {
	d, err := OpenEmulated(buildEmu(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	testMatMulPrefill(t, d)
}

// Gather's counters and the fence wait count reach Stats, emulated.
func TestStatsEmulated(t *testing.T) {
	d, err := OpenEmulated(buildEmu(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	testStats(t, d)
}

// KV tiers (pinned host memory, a registered mapped file), emulated.
func TestTiersEmulated(t *testing.T) {
	d, err := OpenEmulated(buildEmu(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	testTiers(t, d)
}
