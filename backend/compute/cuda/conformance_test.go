//go:build cgo

package cuda

import (
	"os"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute/computetest"
)

// openOrSkip opens GPU 0 as a device; without one (or without NVRTC) the test skips, or fails when
// OMNIKV_REQUIRE_GPU is set (tests/gpu/run.sh sets it).
func openOrSkip(t *testing.T) *Device {
	t.Helper()
	d, err := Open(0)
	if err != nil {
		if os.Getenv("OMNIKV_REQUIRE_GPU") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Cleanup(d.Close)
	t.Logf("%v; kernels: %d of %d files from the cache %s", d.info, d.ks.hits, len(d.ks.mods), d.ks.cache)
	return d
}

// The CUDA device passes the conformance suite that the CPU device passes (same checks, same tolerances).
func TestConformance(t *testing.T) {
	computetest.Run(t, openOrSkip(t))
}
