//go:build cgo && cudaemu

package cuda

import (
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute/computetest"
)

// buildEmu builds (or finds) the emulator library.
func buildEmu(t *testing.T) string {
	t.Helper()
	lib, err := BuildEmulator()
	if err != nil {
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
